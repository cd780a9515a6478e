"""A suite's container fan-out on a real engine: one uploaded image becomes one submission,
so one inference run and one scoring job, per task, each in its own sandbox; a task that
fails does not fail the others."""

from __future__ import annotations

import contextlib
from pathlib import Path

import docker
import pytest
from django.core.files.uploadedfile import UploadedFile

from competitions.models import SandboxRun, Submission
from judging.services import submission_score
from suites import services
from tests import factories
from tests.sandbox import hostile_images as h
from tests.sandbox.hostile_setup import TEST_CSV, make_container_phase

pytestmark = [pytest.mark.docker, pytest.mark.django_db]

# Test features whose ids the task's truth does not have: the predictions made from them
# cannot be scored there.
FOREIGN_CSV = TEST_CSV.replace("id", "zz").replace("zz,x", "id,x")


@pytest.fixture(scope="module")
def predict_archive(docker_client, scorer_image, tmp_path_factory) -> Path:
    base = h.slim_python_image(docker_client, scorer_image)
    tag = h.script_image(docker_client, base, "predict", h.PREDICT_ONLY)
    return h.save_image(docker_client, tag, tmp_path_factory.mktemp("predict") / "predict.tar")


def test_one_container_is_run_and_scored_once_per_task_and_a_failing_task_fails_alone(
    runner, docker_client, predict_archive
):
    organizer = factories.make_user("fanout-organizer")
    suite = services.suite_create(slug="fanout", title="Fan-out", organizer=organizer)
    for slug, features in (("good", TEST_CSV), ("foreign", FOREIGN_CSV)):
        competition = make_container_phase(
            factories.make_competition(slug=slug), files={"test.csv": features.encode()}
        )
        services.suite_task_add(suite=suite, competition=competition, key=slug)
    user = factories.make_user("fanout-user")
    services.suite_join(suite=suite, user=user, accept_rules=True)
    method = services.method_create(suite=suite, owner=user, name="predictor")

    with predict_archive.open("rb") as f:
        runs = services.method_submit_everywhere(
            method=method,
            user=user,
            uploaded_file=UploadedFile(f, name="predict.tar", size=predict_archive.stat().st_size),
        )
    loaded = []
    try:
        for run in runs:
            assert submission_score(submission_id=run.submission_id, runner=runner)
            loaded.append(Submission.objects.get(pk=run.submission_id).container_image)
    finally:
        for tag in filter(None, loaded):
            with contextlib.suppress(docker.errors.ImageNotFound):
                docker_client.images.remove(tag)

    outcome = {run.suite_task.key: Submission.objects.get(pk=run.submission_id) for run in runs}
    assert outcome["good"].status == Submission.Status.SCORED, outcome["good"].error_message
    assert outcome["foreign"].status == Submission.Status.FAILED
    assert outcome["foreign"].failure == Submission.Failure.INVALID
    for submission in outcome.values():
        # Its own inference run, in a sandbox of its own, on its own task's files.
        inference = SandboxRun.objects.filter(submission=submission, stage="inference")
        assert inference.count() == 1
        assert inference.get().limits
    assert outcome["good"].competition_id != outcome["foreign"].competition_id
