"""The sandbox tests' Docker fixtures (they fail, never skip, without an engine or image;
docker_client and scorer_image come from tests/conftest.py),
and a submission scored in Docker with its organizer's bundle unzipped, for replay.py."""

from pathlib import Path

import pytest

from competitions.models import Submission
from competitions.services.submissions import submission_create
from judging.services import submission_score
from scoring.docker_scorer import DockerScorer
from scoring.sandbox import SandboxLimits
from scoring.sandbox_docker import DockerRunner
from tests import factories
from tests.reproducibility.replaying import PREDICTIONS, unzip_bundle
from tests.sandbox.conftest import (  # noqa: F401
    no_sandbox_container_is_left,
    runner,
)

REPLAY_LIMITS = SandboxLimits(memory_bytes=512 * 1024**2, timeout_s=60)


@pytest.fixture
def scored(competition, participant, docker_client, scorer_image) -> Submission:
    submission = submission_create(
        competition=competition,
        user=participant,
        uploaded_file=factories.upload(factories.predictions_csv(PREDICTIONS)),
    )
    scorer = DockerScorer(
        runner=DockerRunner(docker_client), image=scorer_image, limits=REPLAY_LIMITS
    )
    submission_score(submission_id=submission.pk, scorer=scorer)
    submission.refresh_from_db()
    assert submission.status == Submission.Status.SCORED
    return submission


@pytest.fixture
def bundle_dir(api, organizer, scored, tmp_path) -> Path:
    """The organizer's bundle (it holds the scored file), unzipped in an empty folder."""
    return unzip_bundle(api, organizer, scored, tmp_path / "clean")
