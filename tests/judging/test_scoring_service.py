"""judging.services: claiming, scoring with the real in-process scorer, failures, the reaper.

Scoring runs in the test process with the real InProcessScorer on real files; only the
scorers that must fail are small fakes. Enqueues are on-commit callbacks, captured and
counted, never executed.
"""

from __future__ import annotations

import socket
from datetime import timedelta
from unittest import mock

import numpy as np
import pytest
from django.utils import timezone

from competitions.errors import QuotaExceeded
from competitions.models import Attempt, LeaderboardEntry, Score, Submission
from competitions.services.submissions import submission_create, submission_rescore
from judging.reaper import submissions_reap
from judging.services import submission_score
from notifications.services import EMAIL_TASK
from scoring.sandbox import SandboxUnavailable
from scoring.scorers import InProcessScorer
from tests import factories
from tests.jobs import OutboxWatch

pytestmark = pytest.mark.django_db

Status = Submission.Status
BAD_FILE = b"id,label\nid0,0.1\nid0,0.2\nid1,banana\n"


def _submit(competition, user, content: bytes, **fields) -> Submission:
    return submission_create(
        competition=competition, user=user, uploaded_file=factories.upload(content), **fields
    )


def _scores(submission) -> dict[tuple[int, str, str], float | None]:
    return {
        (s.task_version, s.split, s.metric): s.value
        for s in Score.objects.filter(submission=submission)
    }


class RaisingScorer:
    name = "raising"

    def __init__(self, exc: Exception):
        self.exc = exc
        self.calls = 0

    def score(self, **kwargs):
        self.calls += 1
        raise self.exc


# --- Scoring a file ---------------------------------------------------------------------


def test_a_perfect_file_scores_1_on_both_splits_and_tops_the_board(competition, participant):
    submission = _submit(competition, participant, factories.perfect_predictions())

    assert submission_score(submission_id=submission.pk, scorer=InProcessScorer()) is True

    submission.refresh_from_db()
    assert submission.status == Status.SCORED
    assert submission.failure == ""
    assert submission.task_version == competition.task.version == 1
    attempt = submission.scoring_attempts.get()
    assert (attempt.number, attempt.outcome) == (1, Attempt.Outcome.SCORED)
    assert attempt.scorer_name == "in-process"
    assert attempt.worker == socket.gethostname()
    assert attempt.queued_at == submission.queued_at
    assert attempt.started_at is not None
    assert attempt.finished_at is not None
    assert attempt.started_at <= attempt.finished_at
    assert attempt.duration_s is not None
    assert attempt.duration_s >= 0
    assert _scores(submission) == {
        (1, "public", "roc_auc"): 1.0,
        (1, "public", "accuracy"): 1.0,
        (1, "private", "roc_auc"): 1.0,
        (1, "private", "accuracy"): 1.0,
    }
    entries = LeaderboardEntry.objects.filter(team=submission.team)
    assert {(e.split, e.score, e.submission_id, e.task_version) for e in entries} == {
        ("public", 1.0, submission.pk, 1),
        ("private", 1.0, submission.pk, 1),
    }


def test_public_and_private_scores_come_from_their_own_rows(competition, participant):
    # Rows id0-id2 and id5-id7 are public, the rest private. Ranking inverted on the
    # private positives only: the public split stays perfect, the private one does not.
    predictions = {f"id{i}": 1.0 if i >= 5 else 0.0 for i in range(10)}
    predictions |= {"id8": 0.1, "id9": 0.2, "id3": 0.9, "id4": 0.8}
    submission = _submit(competition, participant, factories.predictions_csv(predictions))

    submission_score(submission_id=submission.pk, scorer=InProcessScorer())

    scores = _scores(submission)
    assert scores[(1, "public", "roc_auc")] == 1.0
    assert scores[(1, "public", "accuracy")] == 1.0
    assert scores[(1, "private", "roc_auc")] == 0.0
    assert scores[(1, "private", "accuracy")] == 0.0


def test_row_values_are_float32_in_ground_truth_order(competition, participant):
    # Wrong on id1 and id7 only, and the file's rows are in reverse order.
    right = {f"id{i}": (0.9 if i >= 5 else 0.1) for i in range(10)}
    right |= {"id1": 0.8, "id7": 0.3}
    lines = [f"{i},{right[i]}" for i in reversed(list(right))]
    content = ("id,label\n" + "\n".join(lines) + "\n").encode()
    submission = _submit(competition, participant, content)

    submission_score(submission_id=submission.pk, scorer=InProcessScorer())

    attempt = factories.latest(submission)
    assert attempt.row_kind == "correct"
    with attempt.row_values.open("rb") as fh:
        rows = np.load(fh, allow_pickle=False)
    assert rows.dtype == np.float32
    assert rows.shape == (10,)
    assert rows.tolist() == [1, 0, 1, 1, 1, 1, 1, 0, 1, 1]


def test_scoring_twice_does_nothing_the_second_time(competition, participant):
    submission = _submit(competition, participant, factories.perfect_predictions())
    assert submission_score(submission_id=submission.pk, scorer=InProcessScorer()) is True
    scores = _scores(submission)
    attempt = submission.scoring_attempts.get()

    # A redelivered task: nothing claimed, no second attempt, the first untouched.
    scorer = RaisingScorer(RuntimeError("must not be called"))
    assert submission_score(submission_id=submission.pk, scorer=scorer) is False

    assert scorer.calls == 0
    submission.refresh_from_db()
    assert submission.status == Status.SCORED
    assert list(submission.scoring_attempts.all()) == [attempt]
    assert submission.scoring_attempts.get().finished_at == attempt.finished_at
    assert Score.objects.filter(submission=submission).count() == 4
    assert _scores(submission) == scores


def test_a_submission_another_worker_is_running_is_not_claimed(competition, participant):
    submission = _submit(competition, participant, factories.perfect_predictions())
    factories.claimed(submission, worker="other-host")

    scorer = RaisingScorer(RuntimeError("must not be called"))
    assert submission_score(submission_id=submission.pk, scorer=scorer) is False

    assert scorer.calls == 0
    submission.refresh_from_db()
    assert submission.status == Status.RUNNING
    assert list(submission.scoring_attempts.values_list("worker", "outcome")) == [
        ("other-host", Attempt.Outcome.RUNNING)
    ]


def test_a_cancelled_or_missing_submission_is_not_scored(competition, participant):
    submission = _submit(competition, participant, factories.perfect_predictions())
    Submission.objects.filter(pk=submission.pk).update(status=Status.CANCELLED)
    scorer = RaisingScorer(RuntimeError("must not be called"))

    assert submission_score(submission_id=submission.pk, scorer=scorer) is False
    assert submission_score(submission_id=submission.pk + 1000, scorer=scorer) is False
    assert scorer.calls == 0


def test_a_late_submission_is_scored_but_never_ranked(competition, participant):
    phase = competition.phases.get()
    phase.late_submissions_scored = True
    phase.end_at = timezone.now() - timedelta(minutes=1)
    phase.save()
    submission = _submit(competition, participant, factories.perfect_predictions())
    assert submission.is_late

    submission_score(submission_id=submission.pk, scorer=InProcessScorer())

    submission.refresh_from_db()
    assert submission.status == Status.SCORED
    assert _scores(submission)[(1, "public", "roc_auc")] == 1.0
    assert not LeaderboardEntry.objects.filter(team=submission.team).exists()


# --- Failures ---------------------------------------------------------------------------


def test_an_invalid_file_fails_with_its_problems_and_their_line_numbers(competition, participant):
    submission = _submit(competition, participant, BAD_FILE)

    assert submission_score(submission_id=submission.pk, scorer=InProcessScorer()) is True

    submission.refresh_from_db()
    assert submission.status == Status.FAILED
    assert submission.failure == Submission.Failure.INVALID
    assert submission.total_problems == len(submission.problems) == 4
    by_code = {p["code"]: p for p in submission.problems}
    assert {"duplicate_id", "not_numeric", "missing_id", "wrong_row_count"} == set(by_code)
    assert by_code["duplicate_id"]["line"] == 3
    assert (by_code["not_numeric"]["line"], by_code["not_numeric"]["column"]) == (4, "label")
    assert "banana" in by_code["not_numeric"]["message"]
    assert "4 problem" in submission.error_message
    assert _scores(submission) == {}
    assert not LeaderboardEntry.objects.filter(team=submission.team).exists()


def test_an_invalid_file_does_not_use_the_daily_quota(competition, participant):
    competition.phases.update(daily_limit=1)
    invalid = _submit(competition, participant, BAD_FILE)
    with pytest.raises(QuotaExceeded):
        _submit(competition, participant, factories.perfect_predictions())

    submission_score(submission_id=invalid.pk, scorer=InProcessScorer())

    retry = _submit(competition, participant, factories.perfect_predictions())
    assert retry.status == Status.QUEUED


def test_a_scorer_that_raises_leaves_the_submission_failed_with_the_message(
    competition, participant
):
    submission = _submit(competition, participant, factories.perfect_predictions())

    watch = OutboxWatch()
    done = submission_score(
        submission_id=submission.pk, scorer=RaisingScorer(RuntimeError("the disk is on fire"))
    )

    assert done is True
    submission.refresh_from_db()
    assert submission.status == Status.FAILED
    assert submission.failure == Submission.Failure.ERROR
    assert "the disk is on fire" in submission.error_message
    assert factories.latest(submission).outcome == Attempt.Outcome.FAILED
    assert factories.latest(submission).finished_at is not None
    assert _scores(submission) == {}
    # Not retried (an organizer decides to rescore): only the team's e-mail of the failure.
    assert watch.tasks() == [EMAIL_TASK]
    # A scoring error is not the team's fault, but it is not a free retry either.
    assert submission.counts_against_quota


def test_an_unavailable_sandbox_puts_the_submission_back_in_the_queue(competition, participant):
    submission = _submit(competition, participant, factories.perfect_predictions())

    with pytest.raises(SandboxUnavailable):
        submission_score(
            submission_id=submission.pk, scorer=RaisingScorer(SandboxUnavailable("no engine"))
        )

    submission.refresh_from_db()
    assert submission.status == Status.QUEUED
    assert submission.failure == ""
    assert factories.outcomes(submission) == [Attempt.Outcome.RETURNED]
    # The task's retry can claim it again.
    assert submission_score(submission_id=submission.pk, scorer=InProcessScorer()) is True
    submission.refresh_from_db()
    assert submission.status == Status.SCORED
    assert factories.outcomes(submission) == [Attempt.Outcome.RETURNED, Attempt.Outcome.SCORED]


# --- The reaper -------------------------------------------------------------------------


@pytest.fixture
def reaper_settings(settings):
    settings.HELDOUT_RECOVER_AFTER_S = 600
    settings.HELDOUT_RESEND_AFTER_S = 600
    settings.HELDOUT_MAX_ATTEMPTS = 3
    return settings


def _stuck(competition, user, *, status, minutes_ago: float, interruptions: int = 0) -> Submission:
    """A submission queued, or last heard of (its running attempt's heartbeat),
    `minutes_ago`, after `interruptions` interrupted attempts."""
    submission = _submit(competition, user, factories.perfect_predictions())
    when = timezone.now() - timedelta(minutes=minutes_ago)
    queued_or_done = Status.QUEUED if status == Status.RUNNING else status
    Submission.objects.filter(pk=submission.pk).update(queued_at=when, status=queued_or_done)
    for number in range(1, interruptions + 1):
        Attempt.objects.create(
            submission=submission, number=number, outcome=Attempt.Outcome.INTERRUPTED
        )
    if status == Status.RUNNING:
        factories.claimed(submission, started_s_ago=minutes_ago * 60)
    return submission


def test_the_reaper_requeues_a_running_submission_whose_worker_went_silent(
    competition, participant, reaper_settings, django_capture_on_commit_callbacks
):
    stale = _stuck(competition, participant, status=Status.RUNNING, minutes_ago=11)
    fresh = _stuck(competition, participant, status=Status.RUNNING, minutes_ago=5)
    now = timezone.now()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = submissions_reap(now=now)

    assert result == {"failed": 0, "requeued": 1, "resent": 0}
    assert len(callbacks) == 1
    stale.refresh_from_db()
    assert (stale.status, stale.queued_at) == (Status.QUEUED, now)
    assert factories.outcomes(stale) == [Attempt.Outcome.INTERRUPTED]
    fresh.refresh_from_db()
    assert fresh.status == Status.RUNNING
    # The requeued submission is scored by the next claim, as its second attempt.
    assert submission_score(submission_id=stale.pk, scorer=InProcessScorer()) is True
    stale.refresh_from_db()
    assert stale.status == Status.SCORED
    assert factories.latest(stale).number == 2
    assert factories.latest(stale).queued_at == now


def test_the_reaper_fails_a_submission_that_reached_the_attempt_limit(
    competition, participant, reaper_settings, django_capture_on_commit_callbacks
):
    exhausted = _stuck(
        competition, participant, status=Status.RUNNING, minutes_ago=11, interruptions=2
    )

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = submissions_reap()

    assert result == {"failed": 1, "requeued": 0, "resent": 0}
    assert callbacks == []
    exhausted.refresh_from_db()
    assert exhausted.status == Status.FAILED
    assert exhausted.failure == Submission.Failure.PLATFORM
    assert factories.outcomes(exhausted) == ["interrupted", "interrupted", "failed"]
    assert "3 times" in exhausted.error_message
    assert factories.latest(exhausted).finished_at is not None
    # Its workers died under it: the platform's fault, not the team's.
    assert not exhausted.counts_against_quota


def test_the_reaper_resends_a_submission_queued_for_too_long(
    competition, participant, reaper_settings, django_capture_on_commit_callbacks
):
    lost = _stuck(competition, participant, status=Status.QUEUED, minutes_ago=11)
    waiting = _stuck(competition, participant, status=Status.QUEUED, minutes_ago=1)
    now = timezone.now()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = submissions_reap(now=now)

    assert result == {"failed": 0, "requeued": 0, "resent": 1}
    assert len(callbacks) == 1
    lost.refresh_from_db()
    assert (lost.status, lost.queued_at) == (Status.QUEUED, now)
    waiting.refresh_from_db()
    assert waiting.queued_at < now - timedelta(seconds=30)


def test_the_reaper_leaves_finished_work_alone(
    competition, participant, reaper_settings, django_capture_on_commit_callbacks
):
    for status in (Status.SCORED, Status.FAILED, Status.CANCELLED):
        _stuck(competition, participant, status=status, minutes_ago=60)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = submissions_reap()

    assert result == {"failed": 0, "requeued": 0, "resent": 0}
    assert callbacks == []
    assert set(Submission.objects.values_list("status", flat=True)) == {
        Status.SCORED,
        Status.FAILED,
        Status.CANCELLED,
    }


class ReapedMidwayScorer:
    """Scores for real, but the reaper takes the submission back while it runs."""

    name = "slow"

    def score(self, **kwargs):
        submissions_reap(now=timezone.now() + timedelta(hours=1))
        return InProcessScorer().score(**kwargs)


def test_a_worker_whose_submission_was_taken_back_records_nothing(
    competition, participant, reaper_settings
):
    submission = _submit(competition, participant, factories.perfect_predictions())

    submission_score(submission_id=submission.pk, scorer=ReapedMidwayScorer())

    submission.refresh_from_db()
    assert submission.status == Status.QUEUED  # for the newer attempt to score
    assert _scores(submission) == {}
    assert not LeaderboardEntry.objects.exists()


# --- Rescoring --------------------------------------------------------------------------


def test_a_rescore_under_a_new_task_version_keeps_the_old_scores(
    competition, participant, django_capture_on_commit_callbacks
):
    submission = _submit(competition, participant, factories.perfect_predictions())
    submission_score(submission_id=submission.pk, scorer=InProcessScorer())
    old = _scores(submission)
    task = competition.task
    task.version = 2
    task.save()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        submission = submission_rescore(submission=submission)
    assert len(callbacks) == 1
    assert (submission.status, submission.task_version) == (Status.QUEUED, 2)

    assert submission_score(submission_id=submission.pk, scorer=InProcessScorer()) is True

    scores = _scores(submission)
    assert len(scores) == 8
    assert {k: v for k, v in scores.items() if k[0] == 1} == old
    assert {(split, metric) for v, split, metric in scores if v == 2} == {
        (split, metric) for _, split, metric in old
    }
    submission.refresh_from_db()
    assert (submission.status, submission.task_version) == (Status.SCORED, 2)
    entry = LeaderboardEntry.objects.get(team=submission.team, split="public")
    assert entry.task_version == 2


def test_a_submission_scored_twice_has_two_attempts_each_with_its_own_worker_and_times(
    competition, participant, django_capture_on_commit_callbacks
):
    submission = _submit(competition, participant, factories.perfect_predictions())
    made_at = submission.queued_at
    with mock.patch("socket.gethostname", return_value="host-one"):
        assert submission_score(submission_id=submission.pk, scorer=InProcessScorer()) is True
    with django_capture_on_commit_callbacks(execute=False):
        submission_rescore(submission=submission)
    rescored_at = Submission.objects.get(pk=submission.pk).queued_at
    with mock.patch("socket.gethostname", return_value="host-two"):
        assert submission_score(submission_id=submission.pk, scorer=InProcessScorer()) is True

    first, second = submission.scoring_attempts.order_by("number")
    assert [(a.number, a.outcome, a.worker) for a in (first, second)] == [
        (1, Attempt.Outcome.SCORED, "host-one"),
        (2, Attempt.Outcome.SCORED, "host-two"),
    ]
    assert first.queued_at == made_at
    times = [first.started_at, first.finished_at, second.queued_at]
    times += [second.started_at, second.finished_at]
    assert None not in times
    assert times == sorted(times)  # type: ignore[type-var]
    assert second.queued_at == rescored_at
    # Each scoring's manifest tells its own attempt's times.
    manifests = [run.manifest for run in submission.scoring_runs.order_by("created_at")]
    assert [m["timing"]["started_at"] for m in manifests] == [
        _iso(first.started_at),
        _iso(second.started_at),
    ]
    # What readers show is the latest attempt.
    assert factories.latest(submission) == second


def _iso(when) -> str:
    return when.isoformat()


def test_the_problem_list_is_capped_by_the_setting(settings, competition, participant):
    settings.HELDOUT_SCORER = "in-process"
    settings.HELDOUT_MAX_PROBLEMS = 2
    bad = "id,label\n" + "".join(f"id{i},banana\n" for i in range(10))
    submission = submission_create(
        competition=competition, user=participant, uploaded_file=factories.upload(bad.encode())
    )

    submission_score(submission_id=submission.pk)

    submission.refresh_from_db()
    assert submission.failure == "invalid"
    assert len([p for p in submission.problems if p["code"] == "not_numeric"]) == 2
    assert submission.total_problems >= 10
