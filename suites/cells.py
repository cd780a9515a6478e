"""Writes on the matrix's stored cells (SuiteCell) and the suite's matrix version.

Contract:
- A cell is computed on a worker, never on a read: `suite_cells_refresh` finds the cells
  whose stored value is stale (another submission is now the method's latest finished run
  on the task, or the task ranks another split or version) and computes each from its
  submission: the primary score on the task's board split under its ranked version, and
  its 95 % interval exactly as an entry of that board gets it
  (competitions/services/intervals.submission_interval: the submission's stored
  pseudo-values, the board's recorded resamples). It writes them in one transaction that
  also counts the suite's `matrix_version` up. Idempotent: a duplicate finds nothing stale.
- What asks for it: the domain's signals (competitions/signals.py), connected in
  suites/apps.py. A submission that finishes marks its cell (`latest`: it shows that
  submission now, stale until computed; an older run finishing late does not replace a
  newer one) and enqueues the cell's refresh; a version switch or a finalize (or reopen)
  enqueues its task's column. Each in the transaction that made the change, through the
  outbox. A read that finds a stale cell enqueues the suite's refresh too
  (suites/selectors.py), in case a message was lost. The worker's task then keeps the new
  matrix (suites/tasks.py), so that reads find it computed.
- Every change to what the matrix shows that the tasks' boards do not count (methods, runs,
  tasks, a finish, cells) counts `matrix_version` up in its own transaction. Lock order:
  the suite's row, then its cells (a refresh and a finish never wait on each other's).
- Race: a refresh that computed a cell while a newer run was finishing may store the older
  value; the newer run's own refresh, enqueued by its finish, then replaces it.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from competitions.models import BoardStatistics, Competition, Score, Submission
from competitions.services.intervals import board_statistics_get, submission_interval
from competitions.services.outbox import enqueue
from suites.models import Method, MethodRun, Suite, SuiteCell, SuiteTask

CELLS_TASK = "suites.tasks.suite_cells_refresh_task"
FINISHED = (Submission.Status.SCORED, Submission.Status.FAILED)
CellKey = tuple[int, int]  # (method id, suite task id)


def counts(status: str, failure: str) -> bool:
    """Whether a finished run is the method's result: scored, or failed by its fault. A
    file that did not pass validation (nothing was scored, the team was told every
    problem) and a scoring the platform could not finish are not, as they do not use the
    team's quota (Submission.UNCOUNTED_FAILURES): a cell shows the latest run that counts,
    and one of these only while the method has no other there."""
    return status == Submission.Status.SCORED or failure not in Submission.UNCOUNTED_FAILURES


def board_split(task: SuiteTask) -> str:
    """The split a task's column shows: its competition's board's (private once final)."""
    return "private" if task.competition.is_finalized else "public"


def ladder_withheld(task: SuiteTask, split: str) -> bool:
    """Whether the task's column shows a Ladder's public board (competitions/services/
    ladder.py): then a cell shows what the Ladder told its team, never the exact score,
    and no interval (which would tell the digits back), as the board itself does."""
    return split == "public" and task.competition.public_board == Competition.PublicBoard.LADDER


def matrix_version_bump(*, suite_id: int, layout: bool = False) -> None:
    """Count the suite's matrix version up (and its layout version, for a change to its
    methods, tasks or runs that a matrix cannot follow from its cells alone)."""
    changes = {"matrix_version": F("matrix_version") + 1}
    if layout:
        changes["layout_version"] = F("layout_version") + 1
    Suite.objects.filter(pk=suite_id).update(**changes)


def matrix_version_read(*, suite_id: int) -> int:
    return Suite.objects.filter(pk=suite_id).values_list("matrix_version", flat=True).get()


def suite_cells_enqueue(
    *, suite_id: int, method_id: int | None = None, suite_task_id: int | None = None
) -> None:
    """Ask a worker to refresh the suite's stale cells (of one method, one task, or both)."""
    enqueue(CELLS_TASK, [suite_id, method_id, suite_task_id])


def latest_finished(
    *, suite_id: int, method_id: int | None = None, suite_task_id: int | None = None
) -> dict[CellKey, tuple[int, str]]:
    """Each cell's run (submission id, status), one query: the latest that `counts`, else
    the latest finished."""
    runs = MethodRun.objects.filter(
        method__suite_id=suite_id, submission__status__in=FINISHED
    ).order_by("method_id", "suite_task_id", "-created_at", "-pk")
    if method_id is not None:
        runs = runs.filter(method_id=method_id)
    if suite_task_id is not None:
        runs = runs.filter(suite_task_id=suite_task_id)
    found: dict[CellKey, tuple[int, str]] = {}
    counted: set[CellKey] = set()
    for method, task, submission, status, failure in runs.values_list(
        "method_id", "suite_task_id", "submission_id", "submission__status", "submission__failure"
    ):
        key = (method, task)
        if key in counted:
            continue
        if counts(status, failure):
            counted.add(key)
            found[key] = (submission, status)
        else:
            found.setdefault(key, (submission, status))
    return found


def cell_is_fresh(
    stored: tuple[int | None, str, int, int] | None, submission_id: int, task: SuiteTask
) -> bool:
    """Whether a stored cell shows `submission_id` and its values were computed for it, on
    the task's board split, under its ranked version (what suites/selectors.CELLS_SQL
    checks on a read)."""
    wanted = (submission_id, board_split(task), task.competition.task.version, submission_id)
    return stored == wanted


def suite_cells_refresh(
    *, suite_id: int, method_id: int | None = None, suite_task_id: int | None = None
) -> int:
    """Compute and store the stale cells of the suite (narrowed to a method and/or a task).
    Returns how many cells were written."""
    tasks = SuiteTask.objects.filter(suite_id=suite_id).select_related("competition__task")
    if suite_task_id is not None:
        tasks = tasks.filter(pk=suite_task_id)
    by_id = {t.pk: t for t in tasks}
    wanted = latest_finished(suite_id=suite_id, method_id=method_id, suite_task_id=suite_task_id)
    stored = _stored(suite_id, method_id, suite_task_id)
    stale = {
        key: value
        for key, value in wanted.items()
        if key[1] in by_id and not cell_is_fresh(stored.get(key), value[0], by_id[key[1]])
    }
    if not stale:
        return 0
    cells = _cells_compute(stale, by_id)
    with transaction.atomic():
        # The count up locks the suite's row: it serialises the refreshes of one suite, and
        # the cells written carry the version it gives. A cell whose latest run changed
        # meanwhile is left to the refresh that change enqueued.
        matrix_version_bump(suite_id=suite_id)
        revision = matrix_version_read(suite_id=suite_id)
        for cell in cells:
            cell.revision = revision
        now = latest_finished(suite_id=suite_id, method_id=method_id, suite_task_id=suite_task_id)
        cells = [
            c for c in cells if now.get((c.method_id, c.suite_task_id), (0,))[0] == c.submission_id
        ]
        SuiteCell.objects.bulk_create(
            cells,
            update_conflicts=True,
            unique_fields=["method", "suite_task"],
            update_fields=[
                "latest",
                "submission",
                "status",
                "split",
                "task_version",
                "score",
                "ci_low",
                "ci_high",
                "computed_at",
                "revision",
            ],
        )
    return len(cells)


def _stored(
    suite_id: int, method_id: int | None, suite_task_id: int | None
) -> dict[CellKey, tuple[int | None, str, int, int]]:
    """Each stored cell's (submission computed for, split, version, latest submission)."""
    cells = SuiteCell.objects.filter(suite_task__suite_id=suite_id)
    if method_id is not None:
        cells = cells.filter(method_id=method_id)
    if suite_task_id is not None:
        cells = cells.filter(suite_task_id=suite_task_id)
    return {
        (m, t): (s, split, v, latest)
        for m, t, s, split, v, latest in cells.values_list(
            "method_id", "suite_task_id", "submission_id", "split", "task_version", "latest_id"
        )
    }


def _cells_compute(
    stale: dict[CellKey, tuple[int, str]], tasks: dict[int, SuiteTask]
) -> list[SuiteCell]:
    scores = primary_scores(stale, tasks)
    submissions = Submission.objects.select_related("competition__task").in_bulk(
        [submission for submission, _status in stale.values()]
    )
    statistics: dict[tuple[int, str], BoardStatistics] = {}
    cells = []
    for (method_id, task_id), (submission_id, status) in stale.items():
        task = tasks[task_id]
        split = board_split(task)
        cell = SuiteCell(
            method_id=method_id,
            suite_task_id=task_id,
            latest_id=submission_id,
            submission_id=submission_id,
            computed_at=timezone.now(),
            split=split,
            task_version=task.competition.task.version,
            status=SuiteCell.Status.FAILED,
        )
        score = scores.get(submission_id)
        if status == Submission.Status.SCORED:
            cell.status = SuiteCell.Status.MISSING if score is None else SuiteCell.Status.SCORED
        if cell.status == SuiteCell.Status.SCORED:
            cell.score = score
            board = (task.competition_id, split)
            if board not in statistics:
                statistics[board] = board_statistics_get(
                    competition_id=task.competition_id, split=split
                )
            found = None
            if not ladder_withheld(task, split):
                found = submission_interval(
                    submission=submissions[submission_id], split=split, stats=statistics[board]
                )
            if found is not None:
                cell.ci_low, cell.ci_high = found
        cells.append(cell)
    return cells


def primary_scores(
    cells: dict[CellKey, tuple[int, str]], tasks: dict[int, SuiteTask]
) -> dict[int, float]:
    """Each cell submission's primary score on its task's board split and ranked version
    (absent: none under them), one query."""
    wanted: dict[int, tuple[str, str, int]] = {}
    for (_method_id, task_id), (submission_id, _status) in cells.items():
        task = tasks[task_id]
        wanted[submission_id] = (
            board_split(task),
            task.competition.task.primary_metric,
            task.competition.task.version,
        )
    found: dict[int, float] = {}
    if not wanted:
        return found
    rows = Score.objects.filter(submission_id__in=list(wanted)).filter(
        split__in={w[0] for w in wanted.values()},
        metric__in={w[1] for w in wanted.values()},
    )
    for submission_id, split, metric, version, value in rows.values_list(
        "submission_id", "split", "metric", "task_version", "value"
    ):
        if (split, metric, version) == wanted[submission_id] and value is not None:
            found[submission_id] = float(value)
    laddered = [
        submission_id
        for (_method_id, task_id), (submission_id, _status) in cells.items()
        if ladder_withheld(tasks[task_id], wanted[submission_id][0])
    ]
    if laddered:  # what the Ladder told the team instead (None: nothing yet)
        told = Submission.objects.filter(pk__in=laddered).values_list("pk", "ladder_public_score")
        for submission_id, value in told:
            scored = found.pop(submission_id, None)
            if scored is not None and value is not None:
                found[submission_id] = float(value)
    return found


# --- What asks for a refresh (connected in suites/apps.py) ----------------------------------


# The cell of a run that finished shows it from now on, unless the cell shows a newer run;
# its values are stale until computed (also when the same submission finished again: a
# rescore).
MARK_SQL = """
INSERT INTO suites_suitecell
    (method_id, suite_task_id, latest_id, status, split, task_version, revision)
VALUES (%(method)s, %(task)s, %(submission)s, '', '', 0,
    (SELECT matrix_version FROM suites_suite WHERE id = %(suite)s))
ON CONFLICT (method_id, suite_task_id) DO UPDATE SET
    latest_id = EXCLUDED.latest_id,
    submission_id = NULL,
    revision = EXCLUDED.revision
WHERE NOT EXISTS (
    SELECT 1 FROM suites_methodrun shown, suites_methodrun finished
    WHERE shown.submission_id = suites_suitecell.latest_id
        AND finished.submission_id = EXCLUDED.latest_id
        AND (shown.created_at, shown.id) > (finished.created_at, finished.id))
"""

# A finished run that does not count (`counts`) is shown only where the method has no cell
# yet; a cell that shows it already (it finished again) is stale until the worker decides.
MARK_UNCOUNTED_SQL = """
INSERT INTO suites_suitecell
    (method_id, suite_task_id, latest_id, status, split, task_version, revision)
VALUES (%(method)s, %(task)s, %(submission)s, '', '', 0,
    (SELECT matrix_version FROM suites_suite WHERE id = %(suite)s))
ON CONFLICT (method_id, suite_task_id) DO UPDATE SET
    submission_id = NULL,
    revision = EXCLUDED.revision
WHERE suites_suitecell.latest_id = EXCLUDED.latest_id
"""


def on_submission_finished(*, submission_id: int, **kwargs: Any) -> None:
    """A method's submission finished: its cell shows it (stale until computed; one that
    does not count only where the method has no cell yet), the kept matrix is no longer
    current, and the cell's refresh is enqueued, all in the transaction that records the
    outcome."""
    run = (
        MethodRun.objects.filter(submission_id=submission_id)
        .values_list(
            "method__suite_id",
            "method_id",
            "suite_task_id",
            "submission__status",
            "submission__failure",
        )
        .first()
    )
    if run is None:
        return
    suite_id, method_id, suite_task_id, status, failure = run
    # The suite's row first, as a refresh locks it before its cells: no deadlock between them.
    matrix_version_bump(suite_id=suite_id)
    with connection.cursor() as cursor:
        cursor.execute(
            MARK_SQL if counts(status, failure) else MARK_UNCOUNTED_SQL,
            {
                "suite": suite_id,
                "method": method_id,
                "task": suite_task_id,
                "submission": submission_id,
            },
        )
    suite_cells_enqueue(suite_id=suite_id, method_id=method_id, suite_task_id=suite_task_id)


def on_ranking_changed(*, competition_id: int, **kwargs: Any) -> None:
    """A task's version or split changed: its column in every suite holding it."""
    for suite_id, task_id in SuiteTask.objects.filter(competition_id=competition_id).values_list(
        "suite_id", "pk"
    ):
        suite_cells_enqueue(suite_id=suite_id, suite_task_id=task_id)


def on_matrix_row_saved(*, instance: Method | SuiteTask | MethodRun, **kwargs: Any) -> None:
    """A method, task or run saved or deleted: the suite's kept matrix is not current. A new
    run changes only what is pending; anything else changes the matrix's layout."""
    if isinstance(instance, MethodRun):
        changes = {"matrix_version": F("matrix_version") + 1}
        if not kwargs.get("created", False):  # a run changed or deleted: its cell may go
            changes["layout_version"] = F("layout_version") + 1
        Suite.objects.filter(methods__pk=instance.method_id).update(**changes)
    else:
        matrix_version_bump(suite_id=instance.suite_id, layout=True)
