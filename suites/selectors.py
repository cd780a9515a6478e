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
stored cells in a constant number of queries. A stored cell is used only while its
submission, split and task version are those the cell should show; a stale one is shown
from its score, without an interval, marked in `stale`, and its refresh is enqueued.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field, replace

import numpy as np
from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.db.models import QuerySet

from competitions.models import ReferenceResult, Submission
from scoring import suites as engine
from suites.cells import FINISHED, board_split, primary_scores, suite_cells_enqueue
from suites.models import Method, Suite, SuiteTask

# Part of every kept matrix's key: change it when what a matrix holds changes.
FORMAT = "1"

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


# The token of a suite's matrix: its own version, then per task (in order) its board's
# version, ranked task version and whether it is final. One statement.
# The suite's matrix version and, per task in order, what its column depends on: its board
# version, ranked task version and whether its competition is final. Plain SQL that SQLite
# (the demo's database) runs too.
TOKEN_SQL = """
SELECT s.matrix_version, st.id, COALESCE(bv.version, 0), t.version,
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
    with connection.cursor() as cursor:
        cursor.execute(TOKEN_SQL, [suite.pk])
        rows = cursor.fetchall()
    if not rows:
        return ""
    columns = ",".join(
        ":".join(str(value) for value in row[1:]) for row in rows if row[1] is not None
    )
    digest = hashlib.sha256(columns.encode()).hexdigest()[:24]
    return f"{rows[0][0]}.{digest}"


def _key(suite: Suite, token: str) -> str:
    # created_at tells apart a suite from an earlier one with the same id.
    return f"suite-matrix:{FORMAT}:{suite.pk}:{suite.created_at.isoformat()}:{token}"


def suite_matrix(*, suite: Suite) -> SuiteMatrix:
    """The matrix, as kept for its token (one query and a cache read), else computed from
    the stored cells (a constant number of queries) and kept. Cells found stale on the way
    are shown from their scores, without an interval, and marked (`stale`)."""
    token = suite_matrix_token(suite=suite)
    if not settings.HELDOUT_BOARD_CACHE or not token:
        return suite_matrix_compute(suite=suite, token=token)
    key = _key(suite, token)
    kept = _LOCAL.get(key)
    if kept is None:
        with engine.gc_paused():  # unpickling makes one object per cell
            kept = caches["boards"].get(key)
        if kept is not None:
            _local_keep(key, kept)
    if kept is not None:
        return replace(kept, suite=suite)
    matrix = suite_matrix_compute(suite=suite, token=token)
    # Kept even with stale cells (marked): the refresh that computes them changes the token.
    caches["boards"].set(key, matrix)
    _local_keep(key, matrix)
    return matrix


def suite_matrix_keep(*, suite_id: int) -> None:
    """Compute and keep the suite's current matrix, if it is not kept: what a worker does
    after it stored cells, so that reads do not compute it."""
    suite = Suite.objects.filter(pk=suite_id).first()
    if suite is not None:
        suite_matrix(suite=suite)


# This process's last matrices, unpickled (the shared cache pickles: unpickling a large
# matrix costs more than the whole read otherwise).
_LOCAL: OrderedDict[str, SuiteMatrix] = OrderedDict()
_LOCAL_SIZE = 8


def _local_keep(key: str, matrix: SuiteMatrix) -> None:
    _LOCAL[key] = matrix
    _LOCAL.move_to_end(key)
    while len(_LOCAL) > _LOCAL_SIZE:
        _LOCAL.popitem(last=False)


def suite_matrix_compute(*, suite: Suite, token: str = "") -> SuiteMatrix:
    """The matrix from the stored cells (suites/cells.py), whatever is kept. Queries: the
    tasks, the methods, the constant predictors, the cells with their freshness, the queued
    runs; the stale cells' submissions and scores when there are any."""
    tasks = list(suite_tasks(suite))
    methods = {m.name: m for m in suite.methods.order_by("created_at")}
    by_id = {m.pk: m.name for m in methods.values()}
    key_of = {t.pk: t.key for t in tasks}
    constants = _constants(tasks)
    ready = [t for t in tasks if t.pk in constants]
    with engine.gc_paused(), connection.cursor() as cursor:
        cursor.execute(CELLS_SQL, [suite.pk])
        rows = cursor.fetchall()
        grid = _Grid.of(rows, list(by_id), [t.pk for t in ready])
        submissions = {(by_id[m], key_of[t]): submission for m, t, submission, *_rest in rows}
    stale = {(m, t): submission for m, t, submission, fresh, *_rest in rows if not fresh}
    if stale:
        task_by_id = {t.pk: t for t in tasks}
        for (method_id, task_id), cell in _stale_cells(stale, task_by_id, constants).items():
            grid.set(method_id, task_id, cell)
        suite_cells_enqueue_once(suite=suite, token=token)
    board = statistics = None
    if ready:
        engine_tasks = [
            engine.SuiteTask(
                key=t.key, metric=t.competition.task.primary_metric, constant=constants[t.pk]
            )
            for t in ready
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
        token=token,
        stale=frozenset((by_id[m], key_of[t]) for m, t in stale),
    )


@dataclass
class _Grid:
    """The engine's arrays, methods (by id, in order) x the tasks that can be aggregated."""

    rows: dict[int, int]  # method id -> row
    columns: dict[int, int]  # task id -> column
    scores: np.ndarray
    status: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def of(cls, cells: list[tuple], method_ids: list[int], task_ids: list[int]) -> _Grid:
        """From CELLS_SQL's rows: the fresh ones (the stale are `set` after)."""
        shape = (len(method_ids), len(task_ids))
        grid = cls(
            rows={m: i for i, m in enumerate(method_ids)},
            columns={t: j for j, t in enumerate(task_ids)},
            scores=np.zeros(shape),
            status=np.full(shape, "missing", dtype=object),
            low=np.full(shape, np.nan),
            high=np.full(shape, np.nan),
        )
        fresh = [c for c in cells if c[3] and c[1] in grid.columns]
        if fresh:
            methods, tasks, _submissions, _fresh, status, score, low, high = zip(
                *fresh, strict=True
            )
            at = (
                np.fromiter(map(grid.rows.__getitem__, methods), dtype=np.intp, count=len(fresh)),
                np.fromiter(map(grid.columns.__getitem__, tasks), dtype=np.intp, count=len(fresh)),
            )
            grid.status[at] = status
            grid.scores[at] = np.array(score, dtype=float)
            grid.low[at] = np.array(low, dtype=float)
            grid.high[at] = np.array(high, dtype=float)
        return grid

    def set(self, method_id: int, task_id: int, cell: engine.Cell) -> None:
        i, j = self.rows[method_id], self.columns[task_id]
        failed = "failed" if cell.failed else "missing"
        self.status[i, j] = "scored" if cell.score is not None and not cell.failed else failed
        self.scores[i, j] = np.nan if cell.score is None else cell.score
        self.low[i, j] = self.high[i, j] = np.nan


# Each stored cell: the submission it shows and its computed values, with whether these are
# fresh: computed for that submission, on the task's board split (private once final) and
# under its ranked version, as suites.cells.cell_is_fresh says. One statement.
CELLS_SQL = """
SELECT c.method_id, c.suite_task_id, c.latest_id,
    COALESCE(c.submission_id = c.latest_id AND c.task_version = t.version
        AND c.split = CASE WHEN comp.finalized_at IS NULL THEN 'public' ELSE 'private' END,
        false),
    c.status, c.score, c.ci_low, c.ci_high
FROM suites_suitecell c
JOIN suites_suitetask st ON st.id = c.suite_task_id
JOIN competitions_competition comp ON comp.id = st.competition_id
JOIN competitions_task t ON t.competition_id = st.competition_id
WHERE st.suite_id = %s
"""

# The runs still queued or running that are newer than their cell's latest finished run.
PENDING_SQL = """
SELECT r.method_id, r.suite_task_id, count(*)
FROM suites_methodrun r
JOIN suites_method m ON m.id = r.method_id
JOIN competitions_submission s ON s.id = r.submission_id
WHERE m.suite_id = %s AND s.status NOT IN ('scored', 'failed') AND NOT EXISTS (
    SELECT 1 FROM suites_methodrun later
    JOIN competitions_submission ls ON ls.id = later.submission_id
    WHERE later.method_id = r.method_id AND later.suite_task_id = r.suite_task_id
        AND ls.status IN ('scored', 'failed')
        AND (later.created_at, later.id) > (r.created_at, r.id))
GROUP BY r.method_id, r.suite_task_id
"""


def _pending(
    suite: Suite, by_id: dict[int, str], key_of: dict[int, str]
) -> dict[tuple[str, str], int]:
    with connection.cursor() as cursor:
        cursor.execute(PENDING_SQL, [suite.pk])
        return {(by_id[m], key_of[t]): n for m, t, n in cursor.fetchall()}


def _stale_cells(
    stale: dict[tuple[int, int], int],
    task_by_id: dict[int, SuiteTask],
    constants: dict[int, float],
) -> dict[tuple[int, int], engine.Cell]:
    """Stale cells as their submissions say, without the interval a worker will add: a
    failure, the score on the board's split and version, or missing (none, or not
    finished: being scored again). Two queries."""
    statuses = dict(Submission.objects.filter(pk__in=stale.values()).values_list("pk", "status"))
    scores = primary_scores(
        {key: (submission, statuses.get(submission, "")) for key, submission in stale.items()},
        task_by_id,
    )
    cells = {}
    for (method_id, task_id), submission in stale.items():
        if task_id not in constants:
            continue
        status = statuses.get(submission)
        score = scores.get(submission) if status == Submission.Status.SCORED else None
        cells[(method_id, task_id)] = engine.Cell(
            score=score, failed=status == Submission.Status.FAILED
        )
    return cells


def suite_cells_enqueue_once(*, suite: Suite, token: str) -> None:
    """Ask for the stale cells' refresh, once per token (while the cache remembers)."""
    if caches["boards"].add(f"{_key(suite, token)}:refresh", 1, timeout=60):
        suite_cells_enqueue(suite_id=suite.pk)
