"""Reads on suites: the matrix of methods x tasks and its aggregates.

A cell is the method's latest finished run on the task (scored or failed; a run still in
the queue is counted as pending and does not replace it), its score on the board's split
of the task's competition (public until that competition is finalized, then private) and
ranked task version. A task whose constant predictor has no score yet (its references are
still being scored) is left out of the aggregates and listed in `waiting`.

A read computes nothing per cell: each cell's score and 95 % interval are computed by a
worker when its submission finishes and stored (SuiteCell, suites/cells.py). The matrix is
kept in the "boards" cache under its token (`suite_matrix_token`: one query), so a read of
an unchanged matrix costs that query and a cache read; otherwise it is computed from the
stored cells in a constant number of queries: from the suite's last matrix (this process's,
else the shared cache's) and the cells written since (suites/matrix_grid.py), unless its
methods, tasks, ranked versions or splits changed since; then from every cell. A stored
cell is used only while its
submission, split and task version are those the cell should show; a stale one is shown
from its score, without an interval, marked in `stale`, and its refresh is enqueued.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace

from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.db.models import QuerySet

from competitions.models import ReferenceResult, Submission
from scoring import suites as engine
from suites.cells import FINISHED, board_split, suite_cells_enqueue
from suites.matrix_grid import CellKey, Grid, cells_read, stale_cells
from suites.models import Method, Suite, SuiteTask

# Part of every kept matrix's key: change it when what a matrix holds changes.
FORMAT = "2"

__all__ = ["FINISHED", "SuiteMatrix", "board_split", "suite_matrix", "suite_matrix_compute"]


@dataclass(frozen=True)
class SuiteMatrix:
    suite: Suite
    tasks: list[SuiteTask]  # every task, in order
    methods: dict[str, Method]  # by name
    board: engine.SuiteBoard | None  # None while no task can be aggregated
    statistics: engine.SuiteStatistics | None  # None below 2 methods x 2 tasks
    waiting: list[SuiteTask] = field(default_factory=list)  # no constant predictor score yet
    pending: dict[tuple[str, str], int] = field(default_factory=dict)  # queued runs per cell
    submissions: dict[tuple[str, str], int] = field(default_factory=dict)  # the cell's submission
    # What the matrix is as of (suite_matrix_token): the same token, the same matrix.
    token: str = ""
    # Cells whose stored value is not current yet (a run just finished, the task's version
    # or split changed): shown from their scores, without an interval, until a worker
    # computes them (suites/cells.py; a refresh is asked for).
    stale: frozenset[tuple[str, str]] = frozenset()
    # What the next matrix can be computed from (None: a matrix computed without the cache).
    basis: _Basis | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class _Read:
    """A read of the matrix's token, with what a matrix computed from it depends on."""

    token: str
    version: int  # the suite's matrix_version: every cell written up to it is visible
    # The suite's layout_version and per task, in order, its id, ranked version and whether
    # it is final: while these hold, a matrix follows from the last one and the cells since.
    layout: tuple


@dataclass(frozen=True)
class _Basis:
    read: _Read
    ready: tuple[int, ...]  # the aggregated tasks' ids, in order
    method_names: dict[int, str]  # by id, in the matrix's order
    grid: Grid
    stale: dict[CellKey, int]  # the stale cells' submissions


def suite_tasks(suite: Suite) -> QuerySet[SuiteTask]:
    return suite.tasks.select_related("competition__task").order_by("position")


def _constants(tasks: list[SuiteTask]) -> dict[int, float]:
    """The constant predictor's primary score per task id, where scored."""
    found: dict[int, float] = {}
    wanted = {(t.competition_id, t.competition.task.version): t for t in tasks}
    references = ReferenceResult.objects.filter(
        competition_id__in=[t.competition_id for t in tasks],
        kind=ReferenceResult.Kind.CONSTANT,
        status=ReferenceResult.Status.SCORED,
    ).values_list("competition_id", "task_version", "scores")
    for competition_id, version, scores in references:
        task = wanted.get((competition_id, version))
        if task is None:
            continue
        value = (scores or {}).get(board_split(task), {}).get(task.competition.task.primary_metric)
        if value is not None:
            found[task.pk] = float(value)
    return found


# The suite's matrix and layout versions and, per task in order, what its column depends on:
# its board version, ranked task version and whether its competition is final. Plain SQL
# that SQLite (the demo's database) runs too.
TOKEN_SQL = """
SELECT s.matrix_version, s.layout_version, st.id, COALESCE(bv.version, 0), t.version,
    CASE WHEN c.finalized_at IS NULL THEN 0 ELSE 1 END
FROM suites_suite s
LEFT JOIN suites_suitetask st ON st.suite_id = s.id
LEFT JOIN competitions_competition c ON c.id = st.competition_id
LEFT JOIN competitions_task t ON t.competition_id = c.id
LEFT JOIN competitions_boardversion bv ON bv.competition_id = c.id
WHERE s.id = %s
ORDER BY st.position
"""


def suite_matrix_token(*, suite: Suite) -> str:
    """What the matrix shows, as of now, in a few characters: any change to a cell, run,
    method or task, to a task's board, ranked version or split, gives another token."""
    return _token_read(suite).token


def _token_read(suite: Suite) -> _Read:
    with connection.cursor() as cursor:
        cursor.execute(TOKEN_SQL, [suite.pk])
        rows = cursor.fetchall()
    if not rows:
        return _Read(token="", version=0, layout=())
    tasks = [row[2:] for row in rows if row[2] is not None]
    columns = ",".join(":".join(str(value) for value in task) for task in tasks)
    digest = hashlib.sha256(columns.encode()).hexdigest()[:24]
    version, layout_version = rows[0][0], rows[0][1]
    layout = (layout_version, *((task_id, v, final) for task_id, _board, v, final in tasks))
    return _Read(token=f"{version}.{digest}", version=version, layout=layout)


def _key(suite: Suite) -> str:
    # One entry per suite, its latest matrix (with its token): older tokens are never asked
    # for again, so keeping one entry per token would hold a large suite's matrix many times
    # over until it expires. created_at tells apart a suite from an earlier one with its id.
    return f"suite-matrix:{FORMAT}:{suite.pk}:{suite.created_at.isoformat()}"


def suite_matrix(*, suite: Suite) -> SuiteMatrix:
    """The matrix, as kept for its token (one query and a cache read), else computed (from
    the suite's last matrix and the cells written since, when it can) and kept. Cells found
    stale on the way are shown from their scores, without an interval, and marked (`stale`)."""
    read = _token_read(suite)
    if not settings.HELDOUT_BOARD_CACHE or not read.token:
        return _compute(suite, read, None)
    key = _key(suite)
    last = _LOCAL.get(key)
    if last is None or last.token != read.token:
        with engine.gc_paused():  # unpickling makes many objects that make no cycles
            shared = caches["boards"].get(key)
        if shared is not None:
            last = shared
            _local_keep(key, shared)
    if last is not None and last.token == read.token:
        return replace(last, suite=suite)
    matrix = _compute(suite, read, last)
    # Kept even with stale cells (marked): the refresh that computes them changes the token.
    caches["boards"].set(key, matrix)
    _local_keep(key, matrix)
    return matrix


def suite_matrix_keep(*, suite_id: int) -> SuiteMatrix | None:
    """Compute and keep the suite's current matrix, if it is not kept: what a worker does
    after it stored cells, so that reads do not compute it."""
    suite = Suite.objects.filter(pk=suite_id).first()
    return None if suite is None else suite_matrix(suite=suite)


# This process's last matrix of each of its last suites, unpickled (the shared cache
# pickles: unpickling a large matrix costs more than the whole read otherwise).
_LOCAL: OrderedDict[str, SuiteMatrix] = OrderedDict()
_LOCAL_SIZE = 8
_LOCK = threading.Lock()  # web processes read on several threads


def _local_keep(key: str, matrix: SuiteMatrix) -> None:
    with _LOCK:
        _LOCAL[key] = matrix
        _LOCAL.move_to_end(key)
        while len(_LOCAL) > _LOCAL_SIZE:
            _LOCAL.popitem(last=False)


def suite_matrices_forgotten() -> None:
    """Forget this process's matrices (tests: SQLite hands out a rolled-back suite's id
    again)."""
    with _LOCK:
        _LOCAL.clear()


def suite_matrix_compute(*, suite: Suite, previous: SuiteMatrix | None = None) -> SuiteMatrix:
    """The matrix as of now from the stored cells, whatever is kept: from `previous` (a
    matrix of the suite) and the cells written since, where it can, else from every cell.
    Queries: the token, the tasks, the constant predictors, the methods (from every cell
    only), the cells, the queued runs; the stale cells' submissions and scores when there
    are any."""
    return _compute(suite, _token_read(suite), previous)


def _compute(suite: Suite, read: _Read, previous: SuiteMatrix | None) -> SuiteMatrix:
    tasks = list(suite_tasks(suite))
    key_of = {t.pk: t.key for t in tasks}
    constants = _constants(tasks)
    ready = tuple(t.pk for t in tasks if t.pk in constants)
    basis = previous.basis if previous is not None else None
    with engine.gc_paused():
        if basis is not None and basis.read.layout == read.layout and basis.ready == ready:
            # Only cells, runs and boards changed: the last grid and the cells written since.
            assert previous is not None
            methods, by_id = previous.methods, basis.method_names
            grid, submissions = basis.grid.copy(), dict(previous.submissions)
            stale = dict(basis.stale)
            rows = cells_read(suite_id=suite.pk, since=basis.read.version)
        else:
            methods = {m.name: m for m in suite.methods.order_by("created_at")}
            by_id = {m.pk: m.name for m in methods.values()}
            grid, submissions, stale = Grid.empty(list(by_id), list(ready)), {}, {}
            rows = cells_read(suite_id=suite.pk)
        # A row of a method or task made after the token's read is left to the next token.
        rows = [r for r in rows if r[0] in by_id and r[1] in key_of]
        grid.put(rows)
        for method_id, task_id, submission, fresh, *_values in rows:
            submissions[(by_id[method_id], key_of[task_id])] = submission
            if fresh:
                stale.pop((method_id, task_id), None)
            else:
                stale[(method_id, task_id)] = submission
    if stale:
        task_by_id = {t.pk: t for t in tasks}
        for (method_id, task_id), cell in stale_cells(stale, task_by_id, constants).items():
            grid.set(method_id, task_id, cell)
        suite_cells_enqueue_once(suite=suite, token=read.token)
    board = statistics = None
    if ready:
        engine_tasks = [
            engine.SuiteTask(
                key=t.key, metric=t.competition.task.primary_metric, constant=constants[t.pk]
            )
            for t in tasks
            if t.pk in constants
        ]
        board = engine.suite_board_arrays(
            list(methods), engine_tasks, grid.scores, grid.status, grid.low, grid.high
        )
        if len(board.rows) >= 2 and len(ready) >= 2:
            statistics = engine.suite_statistics(board)
    return SuiteMatrix(
        suite=suite,
        tasks=tasks,
        methods=methods,
        board=board,
        statistics=statistics,
        waiting=[t for t in tasks if t.pk not in constants],
        pending=_pending(suite, by_id, key_of),
        submissions=submissions,
        token=read.token,
        stale=frozenset((by_id[m], key_of[t]) for m, t in stale),
        basis=_Basis(read=read, ready=ready, method_names=by_id, grid=grid, stale=stale),
    )


# The runs still queued or running that are newer than their cell's latest run that counts
# (suites.cells.COUNTED).
PENDING_SQL = """
SELECT r.method_id, r.suite_task_id, count(*)
FROM suites_methodrun r
JOIN suites_method m ON m.id = r.method_id
JOIN competitions_submission s ON s.id = r.submission_id
WHERE m.suite_id = %s AND s.status NOT IN ('scored', 'failed') AND NOT EXISTS (
    SELECT 1 FROM suites_methodrun later
    JOIN competitions_submission ls ON ls.id = later.submission_id
    WHERE later.method_id = r.method_id AND later.suite_task_id = r.suite_task_id
        AND (ls.status = 'scored' OR ls.status = 'failed' AND ls.failure NOT IN ({uncounted}))
        AND (later.created_at, later.id) > (r.created_at, r.id))
GROUP BY r.method_id, r.suite_task_id
""".format(uncounted=", ".join(f"'{f.value}'" for f in Submission.UNCOUNTED_FAILURES))


def _pending(
    suite: Suite, by_id: dict[int, str], key_of: dict[int, str]
) -> dict[tuple[str, str], int]:
    with connection.cursor() as cursor:
        cursor.execute(PENDING_SQL, [suite.pk])
        rows = cursor.fetchall()
    # A run of a method or task made after the token's read is left to the next token.
    return {(by_id[m], key_of[t]): n for m, t, n in rows if m in by_id and t in key_of}


def suite_cells_enqueue_once(*, suite: Suite, token: str) -> None:
    """Ask for the stale cells' refresh, once per token (while the cache remembers)."""
    if caches["boards"].add(f"{_key(suite)}:{token}:refresh", 1, timeout=60):
        suite_cells_enqueue(suite_id=suite.pk)
