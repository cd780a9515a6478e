"""A gzip bomb submitted like any file: invalid with the limit's sentence, in the sandbox
(the scorer image's modules) and in process, within a small memory limit, without using
the quota. The reading itself is tested in tests/scoring/test_bounded_reading.py."""

from __future__ import annotations

import gzip
import io

import pytest

from competitions.errors import QuotaExceeded
from competitions.models import SandboxRun, Submission, Task
from competitions.services.submissions import submission_create
from judging.services import docker_available, submission_score
from scoring.scorers import InProcessScorer
from tests import factories

Status = Submission.Status
# The competition's test set has 10 ids: at most 1,010 rows.
TOO_MANY_ROWS = "The file has more than 1,010 rows; the test set has 10."


@pytest.fixture(autouse=True)
def fresh_docker_decision():
    docker_available.cache_clear()
    yield
    docker_available.cache_clear()


def gzip_bomb(expands_to: int = 2 * 10**9) -> bytes:
    """Well-formed rows (an id of the test set and a probability), about 1:700."""
    block = b"id0,0.5\n" * ((16 << 20) // 8)
    member = gzip.compress(block, 9)
    out = io.BytesIO()
    out.write(gzip.compress(b"id,label\n"))
    for _ in range(expands_to // len(block) + 1):
        out.write(member)
    return out.getvalue()


def _submit(competition, user, content: bytes) -> Submission:
    upload = factories.upload(content, name="predictions.csv.gz")
    return submission_create(competition=competition, user=user, uploaded_file=upload)


def _assert_refused_without_using_the_quota(submission, competition, participant) -> None:
    submission.refresh_from_db()
    assert submission.status == Status.FAILED
    assert submission.failure == Submission.Failure.INVALID
    assert [(p["code"], p["message"]) for p in submission.problems] == [
        ("too_many_rows", TOO_MANY_ROWS)
    ]
    retry = _submit(competition, participant, gzip.compress(factories.perfect_predictions()))
    assert retry.status == Status.QUEUED


@pytest.mark.django_db
def test_a_gzip_bomb_is_invalid_in_process_and_does_not_use_the_quota(competition, participant):
    competition.phases.update(daily_limit=1)
    bomb = _submit(competition, participant, gzip_bomb())
    with pytest.raises(QuotaExceeded):
        _submit(competition, participant, factories.perfect_predictions())

    assert submission_score(submission_id=bomb.pk, scorer=InProcessScorer()) is True

    _assert_refused_without_using_the_quota(bomb, competition, participant)


@pytest.mark.docker
@pytest.mark.django_db
def test_a_gzip_bomb_is_invalid_in_the_sandbox_within_a_small_memory_limit(
    scorer_image, settings, competition, participant
):
    settings.HELDOUT_SCORER = "auto"
    settings.HELDOUT_SCORER_IMAGE = scorer_image
    # Decompressed whole, 2 GB of rows would not fit: the scorer must stop at its limits.
    Task.objects.filter(competition=competition).update(limits={"memory_mb": 300})
    competition.phases.update(daily_limit=1)
    bomb = _submit(competition, participant, gzip_bomb())

    assert submission_score(submission_id=bomb.pk) is True

    (run,) = SandboxRun.objects.filter(submission=bomb)
    assert (run.exit_code, run.oom_killed) == (0, False)
    assert run.peak_memory_bytes is not None
    assert run.peak_memory_bytes < 300 * 1024**2
    _assert_refused_without_using_the_quota(bomb, competition, participant)
