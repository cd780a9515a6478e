"""Reads for the suite's pages and API, beside suites/selectors.py (the matrix): the
listing, a suite's tasks with their public files, a method's runs. Each in a fixed number
of queries whatever the number of rows."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count, Prefetch, QuerySet
from django.utils import timezone

from competitions.models import Competition, Membership, Submission, TaskFile
from suites.models import Method, MethodRun, Suite, SuitePhase, SuiteTask
from suites.permissions import suites_listed_for


def suite_list_for(user: User | AnonymousUser) -> QuerySet[Suite]:
    """The suites `user` sees listed, newest first, with their numbers of tasks and methods."""
    return (
        suites_listed_for(user)
        .annotate(
            task_count=Count("tasks", distinct=True), method_count=Count("methods", distinct=True)
        )
        .order_by("-created_at", "-pk")
    )


def suite_tasks_with_files(suite: Suite, user: User | AnonymousUser) -> list[SuiteTask]:
    """The tasks in order, each with `visible_files`: its competition's public files that
    `user` may know of, as competitions.permissions.task_files_visible decides (a file
    released with a phase that has not started exists for that competition's organizers
    only). Three queries whatever the number of tasks."""
    files = TaskFile.objects.select_related("released_with").order_by("name")
    tasks = list(
        suite.tasks.select_related("competition__task")
        .prefetch_related(Prefetch("competition__task__files", queryset=files))
        .order_by("position")
    )
    organized = _organized(user, [t.competition_id for t in tasks])
    now = timezone.now()
    for t in tasks:
        t.visible_files = [  # type: ignore[attr-defined]
            f
            for f in t.competition.task.files.all()
            if t.competition_id in organized
            or f.released_with is None
            or f.released_with.start_at <= now
        ]
    return tasks


def _organized(user: User | AnonymousUser, competition_ids: list[int]) -> set[int]:
    """Which of these competitions the user organizes (every one for a superuser)."""
    if not user.is_authenticated or not competition_ids:
        return set()
    if user.is_superuser:
        return set(competition_ids)
    return set(
        Competition.objects.filter(pk__in=competition_ids, organizers=user).values_list(
            "pk", flat=True
        )
    )


def suite_schedule(suite: Suite) -> list[SuitePhase]:
    """The suite's phases in order, each with `current` (open now: started, not ended) and
    `quota`, its limits in words. One query."""
    now = timezone.now()
    phases = list(suite.phases.order_by("position"))
    for phase in phases:
        phase.current = phase.start_at <= now and (  # type: ignore[attr-defined]
            phase.end_at is None or now < phase.end_at
        )
        phase.quota = quota_words(phase)  # type: ignore[attr-defined]
    return phases


def quota_words(phase: SuitePhase) -> str:
    """ "5 submissions a day on each task, at most 20 in the phase"."""
    daily = phase.daily_limit
    words = f"{daily} submission{'s' if daily != 1 else ''} a day on each task"
    if phase.total_limit is not None:
        words += f", at most {phase.total_limit} in the phase"
    return words


def schedule_followers(suite: Suite) -> tuple[list[str], list[str]]:
    """The keys of the tasks that follow the suite's phases (those it made) and of those
    that keep their own competition's (attached), in order. One query."""
    rows = suite.tasks.order_by("position").values_list("key", "owned")
    return [k for k, owned in rows if owned], [k for k, owned in rows if not owned]


def suite_methods(suite: Suite) -> list[Method]:
    return list(suite.methods.select_related("owner").order_by("created_at", "pk"))


def joined_tasks(user: User | AnonymousUser, suite: Suite) -> int:
    """How many of the suite's tasks the user has joined (0 for an anonymous visitor)."""
    if not user.is_authenticated:
        return 0
    return Membership.objects.filter(user=user, competition__suite_tasks__suite=suite).count()


@dataclass(frozen=True)
class RunRow:
    task: SuiteTask
    submission_id: int
    status: str
    created_at: object
    fanout: str | None


def method_runs(method: Method) -> list[RunRow]:
    """Every run of the method, newest first, with its submission's status (no score: the
    matrix shows the counted one, and a submission's own page its scores)."""
    runs = (
        MethodRun.objects.filter(method=method)
        .select_related("suite_task__competition", "submission")
        .only(
            "created_at",
            "fanout",
            "submission_id",
            "submission__status",
            "suite_task__key",
            "suite_task__position",
            "suite_task__competition__slug",
            "suite_task__competition__title",
        )
        .order_by("-created_at", "-pk")
    )
    return [
        RunRow(
            task=r.suite_task,
            submission_id=r.submission_id,
            status=r.submission.status,
            created_at=r.created_at,
            fanout=str(r.fanout) if r.fanout else None,
        )
        for r in runs
    ]


STATUSES = [s for s, _ in Submission.Status.choices]
