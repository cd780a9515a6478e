"""Setting up and running organizers' background jobs in tests that don't start a worker."""

from __future__ import annotations

from django.core.files.base import ContentFile

from competitions.models import Competition, OrganizerJob, Submission
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
