"""What the domain tells people in the site and by e-mail (the notifications app).

Contract: each `*_notify` runs in the transaction of the fact it announces (the events'
emitters, services/events.py, and `team_invite`), so the notifications exist if and only
if the fact was committed; their e-mails go out from a task enqueued through the outbox on
commit (services/outbox.py), which sends each at most once. A notice's text holds only what
every recipient may read: a scored submission's public score, never a private one nor a
label, whatever the moment.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from competitions.models import Competition, Membership, Phase, Submission, TeamInvitation
from competitions.permissions import can_view
from competitions.selectors import submission_scores
from competitions.services.outbox import enqueue_many
from notifications.models import Kind
from notifications.services import EMAIL_TASK, Notice, notifications_create

log = logging.getLogger(__name__)


def notices_deliver(*, notice: Notice, user_ids: Iterable[int]) -> int:
    """Write the notice for each user (by their choices) and enqueue its e-mails on commit.
    Returns how many notifications were written."""
    with transaction.atomic():
        rows = notifications_create(notice=notice, user_ids=user_ids)
        emails = [[row.pk] for row in rows if row.email_wanted]
        if emails:
            queue = settings.HELDOUT_WEBHOOK_QUEUE or settings.CELERY_TASK_DEFAULT_QUEUE
            enqueue_many(EMAIL_TASK, emails, queue=queue)
    return len(rows)


def public_score(submission: Submission) -> float | None:
    """The primary metric's public score, as the public board may show it (None: none)."""
    scores = submission_scores(submission=submission, user=AnonymousUser())
    return scores.get("public", {}).get(submission.competition.task.primary_metric)


def submission_outcome_notify(*, submission: Submission, user_ids: Iterable[int]) -> int:
    """ "Scored" (with the public score) or "failed" to `user_ids`, the team's members who
    may read the submission."""
    competition = submission.competition
    url = reverse("submission-page", args=[competition.slug, submission.pk])
    if submission.status == Submission.Status.SCORED:
        score = public_score(submission)
        metric = competition.task.primary_metric
        body = (
            f"Public score: {metric} {score:.6g}."
            if score is not None
            else "Its page shows what the public board may show."
        )
        notice = Notice(
            kind=Kind.SUBMISSION_SCORED,
            title=f"Submission #{submission.pk} to {competition.title} is scored",
            body=body,
            url=url,
        )
    else:
        notice = Notice(
            kind=Kind.SUBMISSION_FAILED,
            title=f"Submission #{submission.pk} to {competition.title} failed",
            body="Its page says why.",
            url=url,
        )
    return notices_deliver(notice=notice, user_ids=user_ids)


def competition_finalized_notify(*, competition: Competition, user_ids: Iterable[int]) -> int:
    notice = Notice(
        kind=Kind.COMPETITION_FINALIZED,
        title=f"{competition.title} is finalized",
        body="The private leaderboard is revealed: the final ranking.",
        url=reverse("leaderboard", args=[competition.slug]) + "?split=private",
    )
    return notices_deliver(notice=notice, user_ids=user_ids)


def invitation_notify(*, invitation: TeamInvitation) -> int:
    """Tell the invited user (an invitation by name; a link invitation names nobody), if
    they may see the competition: its page is the invitation's, and its title is no one
    else's to learn."""
    if invitation.invited_user is None:
        return 0
    team = invitation.team
    competition = team.competition
    if not can_view(invitation.invited_user, competition):
        return 0
    notice = Notice(
        kind=Kind.TEAM_INVITATION,
        title=f"{invitation.created_by.get_username()} invites you to team {team.name}",
        body=f"In {competition.title}. Accept or ignore it on the invitation's page.",
        url=reverse("invitation", args=[competition.slug, invitation.token]),
    )
    return notices_deliver(notice=notice, user_ids=[invitation.invited_user.pk])


# --- Phases opening and ending soon (a periodic task, CELERY_BEAT_SCHEDULE) ---------------


def phase_notices_send(*, now: datetime | None = None) -> int:
    """Tell the members of unfinalized competitions that a phase opened (within the last
    HELDOUT_PHASE_NOTICE_S) or ends within HELDOUT_PHASE_NOTICE_S. Each member hears of each
    phase's opening and ending once (Notification.key's unique constraint), however often
    this runs. Returns how many notifications were written."""
    now = now or timezone.now()
    window = timedelta(seconds=settings.HELDOUT_PHASE_NOTICE_S)
    phases = Phase.objects.filter(competition__finalized_at__isnull=True).select_related(
        "competition"
    )
    opened = phases.filter(start_at__lte=now, start_at__gt=now - window)
    ending = phases.filter(end_at__gt=now, end_at__lte=now + window, start_at__lte=now)
    written = 0
    for phase in opened:
        written += _phase_notice(phase, _opened_notice(phase))
    for phase in ending:
        written += _phase_notice(phase, _ending_notice(phase))
    return written


def _opened_notice(phase: Phase) -> Notice:
    competition = phase.competition
    return Notice(
        kind=Kind.PHASE_OPENED,
        title=f"{phase.name} of {competition.title} is open",
        body=_ends(phase),
        url=reverse("submit", args=[competition.slug]),
        key=f"phase:{phase.pk}:opened",
    )


def _ending_notice(phase: Phase) -> Notice:
    competition = phase.competition
    assert phase.end_at is not None
    return Notice(
        kind=Kind.PHASE_ENDING,
        title=f"{phase.name} of {competition.title} ends soon",
        body=_ends(phase),
        url=reverse("submit", args=[competition.slug]),
        key=f"phase:{phase.pk}:ending",
    )


def _ends(phase: Phase) -> str:
    if phase.end_at is None:
        return "It has no end date."
    return f"It ends at {phase.end_at:%Y-%m-%d %H:%M} UTC."


def _phase_notice(phase: Phase, notice: Notice) -> int:
    members = Membership.objects.filter(competition_id=phase.competition_id).values_list(
        "user_id", flat=True
    )
    try:
        with transaction.atomic():
            return notices_deliver(notice=notice, user_ids=list(members))
    except IntegrityError:  # a concurrent run wrote them first (notification_once_per_key)
        log.info("phase %s: %s already told", phase.pk, notice.key)
        return 0
