"""The default recovery settings meet the recovery target: a submission whose worker died is
back in the queue within 2 minutes, and a live one is never taken back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from competitions.models import Attempt
from competitions.services.submissions import submission_create
from judging.checks import REAP_ENTRY, recovery_settings_check
from judging.reaper import submissions_reap
from tests import factories

TARGET_S = 120


def _reap_every() -> float:
    period = settings.CELERY_BEAT_SCHEDULE[REAP_ENTRY]["schedule"]
    assert isinstance(period, float | int)
    return float(period)


def test_the_defaults_requeue_within_two_minutes_and_pass_the_check():
    reap_every = _reap_every()
    # The heartbeat is at most as old as the death; the reaper finds it at its next round.
    assert settings.HELDOUT_RECOVER_AFTER_S + reap_every <= TARGET_S
    assert settings.HELDOUT_RECOVER_AFTER_S > 2 * settings.HELDOUT_HEARTBEAT_S
    assert recovery_settings_check() == []


@pytest.mark.django_db
def test_with_the_defaults_a_worker_dead_for_two_minutes_has_its_submission_requeued(
    competition, participant, django_capture_on_commit_callbacks
):
    submission = submission_create(
        competition=competition,
        user=participant,
        uploaded_file=factories.upload(factories.perfect_predictions()),
    )
    died = timezone.now() - timedelta(minutes=10)
    factories.claimed(submission, started_s_ago=(timezone.now() - died).total_seconds())
    Attempt.objects.filter(submission=submission).update(started_at=died, heartbeat_at=died)
    # The last round before the target that finds it silent for longer than the setting.
    reap_every = _reap_every()
    too_early = died + timedelta(seconds=settings.HELDOUT_RECOVER_AFTER_S - 1)
    in_time = died + timedelta(seconds=TARGET_S - reap_every + 1)

    with django_capture_on_commit_callbacks(execute=False):
        assert submissions_reap(now=too_early)["requeued"] == 0
        assert submissions_reap(now=in_time)["requeued"] == 1

    submission.refresh_from_db()
    assert submission.status == "queued"
    assert factories.outcomes(submission) == ["interrupted"]
