"""Phases that score their own data: a phase may pin a task version (Phase.task_version).

Its submissions are scored and recorded under that version whatever version is ranked
(judging.services), and while the phase is open the board ranks it: when the phase opens,
the periodic check (phase_versions_rank, CELERY_BEAT_SCHEDULE) ranks it as an organizer's
version switch does, without rescoring, and a submission arriving in the phase before that
check has run ranks it first (submission_create), so nothing of the phase is ever ranked
under another phase's data. The pin is what decides: while such a phase is open, an
organizer's switch to another version is refused (version_switch_refusal, checked by
services/jobs.py when the switch starts and again when it runs), since the next check
would undo it; the organizer changes the phase's pin instead (phase_version_set: the
organizer pages and the API). A phase without a pin, and every finalized competition, is
left alone. docs/bundle.md describes it.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from competitions.errors import InvalidState, full_clean_or_refuse
from competitions.models import Phase, Task
from competitions.services.audit import Kind, organizer_action_record
from competitions.services.freeze import competition_require_not_final
from competitions.services.versions import task_version_activate

log = logging.getLogger(__name__)

PIN_FROZEN = (
    "The competition is finalized: a phase's task version can't change unless an organizer "
    "reopens it."
)


class PhasePinsVersion(InvalidState):
    """A switch of the ranked version that an open phase's pin would undo."""

    code = "phase_pins_version"


def phase_version_set(*, phase: Phase, task_version: int | None, by: User | None) -> Phase:
    """Pin `phase` to the task's version `task_version` (None: it scores under whatever
    version is ranked). The rules are the model's (Phase.clean: a version of this task, and
    a usable one, rules.phase_version_unusable), refused as ApplicationError with their
    sentence; a finalized competition refuses (FinalizedError). A change is logged; when the
    phase is open, the board ranks the new pin at once (phase_version_rank, as when the
    phase opens: no rescore). Setting the pin it has changes nothing."""
    with transaction.atomic(durable=True):
        competition_require_not_final(competition_id=phase.competition_id, refusal=PIN_FROZEN)
        locked = Phase.objects.select_for_update().filter(pk=phase.pk).first()
        if locked is None:
            raise InvalidState("The phase is deleted.")
        before = locked.task_version
        locked.task_version = task_version
        full_clean_or_refuse(locked)
        if before != task_version:
            locked.save(update_fields=["task_version"])
            organizer_action_record(
                competition_id=locked.competition_id,
                by=by,
                kind=Kind.PHASE_UPDATED,
                target=f"phase “{locked.name}”",
                details={"task_version": task_version, "from": before},
            )
            if locked.is_open_at(timezone.now()):
                phase_version_rank(phase=locked)
    phase.task_version = task_version
    return phase


def phase_pinning_another(
    *, competition_id: int, number: int, now: datetime | None = None
) -> Phase | None:
    """The phase open at `now` that pins a version other than `number`, if any (phases
    don't overlap, so there is at most one)."""
    now = now or timezone.now()
    return (
        Phase.objects.filter(
            competition_id=competition_id, task_version__isnull=False, start_at__lte=now
        )
        .filter(Q(end_at__isnull=True) | Q(end_at__gt=now))
        .exclude(task_version=number)
        .order_by("start_at")
        .first()
    )


def version_switch_refusal(*, competition_id: int, number: int) -> None:
    """Raise PhasePinsVersion, naming the phase, when an open phase pins another version
    than `number`: the board ranks the pinned version while the phase is open
    (phase_versions_rank), so the switch would be undone within a minute."""
    phase = phase_pinning_another(competition_id=competition_id, number=number)
    if phase is None:
        return
    raise PhasePinsVersion(
        f"The phase “{phase.name}” is open and pins version {phase.task_version}: the "
        f"leaderboard ranks that version while the phase is open, so ranking version "
        f"{number} would be undone. Change the phase's task version instead (Organize → "
        "Phases, or PATCH the phase's task_version in the API).",
        extra={"phase": phase.pk, "phase_name": phase.name, "pinned": phase.task_version},
    )


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
