"""Phases that score their own data: a phase may pin a task version (Phase.task_version).

Its submissions are scored and recorded under that version whatever version is ranked
(judging.services), and while the phase is open the board ranks it: when the phase opens,
the periodic check (phase_versions_rank, CELERY_BEAT_SCHEDULE) ranks it as an organizer's
version switch does, without rescoring, and a submission arriving in the phase before that
check has run ranks it first (submission_create), so nothing of the phase is ever ranked
under another phase's data. The pin is what decides: ranking another version while such a
phase is open lasts until the next check; change the phase's pin instead. A phase without
a pin, and every finalized competition, is left alone. docs/bundle.md describes it.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from competitions.models import Phase, Task
from competitions.services.audit import Kind, organizer_action_record
from competitions.services.versions import task_version_activate

log = logging.getLogger(__name__)


def phase_version_rank(*, phase: Phase) -> bool:
    """Rank the version `phase` pins, unless it is ranked already, the phase pins none, or
    the competition is finalized. Returns whether the board switched. Logged in the
    organizers' audit log as a version switch made by the platform (by: nobody)."""
    if phase.task_version is None:
        return False
    with transaction.atomic():
        # One switch at a time per task: a second caller sees the version ranked.
        task = (
            Task.objects.select_for_update()
            .select_related("competition")
            .get(competition_id=phase.competition_id)
        )
        if task.competition.is_finalized or task.version == phase.task_version:
            return False
        before = task.version
        task_version_activate(task=task, number=phase.task_version, rescore=False)
        organizer_action_record(
            competition_id=phase.competition_id,
            by=None,
            kind=Kind.VERSION_SWITCH_STARTED,
            target=f"version {phase.task_version}",
            reason=f"Phase “{phase.name}” opened; it scores under version {phase.task_version}.",
            details={"phase": phase.pk, "from": before, "rescore": False},
        )
    log.info("phase %s ranks version %s (was %s)", phase.pk, phase.task_version, before)
    return True


def phase_versions_rank(*, now: datetime | None = None) -> int:
    """Periodic: rank the version of every open phase that pins one the board does not rank
    yet (unfinalized competitions only). Idempotent; returns how many boards switched."""
    now = now or timezone.now()
    phases = (
        Phase.objects.filter(
            task_version__isnull=False,
            start_at__lte=now,
            competition__finalized_at__isnull=True,
        )
        .filter(Q(end_at__isnull=True) | Q(end_at__gt=now))
        .exclude(task_version=F("competition__task__version"))
        .order_by("pk")
    )
    return sum(phase_version_rank(phase=phase) for phase in phases)
