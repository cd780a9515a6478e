"""Crash recovery on PostgreSQL: heartbeats, the reaper, infrastructure faults that cost the
submission nothing, replications reaped and cancelled, and the settings check.

Scoring runs in the test process with the real InProcessScorer; the faults are raised by
small scorers. Enqueues are on-commit callbacks, captured, never executed.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.db import OperationalError
from django.test import override_settings
from django.utils import timezone

from competitions.errors import InvalidState, QuotaExceeded
from competitions.models import Attempt, Competition, Phase, Replication, Submission
from competitions.sandboxes import sandbox_limits
from competitions.selectors_runs import replications_missing
from competitions.services.lifecycle import competition_finalize
from competitions.services.replications import replication_cancel
from competitions.services.submissions import submission_rescore
from judging.checks import recovery_settings_check
from judging.reaper import replications_reap, submissions_reap
from judging.replication import replication_run
from judging.services import submission_score
from scoring.sandbox import SandboxUnavailable
from scoring.scorers import InProcessScorer
from tests import factories

Status = Submission.Status
RStatus = Replication.Status


@pytest.fixture
def recovery(settings):
    settings.HELDOUT_HEARTBEAT_S = 15
    settings.HELDOUT_RECOVER_AFTER_S = 120
    settings.HELDOUT_RESEND_AFTER_S = 900
    settings.HELDOUT_MAX_ATTEMPTS = 3
    return settings


def _running(submission: Submission, *, started_s_ago: float, beat_s_ago: float) -> Attempt:
    return factories.claimed(submission, started_s_ago=started_s_ago, beat_s_ago=beat_s_ago)


Outcome = Attempt.Outcome


class RaisingScorer:
    name = "raising"

    def __init__(self, exc: Exception):
        self.exc = exc

    def score(self, **kwargs):
        raise self.exc


def _counted_today(competition, user) -> int:
    return (
        Submission.objects.filter(competition=competition, submitter=user)
        .exclude(failure__in=Submission.UNCOUNTED_FAILURES)
        .count()
    )


# --- The reaper and heartbeats ---------------------------------------------------------


@pytest.mark.django_db
def test_the_reaper_leaves_a_job_with_a_fresh_heartbeat_alone_however_long_it_has_run(
    competition, participant, recovery, django_capture_on_commit_callbacks
):
    # Started 3 hours ago: longer than any stage limits added up; its worker still beats.
    submission = factories.submitted(competition, participant)
    _running(submission, started_s_ago=3 * 3600, beat_s_ago=10)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert submissions_reap() == {"failed": 0, "requeued": 0, "resent": 0}

    assert callbacks == []
    submission.refresh_from_db()
    assert submission.status == Status.RUNNING
    assert factories.outcomes(submission) == [Outcome.RUNNING]


@pytest.mark.django_db
def test_the_reaper_requeues_a_job_whose_heartbeat_stopped_past_the_recovery_time(
    competition, participant, recovery, django_capture_on_commit_callbacks
):
    dead = factories.submitted(competition, participant)
    _running(dead, started_s_ago=130, beat_s_ago=121)
    late = factories.submitted(competition, participant)
    _running(late, started_s_ago=130, beat_s_ago=110)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert submissions_reap() == {"failed": 0, "requeued": 1, "resent": 0}

    assert len(callbacks) == 1
    dead.refresh_from_db()
    assert dead.status == Status.QUEUED
    assert factories.outcomes(dead) == [Outcome.INTERRUPTED]
    assert factories.latest(dead).finished_at is not None
    late.refresh_from_db()
    assert late.status == Status.RUNNING
    assert submission_score(submission_id=dead.pk, scorer=InProcessScorer()) is True
    dead.refresh_from_db()
    assert dead.status == Status.SCORED
    assert factories.outcomes(dead) == [Outcome.INTERRUPTED, Outcome.SCORED]


@pytest.mark.django_db
def test_a_reaped_attempt_keeps_its_worker_and_times_and_the_next_attempt_has_its_own(
    competition, participant, recovery, django_capture_on_commit_callbacks
):
    submission = factories.submitted(competition, participant)
    reaped = factories.claimed(submission, started_s_ago=400, beat_s_ago=300, worker="dead-host")

    with django_capture_on_commit_callbacks(execute=False):
        assert submissions_reap()["requeued"] == 1
    with mock.patch("socket.gethostname", return_value="live-host"):
        assert submission_score(submission_id=submission.pk, scorer=InProcessScorer()) is True

    first, second = submission.scoring_attempts.order_by("number")
    assert (first.pk, first.number, first.outcome) == (reaped.pk, 1, Outcome.INTERRUPTED)
    assert (first.worker, first.started_at, first.heartbeat_at) == (
        "dead-host",
        reaped.started_at,
        reaped.heartbeat_at,
    )
    assert (second.number, second.outcome, second.worker) == (2, Outcome.SCORED, "live-host")
    times = [first.finished_at, second.started_at, second.finished_at]
    assert None not in times
    assert times == sorted(times)  # type: ignore[type-var]
    assert second.scorer_name == "in-process"


class BeatWatchingScorer:
    """Scores for real after watching its own heartbeat for a while."""

    name = "watching"

    def __init__(self, submission_id: int, seconds: float):
        self.submission_id = submission_id
        self.seconds = seconds
        self.beats: list = []

    def score(self, **kwargs):
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline:
            beat = Attempt.objects.values_list("heartbeat_at", flat=True).get(
                submission_id=self.submission_id
            )
            if not self.beats or beat != self.beats[-1]:
                self.beats.append(beat)
            time.sleep(0.05)
        return InProcessScorer().score(**kwargs)


@pytest.mark.django_db(transaction=True)
def test_a_running_job_beats_from_its_own_thread_and_stops_when_it_ends(
    competition, participant, recovery
):
    recovery.HELDOUT_HEARTBEAT_S = 0.2
    submission = factories.submitted(competition, participant)
    scorer = BeatWatchingScorer(submission.pk, seconds=1.2)

    assert submission_score(submission_id=submission.pk, scorer=scorer) is True

    # The claim's beat, then the thread's, every 0.2 s.
    assert len(scorer.beats) >= 4, scorer.beats
    assert scorer.beats == sorted(scorer.beats)
    submission.refresh_from_db()
    assert submission.status == Status.SCORED
    last = factories.latest(submission).heartbeat_at
    time.sleep(0.5)
    assert factories.latest(submission).heartbeat_at == last  # no beat once the work ended


class ReapingScorer:
    """Its worker is presumed dead meanwhile: the reaper takes the job back."""

    name = "reaped"

    def score(self, **kwargs):
        submissions_reap(now=timezone.now() + timedelta(hours=1))
        time.sleep(0.6)  # several beats of the (still running) worker
        return InProcessScorer().score(**kwargs)


@pytest.mark.django_db(transaction=True)
def test_a_heartbeat_never_revives_a_job_that_was_taken_back(competition, participant, recovery):
    recovery.HELDOUT_HEARTBEAT_S = 0.1
    submission = factories.submitted(competition, participant)

    with mock.patch("competitions.services.submissions.enqueue_on_commit"):
        submission_score(submission_id=submission.pk, scorer=ReapingScorer())

    submission.refresh_from_db()
    assert submission.status == Status.QUEUED
    reaped = factories.latest(submission)
    # Taken back an hour "later": its beats since then changed nothing.
    assert reaped.outcome == Outcome.INTERRUPTED
    assert reaped.heartbeat_at is not None
    assert reaped.finished_at is not None
    assert reaped.heartbeat_at < reaped.finished_at


# --- Faults that are not the submission's -----------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "fault",
    [
        SandboxUnavailable("the Docker engine failed: connection refused"),
        OperationalError("server closed the connection unexpectedly"),
    ],
    ids=["engine", "database"],
)
def test_an_infrastructure_fault_gives_the_submission_back_with_its_allowance_and_quota_untouched(
    competition, participant, recovery, fault, django_capture_on_commit_callbacks
):
    submission = factories.submitted(competition, participant)
    counted = _counted_today(competition, participant)

    # More faults than the interruption allowance: none of them counts.
    for _ in range(recovery.HELDOUT_MAX_ATTEMPTS + 2):
        with pytest.raises(type(fault)):
            submission_score(submission_id=submission.pk, scorer=RaisingScorer(fault))
        submission.refresh_from_db()
        assert (submission.status, submission.failure) == (Status.QUEUED, "")
        assert factories.interruptions(submission) == 0
    # Every claim is recorded, given back.
    returned = [Outcome.RETURNED] * (recovery.HELDOUT_MAX_ATTEMPTS + 2)
    assert factories.outcomes(submission) == returned

    # A worker then dies under it: one interruption, requeued, not failed.
    _running(submission, started_s_ago=300, beat_s_ago=300)
    with django_capture_on_commit_callbacks(execute=False):
        assert submissions_reap()["requeued"] == 1
    assert submission_score(submission_id=submission.pk, scorer=InProcessScorer()) is True

    submission.refresh_from_db()
    assert submission.status == Status.SCORED
    assert factories.outcomes(submission) == [*returned, Outcome.INTERRUPTED, Outcome.SCORED]
    assert _counted_today(competition, participant) == counted == 1


@pytest.mark.django_db
def test_a_storage_fault_reading_the_ground_truth_gives_the_submission_back(
    competition, participant, recovery
):
    submission = factories.submitted(competition, participant)
    truth = Path(competition.task.ground_truth.path)
    hidden = truth.with_suffix(".away")
    truth.rename(hidden)
    try:
        with pytest.raises(Exception, match="storage failed reading the ground truth"):
            submission_score(submission_id=submission.pk, scorer=InProcessScorer())
    finally:
        hidden.rename(truth)

    submission.refresh_from_db()
    assert (submission.status, submission.failure) == (Status.QUEUED, "")
    assert factories.outcomes(submission) == [Outcome.RETURNED]
    assert submission_score(submission_id=submission.pk, scorer=InProcessScorer()) is True
    submission.refresh_from_db()
    assert submission.status == Status.SCORED


@pytest.mark.django_db
def test_a_database_fault_while_the_manifest_is_made_records_nothing_until_the_retry_records_all(
    competition, participant, recovery, monkeypatch
):
    # The connection dropping between the scores' commit and the manifest's left a scored
    # submission without its manifest for good: they are committed together now.
    import judging.manifest

    built = judging.manifest.manifest_build
    faults = [OperationalError("server closed the connection unexpectedly")]

    def drops_once(**kwargs):
        if faults:
            raise faults.pop()
        return built(**kwargs)

    monkeypatch.setattr(judging.manifest, "manifest_build", drops_once)
    submission = factories.submitted(competition, participant)

    with pytest.raises(OperationalError):
        submission_score(submission_id=submission.pk, scorer=InProcessScorer())
    submission.refresh_from_db()
    assert submission.status == Status.QUEUED
    assert factories.outcomes(submission) == [Outcome.RETURNED]
    assert not submission.scores.exists()
    assert submission_score(submission_id=submission.pk, scorer=InProcessScorer()) is True

    submission.refresh_from_db()
    assert submission.status == Status.SCORED
    assert submission.scoring_runs.count() == 1
    run = submission.scoring_runs.get()
    finished_at = factories.latest(submission).finished_at
    assert finished_at is not None
    assert run.manifest["timing"]["finished_at"] == finished_at.isoformat()
    assert submission.scores.count() == 4


@pytest.mark.django_db
def test_a_submission_failed_by_the_platform_does_not_count_against_the_quota(
    competition, participant, recovery, django_capture_on_commit_callbacks
):
    Phase.objects.filter(competition=competition).update(daily_limit=1)
    submission = factories.submitted(competition, participant)
    with pytest.raises(QuotaExceeded):
        factories.submitted(competition, participant)
    _interrupted(submission, times=2)
    _running(submission, started_s_ago=300, beat_s_ago=300)

    with django_capture_on_commit_callbacks(execute=False):
        assert submissions_reap()["failed"] == 1

    submission.refresh_from_db()
    assert (submission.status, submission.failure) == (Status.FAILED, "platform")
    assert "does not count against the team's quota" in submission.error_message
    assert not submission.counts_against_quota
    # The attempt that failed it is the last: no other is running.
    assert factories.outcomes(submission) == [*[Outcome.INTERRUPTED] * 2, Outcome.FAILED]
    # The slot it held is free again.
    assert factories.submitted(competition, participant).status == Status.QUEUED


def _interrupted(submission: Submission, *, times: int) -> None:
    for _ in range(times):
        attempt = _running(submission, started_s_ago=300, beat_s_ago=300)
        Attempt.objects.filter(pk=attempt.pk).update(outcome=Outcome.INTERRUPTED)


@pytest.mark.django_db
def test_a_rescore_after_a_platform_failure_gets_a_whole_interruption_allowance_again(
    competition, participant, recovery, django_capture_on_commit_callbacks
):
    submission = factories.submitted(competition, participant)
    _interrupted(submission, times=2)
    _running(submission, started_s_ago=300, beat_s_ago=300)
    with django_capture_on_commit_callbacks(execute=False):
        assert submissions_reap()["failed"] == 1
    submission.refresh_from_db()
    submission_rescore(submission=submission)

    # Interrupted again, twice: requeued each time, not failed.
    for _ in range(2):
        _running(submission, started_s_ago=300, beat_s_ago=300)
        with django_capture_on_commit_callbacks(execute=False):
            assert submissions_reap() == {"failed": 0, "requeued": 1, "resent": 0}
    submission.refresh_from_db()
    assert submission.status == Status.QUEUED


@pytest.mark.django_db
def test_the_celery_tasks_retry_every_kind_of_infrastructure_fault():
    from kombu.exceptions import OperationalError as BrokerError

    from judging.heartbeat import StorageUnavailable
    from judging.tasks import replication_run_task, submission_score_task

    for task in (submission_score_task, replication_run_task):
        retried = set(task.autoretry_for)
        assert {SandboxUnavailable, StorageUnavailable, OperationalError, BrokerError} <= retried


def test_any_time_limit_is_accepted_now_that_running_work_heartbeats():
    assert sandbox_limits(overrides={"timeout_s": 6 * 3600}).timeout_s == 6 * 3600


# --- Replications ------------------------------------------------------------------------


@pytest.fixture
def container_entry(competition, participant) -> Submission:
    """A scored submission marked as a container one, at the top of the private board."""
    submission = factories.submitted(competition, participant)
    submission_score(submission_id=submission.pk, scorer=InProcessScorer())
    Submission.objects.filter(pk=submission.pk).update(kind="container")
    Competition.objects.filter(pk=competition.pk).update(replicate_top_n=1)
    competition.refresh_from_db()
    submission.refresh_from_db()
    return submission


def _replication(submission, **fields) -> Replication:
    return Replication.objects.create(submission=submission, **fields)


@pytest.mark.django_db
def test_the_reaper_requeues_a_replication_whose_worker_died_and_fails_it_at_the_limit(
    container_entry, recovery, django_capture_on_commit_callbacks
):
    long_ago = timezone.now() - timedelta(minutes=10)
    live = _replication(
        container_entry, status=RStatus.RUNNING, attempts=1, started_at=long_ago,
        heartbeat_at=timezone.now(),
    )  # fmt: skip
    dead = _replication(
        container_entry, status=RStatus.RUNNING, attempts=1, started_at=long_ago,
        heartbeat_at=long_ago, queue="gpu",
    )  # fmt: skip
    exhausted = _replication(
        container_entry, status=RStatus.RUNNING, attempts=3, interruptions=2,
        started_at=long_ago, heartbeat_at=long_ago,
    )  # fmt: skip

    with (
        mock.patch("judging.tasks.replication_run_task.apply_async") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert replications_reap() == {"failed": 1, "requeued": 1, "resent": 0}

    send.assert_called_once_with(args=[dead.pk], queue="gpu")
    for r in (live, dead, exhausted):
        r.refresh_from_db()
    assert live.status == RStatus.RUNNING
    assert (dead.status, dead.interruptions) == (RStatus.QUEUED, 1)
    assert exhausted.status == RStatus.FAILED
    assert "interrupted 3 times" in exhausted.error_message


@pytest.mark.django_db
def test_the_reaper_resends_a_replication_queued_for_too_long_to_its_queue(
    container_entry, recovery, django_capture_on_commit_callbacks
):
    lost = _replication(container_entry, queue="gpu", queued_at=timezone.now() - timedelta(hours=1))
    waiting = _replication(container_entry, queue="gpu")

    with (
        mock.patch("judging.tasks.replication_run_task.apply_async") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert replications_reap() == {"failed": 0, "requeued": 0, "resent": 1}

    send.assert_called_once_with(args=[lost.pk], queue="gpu")
    lost.refresh_from_db()
    waiting.refresh_from_db()
    assert lost.queued_at > waiting.queued_at


@pytest.mark.django_db
def test_a_replication_given_back_for_an_engine_fault_is_claimed_again(
    container_entry, organizer, recovery
):
    replication = _replication(container_entry, status=RStatus.QUEUED)

    with (
        mock.patch("judging.replication._rerun", side_effect=SandboxUnavailable("no engine")),
        pytest.raises(SandboxUnavailable),
    ):
        replication_run(replication_id=replication.pk)

    replication.refresh_from_db()
    assert (replication.status, replication.attempts, replication.interruptions) == (
        RStatus.QUEUED,
        1,
        0,
    )


@pytest.mark.django_db
def test_a_cancelled_replication_no_longer_blocks_finalize_and_records_who_and_when(
    container_entry, competition, organizer, recovery
):
    replication = _replication(
        container_entry,
        status=RStatus.QUEUED,
        queue="nobody-serves-this",
        queued_at=timezone.now() - timedelta(hours=2),
    )

    with pytest.raises(InvalidState) as refused:
        competition_finalize(competition=competition)
    assert "queued for 120 min on queue 'nobody-serves-this'" in refused.value.message
    assert refused.value.extra["unreplicated"] == [container_entry.pk]

    replication_cancel(replication=replication, user=organizer)

    replication.refresh_from_db()
    assert replication.status == RStatus.CANCELLED
    assert replication.cancelled_by == organizer
    assert replication.cancelled_at is not None
    line = competition.organizer_actions.get()
    assert (line.kind, line.by) == ("replication_cancelled", organizer)
    assert line.target == f"replication of submission #{container_entry.pk}"
    assert replications_missing(competition=competition) == []
    assert replication_run(replication_id=replication.pk) is False  # a late message: nothing
    with pytest.raises(InvalidState):
        replication_cancel(replication=replication, user=organizer)
    assert competition_finalize(competition=competition).competition.finalized_at is not None


@pytest.mark.django_db
def test_a_running_replication_cancelled_meanwhile_records_nothing(
    container_entry, organizer, recovery
):
    replication = _replication(container_entry, status=RStatus.QUEUED)

    def cancel_then_fail(*args, **kwargs):
        replication_cancel(replication=replication, user=organizer)
        raise RuntimeError("the run broke after the cancel")

    with mock.patch("judging.replication._rerun", side_effect=cancel_then_fail):
        assert replication_run(replication_id=replication.pk) is True

    replication.refresh_from_db()
    assert replication.status == RStatus.CANCELLED
    assert replication.error_message.startswith("Cancelled by")


# --- API and organizer page --------------------------------------------------------------

STRANGERS = ["outsider", "other_participant", "other_organizer"]


@pytest.mark.django_db
def test_the_organizer_cancels_a_replication_through_the_api(
    api, container_entry, organizer, recovery
):
    replication = _replication(container_entry, status=RStatus.QUEUED)

    response = api(organizer).post(f"/api/v1/replications/{replication.pk}/cancel/")
    again = api(organizer).post(f"/api/v1/replications/{replication.pk}/cancel/")

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "cancelled"
    assert response.json()["cancelled_at"] is not None
    assert again.status_code == 409


@pytest.mark.django_db
@pytest.mark.parametrize("persona", [None, "participant", *STRANGERS])
def test_nobody_but_the_organizers_cancels_a_replication(
    request, api, container_entry, recovery, persona
):
    replication = _replication(container_entry, status=RStatus.QUEUED)
    if persona == "other_organizer":
        request.getfixturevalue("other_competition")
    user = request.getfixturevalue(persona) if persona else None

    response = api(user).post(f"/api/v1/replications/{replication.pk}/cancel/")
    page = request.getfixturevalue("client")
    if user is not None:
        page.force_login(user)
    slug = container_entry.competition.slug
    posted = page.post(f"/c/{slug}/organize/replications/{replication.pk}/cancel/")

    expected = {None: 401, "participant": 403}.get(persona, 404)
    assert response.status_code == expected
    assert posted.status_code in ((302,) if user is None else (403, 404))
    if user is None:
        assert "/accounts/login/" in posted["Location"]
    replication.refresh_from_db()
    assert replication.status == RStatus.QUEUED


@pytest.mark.django_db
def test_another_competitions_organizer_cannot_cancel_it_under_their_own_slug(
    client, container_entry, other_organizer, other_competition, recovery
):
    replication = _replication(container_entry, status=RStatus.QUEUED)
    client.force_login(other_organizer)

    response = client.post(f"/c/other/organize/replications/{replication.pk}/cancel/")

    assert response.status_code == 404
    replication.refresh_from_db()
    assert replication.status == RStatus.QUEUED


@pytest.mark.django_db
def test_the_organizer_page_lists_pending_replications_with_a_cancel_button(
    client, container_entry, organizer, recovery
):
    replication = _replication(container_entry, status=RStatus.QUEUED, queue="gpu")
    client.force_login(organizer)
    slug = container_entry.competition.slug
    url = f"/c/{slug}/organize/replications/{replication.pk}/cancel/"

    page = client.get(f"/c/{slug}/organize/").content.decode()
    assert url in page
    assert "<code>gpu</code>" in page
    response = client.post(url, follow=True)

    assert "no longer holds up finalizing" in response.content.decode()
    replication.refresh_from_db()
    assert (replication.status, replication.cancelled_by) == (RStatus.CANCELLED, organizer)
    assert url not in client.get(f"/c/{slug}/organize/").content.decode()


# --- The settings check ------------------------------------------------------------------


def _ids() -> list[str | None]:
    return [error.id for error in recovery_settings_check()]


def test_the_default_settings_pass_the_check():
    assert _ids() == []


@override_settings(HELDOUT_HEARTBEAT_S=15, HELDOUT_RECOVER_AFTER_S=30)
def test_a_recovery_time_of_two_heartbeats_or_less_is_refused():
    assert "heldout.E001" in _ids()


@override_settings(HELDOUT_HEARTBEAT_S=0)
def test_a_heartbeat_period_of_zero_is_refused():
    assert "heldout.E001" in _ids()


def test_a_reaper_slower_than_the_recovery_time_is_refused(settings):
    schedule = {k: dict(v) for k, v in settings.CELERY_BEAT_SCHEDULE.items()}
    schedule["reap-stale-submissions"]["schedule"] = 120.0
    with override_settings(CELERY_BEAT_SCHEDULE=schedule, HELDOUT_RECOVER_AFTER_S=120):
        assert _ids() == ["heldout.E002"]
    with override_settings(CELERY_BEAT_SCHEDULE={}):
        assert _ids() == ["heldout.E002"]  # no reaper at all


@override_settings(
    CELERY_BROKER_TRANSPORT_OPTIONS={"visibility_timeout": 900}, HELDOUT_SANDBOX_TIMEOUT_S=600
)
def test_a_broker_visibility_timeout_shorter_than_the_longest_job_is_refused():
    assert _ids() == ["heldout.E003"]
    with override_settings(CELERY_BROKER_TRANSPORT_OPTIONS={"visibility_timeout": 1300}):
        assert _ids() == []


@override_settings(HELDOUT_MAX_ATTEMPTS=0)
def test_no_attempt_at_all_is_refused():
    assert _ids() == ["heldout.E004"]


@override_settings(HELDOUT_SANDBOX_PIDS=2)
def test_sandbox_limits_that_would_fail_every_submission_are_refused():
    assert _ids() == ["heldout.E005"]


def test_a_worker_refuses_to_start_with_contradictory_settings(settings):
    from judging.signals import settings_check_on_worker_init

    settings.HELDOUT_RECOVER_AFTER_S = 10
    with pytest.raises(SystemExit, match=r"heldout\.E001"):
        settings_check_on_worker_init()
