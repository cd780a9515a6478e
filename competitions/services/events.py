"""Domain events for scripts and people: a submission scored or failed, a competition
finalized.

Contract: call an emitter once the fact is committed (or inside the transaction that commits
it). `event_emit` records one WebhookDelivery per matching active hook and enqueues its
sending on commit (competitions.services.webhooks); in the same transaction the emitters
write the recipients' notifications (services/notices.py), e-mailed on commit. Each recipient's data is what that user
could read through the API at that moment: private scores only once visible to them. The
emitters never raise: the fact stands even when its events cannot be recorded.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from competitions.models import Competition, Submission, Webhook, WebhookDelivery
from competitions.permissions import NotFound, access_submission, can_view
from competitions.selectors import submission_scores
from competitions.services.notices import competition_finalized_notify, submission_outcome_notify
from competitions.services.webhooks import deliveries_enqueue

log = logging.getLogger(__name__)
Event = Webhook.Event
OUTCOMES = {
    Submission.Status.SCORED: Event.SUBMISSION_SCORED,
    Submission.Status.FAILED: Event.SUBMISSION_FAILED,
}


def event_emit(*, kind: str, competition: Competition, data_for: Mapping[int, dict]) -> int:
    """Deliver event `kind` about `competition` to the hooks of the users in `data_for`
    (user id: the event's data as that user may read it). Returns how many deliveries."""
    now = timezone.now()
    event_id = uuid.uuid4().hex
    hooks = Webhook.objects.filter(owner_id__in=list(data_for), active=True).filter(
        Q(competition__isnull=True) | Q(competition=competition)
    )
    deliveries = [
        WebhookDelivery(
            webhook=hook,
            event=kind,
            event_id=event_id,
            body=json.dumps(
                {
                    "event": kind,
                    "id": event_id,
                    "created_at": now.isoformat(),
                    "data": data_for[hook.owner_id],
                },
                default=str,
            ),
            created_at=now,
        )
        for hook in hooks
        if kind in hook.events  # a JSON list: filtered here, as every database can
    ]
    with transaction.atomic():
        WebhookDelivery.objects.bulk_create(deliveries)
        deliveries_enqueue([d.pk for d in deliveries])
    return len(deliveries)


def _site_url(path: str) -> str:
    return f"{settings.HELDOUT_SITE_URL}{path}"


def submission_event_data(submission: Submission, user: User) -> dict:
    """A submission's outcome as `user` may read it (the API's detail, in short)."""
    path = reverse("api:submission-detail", args=[submission.pk])
    return {
        "submission": {
            "id": submission.pk,
            "url": _site_url(path),
            "competition": submission.competition.slug,
            "team": submission.team.name,
            "status": submission.status,
            "failure": submission.failure or None,
            "error_message": submission.error_message,
            "scores": submission_scores(submission=submission, user=user),
            "task_version": submission.task_version,
            "finished_at": latest.finished_at if (latest := submission.latest_attempt) else None,
        }
    }


def submission_outcome_emit(*, submission_id: int, attempt: int | None = None) -> int:
    """submission.scored or submission.failed to the team's members (hooks, notifications), if the
    submission's outcome is recorded (by scoring attempt `attempt`, if given: an attempt
    the reaper took back announces nothing). Never raises."""
    try:
        submission = Submission.objects.select_related("competition", "team").get(pk=submission_id)
        kind = OUTCOMES.get(Submission.Status(submission.status))
        if kind is None:
            return 0
        latest = submission.latest_attempt
        if attempt is not None and (latest is None or latest.number != attempt):
            return 0
        data_for = {}
        for user in submission.team.members.all():
            try:
                access_submission(user, submission_id)  # the API's own rule
            except NotFound:
                continue
            data_for[user.pk] = submission_event_data(submission, user)
        with transaction.atomic():
            submission_outcome_notify(submission=submission, user_ids=list(data_for))
            return event_emit(kind=kind, competition=submission.competition, data_for=data_for)
    except Exception:
        log.exception("the events of submission %s were not recorded", submission_id)
        return 0


def competition_finalized_emit(*, competition_id: int) -> int:
    """competition.finalized to its organizers and participants (hooks, notifications).
    Never raises."""
    try:
        competition = Competition.objects.get(pk=competition_id)
        users = User.objects.filter(
            Q(organized_competitions=competition) | Q(teams__competition=competition)
        ).distinct()
        data = {
            "competition": {
                "slug": competition.slug,
                "title": competition.title,
                "url": _site_url(reverse("api:competition-detail", args=[competition.slug])),
                "leaderboard_url": _site_url(
                    reverse("api:leaderboard", args=[competition.slug]) + "?split=private"
                ),
                "finalized_at": competition.finalized_at,
            }
        }
        data_for = {user.pk: data for user in users if can_view(user, competition)}
        with transaction.atomic():
            competition_finalized_notify(competition=competition, user_ids=list(data_for))
            return event_emit(
                kind=Event.COMPETITION_FINALIZED, competition=competition, data_for=data_for
            )
    except Exception:
        log.exception("the finalize event of competition %s was not recorded", competition_id)
        return 0
