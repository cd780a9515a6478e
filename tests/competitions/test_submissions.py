"""Accepting a submission: the service and POST /api/v1/competitions/{slug}/submissions/.

Every refusal must leave nothing behind: no row, no stored file, no scoring job.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.core.files.storage import FileSystemStorage
from django.utils import timezone

from competitions.errors import NotJoined, PhaseClosed, QuotaExceeded, TeamBanned
from competitions.models import Submission
from competitions.services.submissions import submission_create
from competitions.services.teams import team_set_banned
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def private_files():
    """Lists the submission files stored since the test began (earlier tests' files excluded)."""
    storage = Submission._meta.get_field("file").storage
    assert isinstance(storage, FileSystemStorage)
    root = Path(storage.location) / "submissions"

    def walk() -> set[Path]:
        return {Path(d) / f for d, _dirs, files in os.walk(root) for f in files}

    before = walk()
    return lambda: sorted(walk() - before)


def _url(competition) -> str:
    return f"/api/v1/competitions/{competition.slug}/submissions/"


def _post(client, competition, content: bytes | None = b"id,label\n", **fields):
    name = fields.pop("name", "predictions.csv")
    data = dict(fields)
    if content is not None:
        data["file"] = factories.upload(content, name=name)
    return client.post(_url(competition), data, format="multipart")


def _phase(competition):
    return competition.phases.get()


# --- Accepted ---------------------------------------------------------------------------


def test_it_accepts_a_submission_with_202_and_tells_where_to_follow_it(
    api, competition, participant, django_capture_on_commit_callbacks
):
    content = factories.perfect_predictions()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = _post(
            api(participant),
            competition,
            content,
            method_name="LightGBM",
            paper_url="https://example.org/paper",
        )

    assert response.status_code == 202
    body = response.json()
    submission = Submission.objects.get()
    assert body["id"] == submission.pk
    assert response.headers["Location"] == body["url"]
    assert body["url"].endswith(f"/api/v1/submissions/{submission.pk}/")
    assert body["status"] == "queued"
    assert body["sha256"] == hashlib.sha256(content).hexdigest() == submission.sha256
    assert body["size"] == len(content) == submission.size
    assert submission.method_name == "LightGBM"
    assert submission.paper_url == "https://example.org/paper"
    assert submission.team == participant.teams.get()
    assert submission.submitter == participant
    assert submission.task_version == competition.task.version
    with submission.file.open("rb") as fh:
        assert fh.read() == content
    assert len(callbacks) == 1
    # The followed URL answers for the submitter.
    assert api(participant).get(body["url"]).json()["status"] == "queued"


def test_a_multi_chunk_upload_is_stored_byte_for_byte_with_its_hash(
    api, competition, participant, django_capture_on_commit_callbacks
):
    # Several upload-handler chunks (64 KiB each) of bytes that are not all alike.
    content = os.urandom(300_000)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = _post(api(participant), competition, content)

    assert response.status_code == 202
    submission = Submission.objects.get()
    assert submission.sha256 == hashlib.sha256(content).hexdigest()
    assert submission.size == len(content)
    with submission.file.open("rb") as fh:
        assert fh.read() == content
    assert len(callbacks) == 1


def test_the_service_records_hash_size_and_file_and_enqueues_once(
    competition, participant, django_capture_on_commit_callbacks
):
    content = factories.predictions_csv({"id3": 0.9})
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        submission = submission_create(
            competition=competition, user=participant, uploaded_file=factories.upload(content)
        )

    submission.refresh_from_db()
    assert submission.status == Submission.Status.QUEUED
    assert submission.sha256 == hashlib.sha256(content).hexdigest()
    assert submission.size == len(content)
    with submission.file.open("rb") as fh:
        assert fh.read() == content
    assert len(callbacks) == 1


def test_a_hostile_file_name_is_stored_under_a_safe_name(api, competition, participant):
    response = _post(api(participant), competition, b"x", name="../../etc/pass wd;.csv")

    assert response.status_code == 202
    submission = Submission.objects.get()
    assert submission.original_name == "pass_wd_.csv"
    assert submission.file.name is not None
    assert ".." not in submission.file.name
    assert submission.file.name.startswith(f"submissions/{competition.pk}/")


def test_a_late_submission_is_accepted_and_marked_late_when_the_phase_allows_it(
    api, competition, participant, django_capture_on_commit_callbacks
):
    phase = _phase(competition)
    phase.late_submissions_scored = True
    phase.save()

    with (
        time_machine.travel(phase.end_at + timedelta(hours=1), tick=False),
        django_capture_on_commit_callbacks(execute=False) as callbacks,
    ):
        response = _post(api(participant), competition)

    assert response.status_code == 202
    assert response.json()["is_late"] is True
    assert Submission.objects.get().is_late is True
    assert len(callbacks) == 1


def test_a_submission_inside_the_phase_is_not_late(api, competition, participant):
    phase = _phase(competition)
    phase.late_submissions_scored = True
    phase.save()

    response = _post(api(participant), competition)

    assert response.status_code == 202
    assert response.json()["is_late"] is False


# --- Refused ----------------------------------------------------------------------------


def _assert_refused(response, status: int, code: str, private_files) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code
    assert Submission.objects.count() == 0
    assert private_files() == []
    return body


def test_anonymous_gets_401(api, competition, private_files, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = _post(api(None), competition)

    _assert_refused(response, 401, "not_authenticated", private_files)
    assert callbacks == []


def test_it_refuses_a_user_who_has_not_joined_with_403_not_joined(
    api, competition, outsider, private_files, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = _post(api(outsider), competition)

    _assert_refused(response, 403, "not_joined", private_files)
    assert callbacks == []


def test_the_service_refuses_a_user_who_has_not_joined(competition, outsider):
    with pytest.raises(NotJoined):
        submission_create(
            competition=competition, user=outsider, uploaded_file=factories.upload(b"x")
        )
    assert Submission.objects.count() == 0


def test_it_rejects_a_submission_after_the_deadline(
    api, competition, participant, private_files, django_capture_on_commit_callbacks
):
    phase = _phase(competition)
    assert phase.late_submissions_scored is False
    with (
        time_machine.travel(phase.end_at + timedelta(seconds=1), tick=False),
        django_capture_on_commit_callbacks(execute=False) as callbacks,
    ):
        response = _post(api(participant), competition)

    _assert_refused(response, 403, "phase_closed", private_files)
    assert callbacks == []


def test_it_rejects_a_submission_exactly_at_the_deadline(
    api, competition, participant, private_files
):
    phase = _phase(competition)
    with time_machine.travel(phase.end_at, tick=False):
        response = _post(api(participant), competition)

    _assert_refused(response, 403, "phase_closed", private_files)


def test_it_rejects_a_submission_before_the_phase_starts(
    api, competition, participant, private_files
):
    phase = _phase(competition)
    with time_machine.travel(phase.start_at - timedelta(minutes=1), tick=False):
        response = _post(api(participant), competition)

    _assert_refused(response, 403, "phase_closed", private_files)


def test_the_service_refuses_a_submission_when_no_phase_is_open(competition, participant):
    phase = _phase(competition)
    phase.end_at = timezone.now() - timedelta(minutes=1)
    phase.save()

    with pytest.raises(PhaseClosed):
        submission_create(
            competition=competition, user=participant, uploaded_file=factories.upload(b"x")
        )


def test_a_banned_team_gets_403(
    api, competition, participant, private_files, django_capture_on_commit_callbacks
):
    team_set_banned(team=participant.teams.get(), banned=True, reason="Sharing labels")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = _post(api(participant), competition)

    body = _assert_refused(response, 403, "team_banned", private_files)
    assert body["detail"]
    assert "Sharing labels" in body["detail"]
    assert callbacks == []


def test_the_service_refuses_a_banned_team(competition, participant):
    team_set_banned(team=participant.teams.get(), banned=True, reason="x")
    with pytest.raises(TeamBanned):
        submission_create(
            competition=competition, user=participant, uploaded_file=factories.upload(b"x")
        )


def test_bad_metadata_gets_400_naming_the_field(api, competition, participant, private_files):
    response = _post(api(participant), competition, paper_url="not a url")

    body = _assert_refused(response, 400, "invalid", private_files)
    assert "paper_url" in body
    assert "file" not in body


def test_a_method_name_over_200_characters_gets_400(api, competition, participant, private_files):
    response = _post(api(participant), competition, method_name="m" * 201)

    body = _assert_refused(response, 400, "invalid", private_files)
    assert "method_name" in body


def test_a_missing_file_gets_400(api, competition, participant, private_files):
    response = _post(api(participant), competition, content=None, method_name="nothing")

    body = _assert_refused(response, 400, "invalid", private_files)
    assert "file" in body


def test_a_file_announced_too_large_by_content_length_gets_413(
    api, competition, participant, settings, private_files, django_capture_on_commit_callbacks
):
    settings.HELDOUT_MAX_UPLOAD_BYTES = 1000
    # Larger than the limit plus the room the middleware leaves for the multipart envelope.
    content = b"x" * (1000 + 1024 * 1024 + 1)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = _post(api(participant), competition, content)

    _assert_refused(response, 413, "file_too_large", private_files)
    assert callbacks == []


def test_a_file_found_too_large_while_streaming_gets_413(
    api, competition, participant, settings, private_files, django_capture_on_commit_callbacks
):
    settings.HELDOUT_MAX_UPLOAD_BYTES = 1000
    # Within the Content-Length allowance, so only the streaming upload handler can catch it.
    content = b"x" * 5000
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = _post(api(participant), competition, content)

    _assert_refused(response, 413, "file_too_large", private_files)
    assert callbacks == []


def test_a_file_exactly_at_the_size_limit_is_accepted(api, competition, participant, settings):
    settings.HELDOUT_MAX_UPLOAD_BYTES = 1000

    response = _post(api(participant), competition, b"x" * 1000)

    assert response.status_code == 202
    assert Submission.objects.get().size == 1000


def test_a_container_phase_takes_archives_up_to_the_image_limit(
    api, competition, participant, settings
):
    settings.HELDOUT_MAX_UPLOAD_BYTES = 1000
    settings.HELDOUT_MAX_IMAGE_BYTES = 10_000
    competition.phases.update(submission_kind="container")

    # Past the general limit but within the image limit: the archive check answers, not 413.
    response = _post(api(participant), competition, b"x" * 5000)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_image"

    too_big = _post(api(participant), competition, b"x" * 20_000)
    assert too_big.status_code == 413
    assert "0.00953674 MiB" in too_big.json()["detail"]


def test_a_prediction_phase_keeps_the_general_limit_whatever_the_image_limit(
    api, competition, participant, settings
):
    settings.HELDOUT_MAX_UPLOAD_BYTES = 1000
    settings.HELDOUT_MAX_IMAGE_BYTES = 10_000

    response = _post(api(participant), competition, b"x" * 5000)

    assert response.status_code == 413


# --- Quotas -----------------------------------------------------------------------------


def _fill(competition, user, n: int) -> list[Submission]:
    return [
        submission_create(competition=competition, user=user, uploaded_file=factories.upload(b"x"))
        for _ in range(n)
    ]


def test_the_daily_quota_gets_429_with_the_next_utc_midnight(
    api, competition, participant, private_files, django_capture_on_commit_callbacks
):
    phase = _phase(competition)
    phase.daily_limit = 2
    phase.save()
    late_evening = (timezone.now() + timedelta(days=1)).replace(
        hour=23, minute=59, second=30, microsecond=0
    )
    next_midnight = datetime.combine(
        late_evening.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC
    )

    with time_machine.travel(late_evening, tick=False):
        client = api(participant)
        assert _post(client, competition).status_code == 202
        assert _post(client, competition).status_code == 202
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = _post(client, competition)

    assert response.status_code == 429
    body = response.json()
    assert body["code"] == "quota_exceeded"
    assert body["resets_at"] == next_midnight.isoformat()
    assert datetime.fromisoformat(body["resets_at"]) == next_midnight
    assert callbacks == []
    assert Submission.objects.count() == 2
    assert len(private_files()) == 2

    # The quota is per UTC day: a second after midnight the team can submit again.
    with time_machine.travel(next_midnight + timedelta(seconds=1), tick=False):
        assert _post(api(participant), competition).status_code == 202


def test_the_daily_quota_is_per_team(api, competition, participant, other_participant):
    phase = _phase(competition)
    phase.daily_limit = 1
    phase.save()

    assert _post(api(participant), competition).status_code == 202
    assert _post(api(participant), competition).status_code == 429
    assert _post(api(other_participant), competition).status_code == 202


def test_the_service_raises_quota_exceeded_at_the_daily_limit(competition, participant):
    _fill(competition, participant, 5)

    with pytest.raises(QuotaExceeded) as excinfo:
        _fill(competition, participant, 1)
    assert excinfo.value.resets_at is not None
    assert Submission.objects.count() == 5


def test_the_total_limit_of_the_phase_gets_429_without_a_reset(api, competition, participant):
    phase = _phase(competition)
    phase.daily_limit = 10
    phase.total_limit = 3
    phase.start_at = timezone.now() - timedelta(days=10)
    phase.save()
    yesterday = timezone.now() - timedelta(hours=25)
    with time_machine.travel(yesterday, tick=False):
        _fill(competition, participant, 2)
    _fill(competition, participant, 1)

    response = _post(api(participant), competition)

    assert response.status_code == 429
    body = response.json()
    assert body["code"] == "quota_exceeded"
    assert body["resets_at"] is None
    assert "3" in body["detail"]
    assert Submission.objects.count() == 3


def test_submissions_that_failed_validation_do_not_count_against_the_daily_limit(
    api, competition, participant
):
    earlier = _fill(competition, participant, 5)
    assert _post(api(participant), competition).status_code == 429
    Submission.objects.filter(pk__in=[s.pk for s in earlier]).update(
        status=Submission.Status.FAILED, failure=Submission.Failure.INVALID
    )

    response = _post(api(participant), competition)

    assert response.status_code == 202


def test_submissions_that_failed_scoring_for_another_reason_still_count(
    api, competition, participant
):
    earlier = _fill(competition, participant, 5)
    Submission.objects.filter(pk__in=[s.pk for s in earlier]).update(
        status=Submission.Status.FAILED, failure=Submission.Failure.ERROR
    )

    response = _post(api(participant), competition)

    assert response.status_code == 429


def test_invalid_submissions_are_capped_per_day(api, competition, participant, settings):
    settings.HELDOUT_INVALID_SUBMISSIONS_PER_DAY = 3
    earlier = _fill(competition, participant, 3)
    Submission.objects.filter(pk__in=[s.pk for s in earlier]).update(
        status=Submission.Status.FAILED, failure=Submission.Failure.INVALID
    )

    response = _post(api(participant), competition)

    # No valid submission was used today, yet the team is stopped.
    assert response.status_code == 429
    body = response.json()
    assert body["code"] == "quota_exceeded"
    assert "validation" in body["detail"]
    assert body["resets_at"] is not None
    assert Submission.objects.count() == 3


def test_invalid_submissions_of_an_earlier_day_do_not_count_toward_the_cap(
    api, competition, participant, settings
):
    settings.HELDOUT_INVALID_SUBMISSIONS_PER_DAY = 1
    phase = _phase(competition)
    phase.start_at = timezone.now() - timedelta(days=10)
    phase.save()
    with time_machine.travel(timezone.now() - timedelta(days=1, hours=1), tick=False):
        earlier = _fill(competition, participant, 1)
    Submission.objects.filter(pk=earlier[0].pk).update(failure=Submission.Failure.INVALID)

    assert _post(api(participant), competition).status_code == 202


def test_invalid_submissions_do_not_count_against_the_total_limit(api, competition, participant):
    phase = _phase(competition)
    phase.daily_limit = 10
    phase.total_limit = 2
    phase.save()
    earlier = _fill(competition, participant, 2)
    Submission.objects.filter(pk=earlier[0].pk).update(failure=Submission.Failure.INVALID)

    assert _post(api(participant), competition).status_code == 202
    assert _post(api(participant), competition).status_code == 429


# --- The queue is down ------------------------------------------------------------------


@pytest.fixture
def broker_down(monkeypatch):
    """Sending a job fails as it does when the broker is unreachable."""
    from kombu.exceptions import OperationalError

    from judging.tasks import submission_score_task

    def refuse(*args, **kwargs):
        raise OperationalError("Error 111 connecting to the broker. Connection refused.")

    monkeypatch.setattr(submission_score_task, "apply_async", refuse)
    monkeypatch.setattr(submission_score_task, "delay", refuse)


@pytest.mark.django_db(transaction=True)
def test_an_accepted_submission_gets_202_even_when_its_job_cannot_be_queued(
    api, competition, participant, broker_down, caplog
):
    # The row and file are committed before the job is sent; a broker outage must not turn
    # that into a 500 (the client would retry and pay twice). The outbox keeps the message
    # for its sweep (tests/competitions/test_outbox.py).
    from competitions.models import OutboxMessage

    response = _post(api(participant), competition, factories.perfect_predictions())

    assert response.status_code == 202, response.content
    submission = Submission.objects.get()
    assert response.json()["id"] == submission.pk
    assert submission.status == Submission.Status.QUEUED
    message = OutboxMessage.objects.get(args=[submission.pk])
    assert message.sent_at is None
    assert "Connection refused" in message.last_error
    assert any(r.levelname == "WARNING" and "not sent" in r.getMessage() for r in caplog.records)
