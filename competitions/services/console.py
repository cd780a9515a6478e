"""The organizer console's writes that the Organize tab had left to the admin: the overview,
rules, dates and visibility; adding and deleting phases; organizers and invitations; and
actions on a selection of submissions.

Each is one durable transaction that checks the models' rules (full_clean,
competitions/rules.py) and writes its line in the audit log (services/audit.py). Changing
an existing phase is services/organize.py's phase_update, shared with the admin.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction

from competitions.errors import ApplicationError, InvalidState, full_clean_or_refuse
from competitions.models import Competition, Phase, Submission
from competitions.services.audit import Kind, organizer_action_record
from competitions.services.organize import phase_facts, phase_write
from competitions.services.submissions import submission_rescore, submission_set_disqualified

DETAIL_FIELDS = ("title", "description", "rules", "prize", "visibility", "start_at", "end_at")
PHASE_HAS_SUBMISSIONS = (
    "The phase has submissions, so it can't be deleted; change its dates instead."
)
LAST_ORGANIZER = "A competition keeps at least one organizer; add another before removing this one."
SELECTION_EMPTY = "Select at least one submission of this competition."


def competition_details_update(
    *,
    competition: Competition,
    by: User,
    title: str,
    description: str,
    rules: str,
    prize: str,
    visibility: str,
    start_at: datetime | None,
    end_at: datetime | None,
    reason: str = "",
) -> Competition:
    """Change what participants read (overview, rules, prize), the announced dates and who
    may see the competition. The log names the fields that changed."""
    with transaction.atomic(durable=True):
        locked = Competition.objects.select_for_update().get(pk=competition.pk)
        wanted = {
            "title": title,
            "description": description,
            "rules": rules,
            "prize": prize,
            "visibility": visibility,
            "start_at": start_at,
            "end_at": end_at,
        }
        changed = [f for f in DETAIL_FIELDS if getattr(locked, f) != wanted[f]]
        for field, value in wanted.items():
            setattr(locked, field, value)
        full_clean_or_refuse(locked)
        if changed:
            locked.save(update_fields=changed)
            organizer_action_record(
                competition_id=locked.pk,
                by=by,
                kind=Kind.DETAILS_UPDATED,
                target=", ".join(changed),
                reason=reason,
                details={"fields": changed},
            )
    for field, value in wanted.items():
        setattr(competition, field, value)
    return competition


def phase_holds_files(names: list[str]) -> str:
    return (
        f"The phase releases {', '.join(names)}; release the files with another phase "
        "(or at once) before deleting it."
    )


def phase_create(
    *,
    competition: Competition,
    by: User,
    name: str,
    start_at: datetime,
    end_at: datetime | None,
    daily_limit: int,
    total_limit: int | None,
    late_submissions_scored: bool,
) -> Phase:
    """Add a phase; it takes its place by its dates (phases are ordered by their start) and
    must not overlap another."""
    with transaction.atomic(durable=True):
        # Lock the competition's phases, so two additions can't each pass the overlap check.
        list(Phase.objects.select_for_update().filter(competition_id=competition.pk))
        return phase_write(
            Phase(competition=competition),
            by=by,
            kind=Kind.PHASE_CREATED,
            name=name,
            start_at=start_at,
            end_at=end_at,
            daily_limit=daily_limit,
            total_limit=total_limit,
            late_submissions_scored=late_submissions_scored,
        )


def phase_delete(*, phase: Phase, by: User) -> None:
    """Delete a phase nobody has submitted to (a submission keeps its phase)."""
    with transaction.atomic(durable=True):
        locked = Phase.objects.select_for_update().filter(pk=phase.pk).first()
        if locked is None:
            raise InvalidState("The phase is already deleted.")
        phase_remove(locked, by=by)


def phase_delete_refusal(phase: Phase) -> str | None:
    """Why the phase can't be deleted (a submission or a released file holds it), or None."""
    if Submission.objects.filter(phase=phase).exists():
        return PHASE_HAS_SUBMISSIONS
    held = list(phase.released_files.values_list("name", flat=True))
    return phase_holds_files(held) if held else None


def phase_remove(phase: Phase, *, by: User | None) -> None:
    """Delete a phase the caller's transaction has locked, refused as phase_delete_refusal
    says; logged."""
    refusal = phase_delete_refusal(phase)
    if refusal is not None:
        raise InvalidState(refusal)
    facts = phase_facts(phase)
    competition_id, name = phase.competition_id, phase.name
    phase.delete()
    organizer_action_record(
        competition_id=competition_id,
        by=by,
        kind=Kind.PHASE_DELETED,
        target=f"phase “{name}”",
        details=facts,
    )


def _user_named(username: str) -> User:
    user = User.objects.filter(username=username.strip(), is_active=True).first()
    if user is None:
        raise ApplicationError(f'No user is named "{username.strip()}".')
    return user


def competition_organizer_add(*, competition: Competition, by: User, username: str) -> User:
    """Make a user an organizer: they see the Organize tab and may change everything."""
    user = _user_named(username)
    with transaction.atomic(durable=True):
        locked = Competition.objects.select_for_update().get(pk=competition.pk)
        if locked.organizers.filter(pk=user.pk).exists():
            raise InvalidState(f"{user.username} already organizes this competition.")
        locked.organizers.add(user)
        organizer_action_record(
            competition_id=locked.pk, by=by, kind=Kind.ORGANIZER_ADDED, target=user.username
        )
    return user


def competition_organizer_remove(*, competition: Competition, by: User, user: User) -> None:
    """Take a user's organizer role away; the last organizer stays."""
    with transaction.atomic(durable=True):
        locked = Competition.objects.select_for_update().get(pk=competition.pk)
        if not locked.organizers.filter(pk=user.pk).exists():
            raise InvalidState(f"{user.username} does not organize this competition.")
        if locked.organizers.count() == 1:
            raise InvalidState(LAST_ORGANIZER)
        locked.organizers.remove(user)
        organizer_action_record(
            competition_id=locked.pk, by=by, kind=Kind.ORGANIZER_REMOVED, target=user.username
        )


def competition_invitee_add(*, competition: Competition, by: User, username: str) -> User:
    """Invite a user: an invite-only competition shows itself to its invitees."""
    user = _user_named(username)
    with transaction.atomic(durable=True):
        locked = Competition.objects.select_for_update().get(pk=competition.pk)
        if locked.invited.filter(pk=user.pk).exists():
            raise InvalidState(f"{user.username} is already invited.")
        locked.invited.add(user)
        organizer_action_record(
            competition_id=locked.pk, by=by, kind=Kind.INVITEE_ADDED, target=user.username
        )
    return user


def competition_invitee_remove(*, competition: Competition, by: User, user: User) -> None:
    """Withdraw an invitation. A member who joined stays in their team."""
    with transaction.atomic(durable=True):
        locked = Competition.objects.select_for_update().get(pk=competition.pk)
        if not locked.invited.filter(pk=user.pk).exists():
            raise InvalidState(f"{user.username} is not invited.")
        locked.invited.remove(user)
        organizer_action_record(
            competition_id=locked.pk, by=by, kind=Kind.INVITEE_REMOVED, target=user.username
        )


def _selection(competition: Competition, submission_ids: Iterable[int]) -> list[Submission]:
    chosen = list(
        Submission.objects.filter(competition=competition, pk__in=list(submission_ids))
        .select_related("team", "competition__task")
        .order_by("pk")
    )
    if not chosen:
        raise ApplicationError(SELECTION_EMPTY)
    return chosen


def submissions_rescore_selected(
    *, competition: Competition, by: User, submission_ids: Iterable[int]
) -> tuple[int, int]:
    """Queue the selected submissions for scoring again, all or none; those already waiting
    are left as they are. Returns (queued, left)."""
    queued = left = 0
    with transaction.atomic(durable=True):
        for submission in _selection(competition, submission_ids):
            if submission.status in (Submission.Status.QUEUED, Submission.Status.RUNNING):
                left += 1
                continue
            submission_rescore(submission=submission, by=by)
            queued += 1
    return queued, left


def submissions_disqualify_selected(
    *, competition: Competition, by: User, submission_ids: Iterable[int], reason: str
) -> int:
    """Disqualify the selected submissions with one reason (each team sees it), all or none.
    Returns how many."""
    with transaction.atomic(durable=True):
        chosen = _selection(competition, submission_ids)
        for submission in chosen:
            submission_set_disqualified(
                submission=submission, disqualified=True, reason=reason, by=by
            )
    return len(chosen)
