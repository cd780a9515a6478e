"""Background work as organizers watch it: their jobs (models.OrganizerJob) and the
workers' recent reports of a scorer that differs from the ranked version's."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from competitions.models import Competition, OrganizerJob, ScorerMismatchReport, Task

# A mismatch report older than this no longer says what a worker runs now.
SCORER_REPORT_RECENT = timedelta(hours=1)


def scorer_mismatches_recent(*, task: Task) -> list[ScorerMismatchReport]:
    """Workers that lately left the task's submissions because their scorer differs from
    the ranked version's (services.scorer_identity), newest first."""
    since = timezone.now() - SCORER_REPORT_RECENT
    return list(ScorerMismatchReport.objects.filter(task=task, last_at__gte=since))


def organizer_job_latest(*, competition: Competition, kind: str) -> OrganizerJob | None:
    """The competition's most recent background job of this kind (OrganizerJob.Kind)."""
    return OrganizerJob.objects.filter(competition=competition, kind=kind).first()


def organizer_jobs_recent(*, competition: Competition, limit: int = 5) -> list[OrganizerJob]:
    return list(
        OrganizerJob.objects.filter(competition=competition).select_related("created_by")[:limit]
    )
