"""A competition's lifecycle: finalize (reveal the private board and freeze it) and reopen.

From finalize on nothing may move the final board: uploads, joins, team changes,
selections, rescores, disqualifications, bans and version switches are refused
(competitions/services/freeze.py), and scores that arrive for work accepted before finalize
are recorded without touching the board. Only `competition_reopen`, with a reason that the
leaderboard shows, lifts the freeze. Both are recorded as CompetitionEvents
(docs/lifecycle.md). Finalize asks a worker for the shake-up report
(services/shakeup.py); reopen discards it.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from competitions.errors import ApplicationError, InvalidState
from competitions.models import Competition, CompetitionEvent, Phase
from competitions.selectors_runs import replications_missing, replications_missing_reasons
from competitions.services.audit import Kind, organizer_action_record
from competitions.services.events import competition_finalized_emit
from competitions.services.leaderboard import leaderboard_rebuild
from competitions.services.shakeup import shakeup_discard, shakeup_enqueue
from competitions.signals import ranking_changed

REASON_MAX = 500


def competition_finalize(*, competition: Competition, by: User | None = None) -> CompetitionEvent:
    """Reveal the private leaderboard and freeze the competition, in one transaction.

    Phases still open end now (their `end_at` becomes the finalize time): the event lists
    them. Refused while the top entries wait for their replication.
    """
    with transaction.atomic(durable=True):
        locked = (
            Competition.objects.select_for_update(of=("self",))
            .select_related("task")
            .get(pk=competition.pk)
        )
        now = timezone.now()  # once the actions in flight have committed (services/freeze.py)
        if locked.is_finalized:
            raise InvalidState("The competition is already finalized.")
        missing = replications_missing(competition=locked)
        if missing:
            reasons = replications_missing_reasons(submission_ids=missing)
            raise InvalidState(
                f"The top {locked.replicate_top_n} container entries must be replicated "
                f"(or their replication cancelled) before finalizing; not yet: "
                f"{'; '.join(reasons)}.",
                extra={"unreplicated": missing, "reasons": reasons},
            )
        ended = _end_open_phases(locked, now)
        Competition.objects.filter(pk=locked.pk).update(finalized_at=now)
        event = CompetitionEvent.objects.create(
            competition=locked,
            kind=CompetitionEvent.Kind.FINALIZED,
            by=by,
            ended_phases=ended,
            at=now,
        )
        organizer_action_record(
            competition_id=locked.pk,
            by=by,
            kind=Kind.FINALIZED,
            details={"ended_phases": ended},
        )
        # The shake-up report (public rank -> private rank), by a worker after the commit.
        shakeup_enqueue(competition_id=locked.pk)
        ranking_changed.send(sender=Competition, competition_id=locked.pk)
    competition.refresh_from_db()
    event.competition = competition
    competition_finalized_emit(competition_id=competition.pk)  # webhooks; never raises
    return event


def _end_open_phases(competition: Competition, now: datetime) -> list[str]:
    """End the phases open at `now`, so no phase claims to take submissions once final."""
    phases = Phase.objects.select_for_update().filter(competition=competition)
    ended = [p for p in phases if p.is_open_at(now)]  # in start order (Phase.Meta)
    Phase.objects.filter(pk__in=[p.pk for p in ended]).update(end_at=now)
    return [p.name for p in ended]


def competition_reopen(*, competition: Competition, by: User, reason: str) -> CompetitionEvent:
    """Lift the freeze: the organizers can act again and the boards take in every score
    recorded meanwhile. The reason is required; the leaderboard shows it with the time.

    Phases that finalize ended stay ended; an organizer extends one to take uploads again.
    """
    reason = " ".join(reason.split())
    if not reason:
        raise ApplicationError("Say why the competition is reopened; the leaderboard shows it.")
    if len(reason) > REASON_MAX:
        raise ApplicationError(f"A reason has at most {REASON_MAX} characters.")
    with transaction.atomic(durable=True):
        locked = (
            Competition.objects.select_for_update(of=("self",))
            .select_related("task")
            .get(pk=competition.pk)
        )
        now = timezone.now()
        if not locked.is_finalized:
            raise InvalidState("The competition is not finalized, so there is nothing to reopen.")
        Competition.objects.filter(pk=locked.pk).update(
            finalized_at=None, reopened_at=now, reopen_reason=reason
        )
        event = CompetitionEvent.objects.create(
            competition=locked, kind=CompetitionEvent.Kind.REOPENED, by=by, reason=reason, at=now
        )
        organizer_action_record(competition_id=locked.pk, by=by, kind=Kind.REOPENED, reason=reason)
        locked.refresh_from_db()
        shakeup_discard(competition=locked)  # computed again at the next finalize
        # Scores that arrived during the freeze count from now on.
        leaderboard_rebuild(competition=locked)
        ranking_changed.send(sender=Competition, competition_id=locked.pk)
    competition.refresh_from_db()
    event.competition = competition
    return event
