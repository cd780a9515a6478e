"""Notifications of the domain's facts (competitions/services/notices.py): each event tells
the right people only, by their choices, in the event's transaction; an e-mail goes out once
however often its task is delivered; no notice tells a private score."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.db import transaction
from django.utils import timezone

from competitions.models import Competition, Membership, OutboxMessage, Phase, Submission
from competitions.services.events import competition_finalized_emit, submission_outcome_emit
from competitions.services.lifecycle import competition_finalize
from competitions.services.notices import phase_notices_send
from competitions.services.teams import competition_join, team_invite
from notifications.models import Kind, Notification
from notifications.services import EMAIL_TASK, notification_email_send, preferences_set
from notifications.tasks import notification_email_task
from tests import factories

pytestmark = pytest.mark.django_db

SCORES: dict[str, dict[str, float | None]] = {
    "public": {"roc_auc": 0.875, "accuracy": 0.8},
    "private": {"roc_auc": 0.6125, "accuracy": 0.6},
}


def _team(user, competition):
    return Membership.objects.get(user=user, competition=competition).team


def _scored(user, competition) -> Submission:
    created = timezone.now() - timedelta(minutes=5)
    return factories.scored_submission(_team(user, competition), SCORES, created_at=created)


def _failed(user, competition) -> Submission:
    failed = factories.submission_row(
        _team(user, competition),
        status=Submission.Status.FAILED,
        failure=Submission.Failure.INVALID,
        error_message="Row 3: label 1 expected 0.",  # a label must never reach a notice
    )
    failed.save()
    return failed


def _told(kind: str) -> set[str]:
    return set(Notification.objects.filter(kind=kind).values_list("user__username", flat=True))


def _emails_queued() -> list[int]:
    return [m.args[0] for m in OutboxMessage.objects.filter(task=EMAIL_TASK).order_by("pk")]


def test_a_scored_submission_tells_its_team_only_with_the_public_score(
    competition, participant, other_participant, outsider, organizer
):
    scored = _scored(participant, competition)
    submission_outcome_emit(submission_id=scored.pk)
    assert _told(Kind.SUBMISSION_SCORED) == {"alice"}
    notice = Notification.objects.get()
    assert "0.875" in notice.body
    assert "0.6125" not in notice.title + notice.body
    assert notice.url == f"/c/{competition.slug}/submissions/{scored.pk}/"
    assert notice.shown
    assert not notice.email_wanted  # scored: the bell only, by default
    assert _emails_queued() == []


def test_a_scored_notice_shows_no_private_score_even_after_finalize(competition, participant):
    competition_finalize(competition=competition)
    Notification.objects.all().delete()
    scored = _scored(participant, competition)
    submission_outcome_emit(submission_id=scored.pk)
    notice = Notification.objects.get(kind=Kind.SUBMISSION_SCORED)
    assert "0.875" in notice.body
    assert "0.6125" not in notice.title + notice.body


def test_a_failed_submission_tells_its_team_and_queues_an_email_without_the_error(
    competition, participant
):
    teammate = factories.make_user("dora")
    Membership.objects.create(
        competition=competition,
        team=_team(participant, competition),
        user=teammate,
        accepted_rules_at=timezone.now(),
    )
    failed = _failed(participant, competition)
    submission_outcome_emit(submission_id=failed.pk)
    assert _told(Kind.SUBMISSION_FAILED) == {"alice", "dora"}
    rows = Notification.objects.filter(kind=Kind.SUBMISSION_FAILED).order_by("pk")
    assert all("label" not in n.title + n.body for n in rows)
    assert _emails_queued() == [n.pk for n in rows]


def test_a_submission_still_queued_tells_nobody(competition, participant, submission):
    submission_outcome_emit(submission_id=submission.pk)
    assert not Notification.objects.exists()


def test_a_named_invitation_tells_the_invited_user_only(competition, participant, outsider):
    invitation = team_invite(
        team=_team(participant, competition), by=participant, username="charlie"
    )
    notice = Notification.objects.get()
    assert (notice.user, notice.kind) == (outsider, Kind.TEAM_INVITATION)
    assert notice.url == f"/c/{competition.slug}/team/invitations/{invitation.token}/"
    assert "alice" in notice.title
    assert _emails_queued() == [notice.pk]


def test_an_invitation_to_a_competition_the_user_cannot_see_tells_them_nothing(
    organizer, participant, outsider
):
    hidden = factories.make_competition(
        slug="hidden", organizers=[organizer], visibility=Competition.Visibility.INVITE_ONLY
    )
    hidden.invited.add(participant)
    team = competition_join(competition=hidden, user=participant, accept_rules=True).team
    team_invite(team=team, by=participant, username="charlie")
    assert not Notification.objects.exists()
    hidden.invited.add(factories.make_user("erin"))
    team_invite(team=team, by=participant, username="erin")
    assert _told(Kind.TEAM_INVITATION) == {"erin"}


def test_inviting_again_while_pending_tells_nothing_new(competition, participant, outsider):
    team = _team(participant, competition)
    team_invite(team=team, by=participant, username="charlie")
    team_invite(team=team, by=participant, username="charlie")
    assert Notification.objects.count() == 1


def test_a_link_invitation_tells_nobody(competition, participant):
    team_invite(team=_team(participant, competition), by=participant)
    assert not Notification.objects.exists()


def test_finalize_tells_participants_and_organizers_only(
    competition, participant, other_participant, organizer, outsider, other_competition
):
    competition_finalize(competition=competition)
    assert _told(Kind.COMPETITION_FINALIZED) == {"alice", "bob", "orga"}
    assert len(_emails_queued()) == 3
    notice = Notification.objects.filter(kind=Kind.COMPETITION_FINALIZED).get(user=organizer)
    assert notice.url == f"/c/{competition.slug}/leaderboard/?split=private"


def test_each_user_gets_what_they_chose(competition, participant, other_participant):
    preferences_set(user=participant, choices={Kind.SUBMISSION_FAILED: (False, False)})
    preferences_set(user=other_participant, choices={Kind.SUBMISSION_FAILED: (False, True)})
    preferences_set(user=other_participant, choices={Kind.SUBMISSION_SCORED: (True, True)})
    submission_outcome_emit(submission_id=_failed(participant, competition).pk)
    submission_outcome_emit(submission_id=_failed(other_participant, competition).pk)
    submission_outcome_emit(submission_id=_scored(other_participant, competition).pk)
    # alice wants nothing of failures; bob failures by e-mail only, scores both ways.
    rows = Notification.objects.order_by("pk")
    assert [(n.user.username, n.kind, n.shown, n.email_wanted) for n in rows] == [
        ("bob", Kind.SUBMISSION_FAILED, False, True),
        ("bob", Kind.SUBMISSION_SCORED, True, True),
    ]


def test_a_user_without_an_email_address_gets_no_email(competition, participant):
    User.objects.filter(pk=participant.pk).update(email="")
    submission_outcome_emit(submission_id=_failed(participant, competition).pk)
    notice = Notification.objects.get()
    assert notice.shown
    assert not notice.email_wanted
    assert _emails_queued() == []


def test_an_email_is_sent_once_however_often_its_task_is_delivered(competition, participant):
    submission_outcome_emit(submission_id=_failed(participant, competition).pk)
    [notification_id] = _emails_queued()
    assert notification_email_task.apply(args=[notification_id]).get() is True
    assert notification_email_task.apply(args=[notification_id]).get() is False
    assert notification_email_send(notification_id=notification_id) is False
    [email] = mail.outbox
    assert email.to == ["alice@example.org"]
    assert email.subject.startswith("[Heldout] Submission #")
    assert f"/c/{competition.slug}/submissions/" in email.body
    assert "/account/#notifications" in email.body
    assert Notification.objects.get().email_sent_at is not None


def test_an_email_that_could_not_be_sent_is_tried_again(competition, participant, monkeypatch):
    submission_outcome_emit(submission_id=_failed(participant, competition).pk)
    [notification_id] = _emails_queued()

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("the SMTP server is down")

    monkeypatch.setattr("notifications.services.send_mail", refuse)
    with pytest.raises(ConnectionRefusedError):
        notification_email_send(notification_id=notification_id)
    assert Notification.objects.get().email_sent_at is None
    monkeypatch.undo()
    assert notification_email_send(notification_id=notification_id) is True
    assert len(mail.outbox) == 1


def test_an_unwanted_email_is_never_sent(competition, participant):
    submission_outcome_emit(submission_id=_scored(participant, competition).pk)
    assert notification_email_send(notification_id=Notification.objects.get().pk) is False
    assert mail.outbox == []


def test_notifications_roll_back_with_the_fact_that_failed(competition, participant):
    failed = _failed(participant, competition)

    def fact_then_fault() -> None:
        with transaction.atomic():
            submission_outcome_emit(submission_id=failed.pk)
            assert Notification.objects.exists()  # written in the fact's transaction
            raise RuntimeError("the fact's transaction fails")

    with pytest.raises(RuntimeError):
        fact_then_fault()
    assert not Notification.objects.exists()
    assert _emails_queued() == []


def test_the_finalize_emitter_never_raises(competition, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("competitions.services.events.competition_finalized_notify", broken)
    assert competition_finalized_emit(competition_id=competition.pk) == 0


# --- Phases opening and ending soon ----------------------------------------------------


def _phase(competition, **times) -> Phase:
    return Phase.objects.create(competition=competition, name="Final", **times)


def test_members_hear_once_that_a_phase_opened_and_once_that_it_ends_soon(
    competition, participant, other_participant, outsider, organizer
):
    now = timezone.now()
    Phase.objects.filter(competition=competition).update(end_at=now - timedelta(days=1))
    phase = _phase(competition, start_at=now - timedelta(hours=1), end_at=now + timedelta(hours=23))
    assert phase_notices_send(now=now) == 4
    assert phase_notices_send(now=now) == 0
    assert phase_notices_send(now=now + timedelta(hours=2)) == 0
    assert _told(Kind.PHASE_OPENED) == {"alice", "bob"}
    assert _told(Kind.PHASE_ENDING) == {"alice", "bob"}
    keys = set(Notification.objects.values_list("key", flat=True))
    assert keys == {f"phase:{phase.pk}:opened", f"phase:{phase.pk}:ending"}
    # opened: the bell only by default; ending: the bell and an e-mail.
    assert len(_emails_queued()) == 2


def test_a_member_who_joins_later_hears_of_the_phase_too(competition, participant):
    now = timezone.now()
    Phase.objects.filter(competition=competition).update(end_at=now - timedelta(days=1))
    _phase(competition, start_at=now - timedelta(hours=1), end_at=now + timedelta(days=9))
    phase_notices_send(now=now)
    factories.team_for(competition, "erin")
    phase_notices_send(now=now + timedelta(minutes=10))
    assert _told(Kind.PHASE_OPENED) == {"alice", "bob", "erin"}
    assert Notification.objects.count() == 3


def test_phases_far_from_their_start_or_end_tell_nothing(competition, participant):
    # The fixture's phase opened a day ago and ends in thirty days.
    assert phase_notices_send(now=timezone.now() + timedelta(minutes=1)) == 0
    assert not Notification.objects.exists()


def test_a_finalized_competitions_phases_tell_nothing(competition, participant):
    now = timezone.now()
    competition_finalize(competition=competition)
    Notification.objects.all().delete()
    _phase(competition, start_at=now - timedelta(hours=1), end_at=now + timedelta(hours=2))
    assert phase_notices_send(now=now) == 0
