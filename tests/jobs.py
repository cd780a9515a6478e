"""Setting up and running organizers' background jobs in tests that don't start a worker."""

from __future__ import annotations

from django.core.files.base import ContentFile
from django.db.models import Max

from competitions.models import Competition, OrganizerJob, OutboxMessage, Submission
from competitions.services.jobs import organizer_job_run
from competitions.services.versions import task_version_create
from judging.services import submission_score
from scoring.scorers import InProcessScorer
from tests import factories


def scored(competition: Competition, user) -> Submission:
    """The user's perfect predictions, submitted and scored in-process under the task's version."""
    submission = factories.submitted(competition, user)
    submission_score(submission_id=submission.pk, scorer=InProcessScorer())
    return submission


def add_version(competition: Competition, truth: str) -> None:
    """A new task version whose ground truth is `truth` (not switched to)."""
    task_version_create(
        task=competition.task, ground_truth=ContentFile(truth.encode(), name="t.csv")
    )


def run_queued_jobs(**kwargs) -> list[OrganizerJob]:
    """Run every queued job as a worker would (oldest first); returns them, finished."""
    ids = list(
        OrganizerJob.objects.filter(status=OrganizerJob.Status.QUEUED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for job_id in ids:
        assert organizer_job_run(job_id=job_id, **kwargs)
    return list(OrganizerJob.objects.filter(pk__in=ids).order_by("pk"))


class OutboxWatch:
    """The Celery tasks written to the outbox since this watch began, by name, sorted.

    Tests name what an action queued instead of counting on-commit callbacks, which grow
    whenever an action gains an unrelated follow-up (a board's interval refresh, say)."""

    def __init__(self) -> None:
        self.after = OutboxMessage.objects.aggregate(last=Max("pk"))["last"] or 0

    def tasks(self) -> list[str]:
        rows = OutboxMessage.objects.filter(pk__gt=self.after).values_list("task", flat=True)
        return sorted(rows)
