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
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.db.models import QuerySet

from competitions.models import ReferenceResult, Submission
from scoring import suites as engine
from suites.cells import (
    FINISHED,
    board_split,
    cell_is_fresh,
    primary_scores,
    suite_cells_enqueue,
)
from suites.models import Method, MethodRun, Suite, SuiteCell, SuiteTask

# Part of every kept matrix's key: change it when what a matrix holds changes.
FORMAT = "1"

__all__ = ["SuiteMatrix", "board_split", "suite_matrix", "suite_matrix_compute"]


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
TOKEN_SQL = """
SELECT s.matrix_version, COALESCE((
    SELECT string_agg(
        st.id || ':' || COALESCE(bv.version, 0) || ':' || t.version || ':'
        || (c.finalized_at IS NOT NULL)::int, ',' ORDER BY st.position)
    FROM suites_suitetask st
    JOIN competitions_competition c ON c.id = st.competition_id
    JOIN competitions_task t ON t.competition_id = c.id
    LEFT JOIN competitions_boardversion bv ON bv.competition_id = c.id
    WHERE st.suite_id = s.id), '')
FROM suites_suite s WHERE s.id = %s
"""


def suite_matrix_token(*, suite: Suite) -> str:
    """What the matrix shows, as of now, in a few characters: any change to a cell, run,
    method or task, to a task's board, ranked version or split, gives another token."""
    with connection.cursor() as cursor:
        cursor.execute(TOKEN_SQL, [suite.pk])
        row = cursor.fetchone()
    if row is None:
        return ""
    digest = hashlib.sha256(row[1].encode()).hexdigest()[:24]
    return f"{row[0]}.{digest}"


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
        kept = caches["boards"].get(key)
        if kept is not None:
            _local_keep(key, kept)
    if kept is not None:
        return replace(kept, suite=suite)
    matrix = suite_matrix_compute(suite=suite, token=token)
    if not matrix.stale:  # a matrix with stale cells is computed again once they are fresh
        caches["boards"].set(key, matrix)
        _local_keep(key, matrix)
    return matrix


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
    tasks, the methods, the runs, the cells, the constant predictors; the scores of the
    stale cells when there are any."""
    tasks = list(suite_tasks(suite))
    methods = {m.name: m for m in suite.methods.order_by("created_at")}
    by_id = {m.pk: m.name for m in methods.values()}
    task_by_id = {t.pk: t for t in tasks}
    latest, pending = _runs(suite, by_id, task_by_id)
    stored = {
        (row[0], row[1]): row[2:]
        for row in SuiteCell.objects.filter(suite_task__suite=suite).values_list(
            "method_id",
            "suite_task_id",
            "submission_id",
            "split",
            "task_version",
            "status",
            "score",
            "ci_low",
            "ci_high",
        )
    }
    constants = _constants(tasks)
    cells: dict[tuple[str, str], engine.Cell] = {}
    submissions: dict[tuple[str, str], int] = {}
    stale: dict[tuple[int, int], tuple[int, str]] = {}
    for (method_id, task_id), (submission_id, status) in latest.items():
        task = task_by_id[task_id]
        key = (by_id[method_id], task.key)
        submissions[key] = submission_id
        kept = stored.get((method_id, task_id))
        if kept is None or not cell_is_fresh(kept[:3], submission_id, task):
            stale[(method_id, task_id)] = (submission_id, status)
        elif task.pk in constants:
            cells[key] = _engine_cell(*kept[3:])
    if stale:
        cells |= _stale_cells(stale, task_by_id, by_id, constants)
        suite_cells_enqueue_once(suite=suite, token=token)
    return _matrix(
        suite,
        tasks,
        methods,
        constants,
        cells,
        token=token,
        pending=pending,
        submissions=submissions,
        stale=frozenset((by_id[m], task_by_id[t].key) for m, t in stale),
    )


def _runs(
    suite: Suite, by_id: dict[int, str], task_by_id: dict[int, SuiteTask]
) -> tuple[dict[tuple[int, int], tuple[int, str]], dict[tuple[str, str], int]]:
    """Each cell's latest finished run (submission, status), and the runs queued after it."""
    runs = (
        MethodRun.objects.filter(method__suite=suite)
        .order_by("method_id", "suite_task_id", "-created_at", "-pk")
        .values_list("method_id", "suite_task_id", "submission_id", "submission__status")
    )
    latest: dict[tuple[int, int], tuple[int, str]] = {}
    pending: dict[tuple[str, str], int] = {}
    for method_id, task_id, submission_id, status in runs:
        if status in FINISHED:
            latest.setdefault((method_id, task_id), (submission_id, status))
        elif (method_id, task_id) not in latest:
            cell = (by_id[method_id], task_by_id[task_id].key)
            pending[cell] = pending.get(cell, 0) + 1
    return latest, pending


def _engine_cell(
    status: str, score: float | None, low: float | None, high: float | None
) -> engine.Cell:
    if status == SuiteCell.Status.SCORED:
        return engine.Cell(score=score, low=low, high=high)
    return engine.Cell(failed=status == SuiteCell.Status.FAILED)


def _stale_cells(
    stale: dict[tuple[int, int], tuple[int, str]],
    task_by_id: dict[int, SuiteTask],
    by_id: dict[int, str],
    constants: dict[int, float],
) -> dict[tuple[str, str], engine.Cell]:
    """Stale cells as their scores say, without the interval a worker will add: a failed
    submission, a score on the board's split and version, or missing."""
    scores = primary_scores(stale, task_by_id)
    cells = {}
    for (method_id, task_id), (submission_id, status) in stale.items():
        if task_id not in constants:
            continue
        score = scores.get(submission_id)
        failed = status == Submission.Status.FAILED
        cells[(by_id[method_id], task_by_id[task_id].key)] = engine.Cell(
            score=None if failed else score, failed=failed
        )
    return cells


def suite_cells_enqueue_once(*, suite: Suite, token: str) -> None:
    """Ask for the stale cells' refresh, once per token (while the cache remembers)."""
    if caches["boards"].add(f"{_key(suite, token)}:refresh", 1, timeout=60):
        suite_cells_enqueue(suite_id=suite.pk)


def _matrix(
    suite: Suite,
    tasks: list[SuiteTask],
    methods: dict[str, Method],
    constants: dict[int, float],
    cells: dict[tuple[str, str], engine.Cell],
    **fields: Any,
) -> SuiteMatrix:
    ready = [t for t in tasks if t.pk in constants]
    board = statistics = None
    if ready:
        engine_tasks = [
            engine.SuiteTask(
                key=t.key, metric=t.competition.task.primary_metric, constant=constants[t.pk]
            )
            for t in ready
        ]
        board = engine.suite_board(list(methods), engine_tasks, cells)
        if len(board.rows) >= 2 and len(ready) >= 2:
            statistics = engine.suite_statistics(board)
    return SuiteMatrix(
        suite=suite,
        tasks=tasks,
        methods=methods,
        board=board,
        statistics=statistics,
        waiting=[t for t in tasks if t.pk not in constants],
        **fields,
    )
