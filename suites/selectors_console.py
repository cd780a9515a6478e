"""Reads for the suite organizer's console (suites/views_console.py, the organizer API):
the tasks in order with their state and run counts, the methods with their owners and run
counts, and the competitions an organizer may add. Each in a fixed number of queries
whatever the number of rows.

A task's state says whether the matrix can show its column yet, by the rule the matrix
uses (suites/selectors.py): `scored` once its constant predictor is scored on the board's
split under the ranked version; `failed` when the reference could not be made or scored
(`reason` says why: the column waits until the task's data or scorer is fixed); `waiting`
while a worker has not recorded it yet.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import Count, QuerySet

from competitions.models import Competition, ReferenceResult
from suites.cells import board_split
from suites.models import Method, Suite, SuiteTask

SCORED, FAILED, WAITING = "scored", "failed", "waiting"
STATES = (SCORED, FAILED, WAITING)


def console_tasks(suite: Suite, user: User) -> list[SuiteTask]:
    """The tasks in order, each with `run_count`, `state`, `state_reason` and `organized`
    (whether `user` organizes its competition: its console's links are for them). Three
    queries."""
    tasks: list[SuiteTask] = list(
        suite.tasks.select_related("competition__task")
        .annotate(run_count=Count("runs"))
        .order_by("position")
    )
    wanted = {(t.competition_id, t.competition.task.version): t for t in tasks}
    references = ReferenceResult.objects.filter(
        competition_id__in=[t.competition_id for t in tasks],
        kind=ReferenceResult.Kind.CONSTANT,
    ).values_list("competition_id", "task_version", "status", "reason", "scores")
    states: dict[int, tuple[str, str]] = {}
    for competition_id, version, status, reason, scores in references:
        task = wanted.get((competition_id, version))
        if task is None:
            continue
        if status == ReferenceResult.Status.SCORED:
            split_scores = (scores or {}).get(board_split(task), {})
            if split_scores.get(task.competition.task.primary_metric) is not None:
                states[task.pk] = (SCORED, "")
        else:
            states[task.pk] = (FAILED, reason)
    organized = set(
        Competition.objects.filter(
            pk__in=[t.competition_id for t in tasks],
            **({} if user.is_superuser else {"organizers": user}),
        ).values_list("pk", flat=True)
    )
    for t in tasks:
        t.organized = t.competition_id in organized  # type: ignore[attr-defined]
        t.state, t.state_reason = states.get(t.pk, (WAITING, ""))  # type: ignore[attr-defined]
    return tasks


def console_methods(suite: Suite) -> list[Method]:
    """The methods, oldest first, each with its owner and `run_count`. One query."""
    methods: list[Method] = list(
        suite.methods.select_related("owner")
        .annotate(run_count=Count("runs"))
        .order_by("created_at", "pk")
    )
    return methods


def competitions_to_add(user: User, suite: Suite) -> QuerySet[Competition]:
    """The competitions `user` is an organizer of that have a task and are not in the suite
    yet, by title. A superuser too is offered only theirs (the list stays short); the API
    adds any competition for them."""
    return (
        Competition.objects.filter(task__isnull=False, organizers=user)
        .exclude(suite_tasks__suite=suite)
        .order_by("title", "pk")
        .distinct()
    )
