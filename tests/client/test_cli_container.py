"""A container submission with `heldout submit --image NAME`: the CLI runs `docker save`,
uploads the archive resumably, and the real worker loads it, runs it without the labels
and scores its predictions (a real Docker engine: tests/sandbox/ builds the image)."""

from __future__ import annotations

import contextlib
import os
import re

import docker
import pytest

from competitions.models import Submission
from tests.client.conftest import explain, token_of
from tests.sandbox import hostile_images as h
from tests.sandbox.hostile_setup import make_container_phase

pytestmark = [
    pytest.mark.docker,
    pytest.mark.celery_worker,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def predict_image() -> str:
    """A tagged image (content-addressed, kept for other runs as tests/sandbox/ does) that
    writes perfect predictions from /input/test/test.csv."""
    try:
        engine = docker.from_env()
        engine.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(f"No Docker engine is reachable ({exc}).", pytrace=False)
    scorer_image = os.environ.get("HELDOUT_SCORER_IMAGE", "heldout-scorer:latest")
    base = h.slim_python_image(engine, scorer_image)
    return h.script_image(engine, base, "predict-only", h.PREDICT_ONLY)


def test_an_image_name_is_saved_uploaded_run_and_scored(
    live, heldout, competition, participant, predict_image
):
    make_container_phase(competition, limits={"memory_mb": 256, "timeout_s": 60})
    env = {"HELDOUT_URL": live.url, "HELDOUT_TOKEN": token_of(participant)}

    submitted = heldout(
        "submit", "tiny", "--image", predict_image, "-m", "an image", "--wait", env=env
    )

    found = re.search(r"Submitted (\d+) ", submitted.out)
    submission = Submission.objects.get(pk=int(found.group(1))) if found else None
    try:
        assert submitted.code == 0, explain(submitted) + live.worker_log.read_text()[-3000:]
        assert submission is not None
        assert f"docker save {predict_image}" in submitted.err
        assert "public roc_auc: 1.0" in submitted.out
        assert submission.kind == "container"
        assert submission.description == "an image"
        assert submission.container_image_digest
    finally:
        if submission is not None and submission.container_image:
            with contextlib.suppress(docker.errors.DockerException):
                docker.from_env().images.remove(submission.container_image)
