"""Reads on suites: the matrix of methods x tasks and its aggregates.

A cell is the method's latest finished run on the task (scored or failed; a run still in
the queue is counted as pending and does not replace it), its score on the board's split
of the task's competition (public until that competition is finalized, then private) and
ranked task version. A task whose constant predictor has no score yet (its references are
still being scored) is left out of the aggregates and listed in `waiting`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import QuerySet

from competitions.models import ReferenceResult, Score, Submission
from scoring import suites as engine
from suites.models import Method, MethodRun, Suite, SuiteTask

FINISHED = (Submission.Status.SCORED, Submission.Status.FAILED)


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


def board_split(task: SuiteTask) -> str:
    return "private" if task.competition.is_finalized else "public"


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


def suite_matrix(*, suite: Suite) -> SuiteMatrix:
    tasks = list(suite_tasks(suite))
    methods = {m.name: m for m in suite.methods.order_by("created_at")}
    by_id = {m.pk: m.name for m in methods.values()}
    task_by_id = {t.pk: t for t in tasks}
    runs = (
        MethodRun.objects.filter(method__suite=suite)
        .order_by("method_id", "suite_task_id", "-created_at", "-pk")
        .values_list("method_id", "suite_task_id", "submission_id", "submission__status")
    )
    latest: dict[tuple[int, int], int] = {}
    pending: dict[tuple[str, str], int] = {}
    for method_id, task_id, submission_id, status in runs:
        cell = (by_id[method_id], task_by_id[task_id].key)
        if status in FINISHED:
            latest.setdefault((method_id, task_id), submission_id)
        elif (method_id, task_id) not in latest:
            pending[cell] = pending.get(cell, 0) + 1
    scores = _cell_scores(latest, task_by_id)
    constants = _constants(tasks)
    ready = [t for t in tasks if t.pk in constants]
    cells: dict[tuple[str, str], engine.Cell] = {}
    submissions: dict[tuple[str, str], int] = {}
    for (method_id, task_id), submission_id in latest.items():
        task = task_by_id[task_id]
        key = (by_id[method_id], task.key)
        submissions[key] = submission_id
        if task.pk not in constants:
            continue
        score = scores.get(submission_id)
        cells[key] = engine.Cell(score=score, failed=score is None)
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
        pending=pending,
        submissions=submissions,
    )


def _cell_scores(
    latest: dict[tuple[int, int], int], task_by_id: dict[int, SuiteTask]
) -> dict[int, float]:
    """The primary score of each cell's submission on its task's board split and version
    (absent: the submission failed, or has no such score)."""
    found: dict[int, float] = {}
    wanted = {}
    for (_method_id, task_id), submission_id in latest.items():
        task = task_by_id[task_id]
        wanted[submission_id] = (
            board_split(task),
            task.competition.task.primary_metric,
            task.competition.task.version,
        )
    rows = Score.objects.filter(submission_id__in=list(wanted)).values_list(
        "submission_id", "split", "metric", "task_version", "value"
    )
    for submission_id, split, metric, version, value in rows:
        if (split, metric, version) == wanted[submission_id] and value is not None:
            found[submission_id] = float(value)
    return found
