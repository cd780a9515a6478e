"""Organizer writes from the organizer pages: phases, limits, the kind of public board
and the tie rule.

Their rules are the models' (Competition.clean, Phase.clean and constraints, written once
in competitions/rules.py), so the pages, the admin and a bundle import refuse alike.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from competitions.errors import ApplicationError, full_clean_or_refuse
from competitions.models import Competition, Phase
from competitions.services.audit import Kind, organizer_action_record
from competitions.services.freeze import competition_require_not_final
from competitions.services.leaderboard import leaderboard_rebuild

LIMITS_FROZEN = (
    "The competition is finalized: its limits can't change unless an organizer reopens it."
)

TIE_RULE_FROZEN = (
    "The competition is finalized: its tie rule can't change unless an organizer reopens it."
)


@transaction.atomic
def competition_limits_update(
    *,
    competition: Competition,
    selection_limit: int,
    max_team_size: int,
    by: User | None = None,
) -> Competition:
    """Change the team limits. Existing teams larger than a new size limit are left as they are."""
    competition_require_not_final(  # the selection limit decides the private board
        competition_id=competition.pk,
        refusal=LIMITS_FROZEN,
    )
    competition.selection_limit = selection_limit
    competition.max_team_size = max_team_size
    full_clean_or_refuse(competition)
    competition.save(update_fields=["selection_limit", "max_team_size"])
    organizer_action_record(
        competition_id=competition.pk,
        by=by,
        kind=Kind.LIMITS_UPDATED,
        details={"selection_limit": selection_limit, "max_team_size": max_team_size},
    )
    return competition


@transaction.atomic
def competition_tie_rule_update(
    *,
    competition: Competition,
    tie_rule: str,
    tie_break_metric: str,
    by: User | None = None,
) -> Competition:
    """Declare how ties are resolved for prizes (the rules page states it). Frozen from
    finalize on: the prizes are decided then."""
    competition_require_not_final(competition_id=competition.pk, refusal=TIE_RULE_FROZEN)
    competition.tie_rule = tie_rule
    competition.tie_break_metric = tie_break_metric
    full_clean_or_refuse(competition)
    competition.save(update_fields=["tie_rule", "tie_break_metric"])
    organizer_action_record(
        competition_id=competition.pk,
        by=by,
        kind=Kind.TIE_RULE_UPDATED,
        details={"tie_rule": tie_rule, "tie_break_metric": tie_break_metric},
    )
    return competition


@transaction.atomic
def competition_public_board_set(
    *, competition: Competition, public_board: str, by: User | None = None
) -> Competition:
    """Make the public board plain or a Ladder (competitions/services/ladder.py); a change
    rebuilds the board, whose public rows and told scores follow the new kind."""
    competition_require_not_final(competition_id=competition.pk, refusal=LIMITS_FROZEN)
    # As stored: a bound ModelForm has already set the instance's fields.
    stored = Competition.objects.values_list("public_board", flat=True).get(pk=competition.pk)
    competition.public_board = public_board
    full_clean_or_refuse(competition)
    if stored != public_board:
        competition.save(update_fields=["public_board"])
        leaderboard_rebuild(competition=competition)
        organizer_action_record(
            competition_id=competition.pk,
            by=by,
            kind=Kind.PUBLIC_BOARD_SET,
            details={"from": stored, "to": public_board},
        )
    return competition


@transaction.atomic
def phase_update(
    *,
    phase: Phase,
    name: str,
    start_at: datetime,
    end_at: datetime | None,
    daily_limit: int,
    total_limit: int | None,
    late_submissions_scored: bool,
    by: User | None = None,
) -> Phase:
    """Change a phase's dates and quotas; phases of a competition must not overlap.

    Submissions already made keep their phase; quotas apply from the next upload.
    """
    # Lock the competition's phases, so two changes can't each pass the overlap check.
    list(Phase.objects.select_for_update().filter(competition_id=phase.competition_id))
    return phase_write(
        phase,
        by=by,
        kind=Kind.PHASE_UPDATED,
        name=name,
        start_at=start_at,
        end_at=end_at,
        daily_limit=daily_limit,
        total_limit=total_limit,
        late_submissions_scored=late_submissions_scored,
    )


def phase_write(
    phase: Phase, *, by: User | None, kind: str, overlap_checked: bool = False, **values: object
) -> Phase:
    """Set `values` on the phase (new or stored), check the phase rules, save it and log it
    as `kind`; inside the caller's transaction, which has locked the competition's phases.
    `overlap_checked`: the caller checked the competition's phases as a whole (a suite's
    schedule, several phases changing at once), so this one is not checked against the
    others as stored."""
    for field, value in values.items():
        setattr(phase, field, value)
    phase.overlap_checked_elsewhere = overlap_checked
    full_clean_or_refuse(phase)
    try:
        with transaction.atomic():
            phase.save()
    except IntegrityError:  # a constraint the clean above checks already; a race at worst
        raise ApplicationError("The phase breaks a rule of phases; reload and try again.") from None
    organizer_action_record(
        competition_id=phase.competition_id,
        by=by,
        kind=kind,
        target=f"phase “{phase.name}”",
        details=phase_facts(phase),
    )
    return phase


@transaction.atomic
def phase_board_metrics_update(
    *, phase: Phase, board_metrics: list[str], by: User | None = None
) -> Phase:
    """Choose the leaderboard's columns while `phase` is the board's (selectors_boards):
    metrics the task computes, in order; [] shows them all. Every unknown name is refused
    at once. The ranking stays the primary metric's."""
    phase.board_metrics = list(board_metrics)
    full_clean_or_refuse(phase)
    phase.save(update_fields=["board_metrics"])  # the board version counts up (0024)
    organizer_action_record(
        competition_id=phase.competition_id,
        by=by,
        kind=Kind.PHASE_UPDATED,
        target=f"phase “{phase.name}”",
        details={"board_metrics": phase.board_metrics},
    )
    return phase


def phase_facts(phase: Phase) -> dict[str, object]:
    """A phase's dates and quotas as the log keeps them."""
    return {
        "start_at": phase.start_at.isoformat(),
        "end_at": phase.end_at.isoformat() if phase.end_at else None,
        "daily_limit": phase.daily_limit,
        "total_limit": phase.total_limit,
    }
