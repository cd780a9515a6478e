"""Running organizers' background jobs in tests that don't start a worker."""

from __future__ import annotations

from competitions.models import OrganizerJob
from competitions.services.jobs import organizer_job_run


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
