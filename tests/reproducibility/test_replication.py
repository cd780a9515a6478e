"""Replication of container submissions: the same image digest run and scored again.

The docker tests build two tiny images offline from the scorer image (network none): one
that always writes the same predictions, one whose predictions depend on the clock.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from unittest import mock

import jsonschema
import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile

from competitions.models import Competition, Replication, ScoringRun, Submission, TaskFile
from competitions.services.replications import replication_request
from competitions.services.submissions import submission_create
from judging.replication import replication_run
from judging.services import submission_score
from scoring.manifest import SCHEMA_PATH
from scoring.sandbox_docker import DockerRunner
from scoring.scorers import InProcessScorer
from tests import factories
from tests.conftest import persona_user
from tests.sandbox import hostile_images as images

pytestmark = pytest.mark.django_db

VALIDATOR = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
TEST_CSV = "id,x\n" + "".join(
    f"{i},{0.9 if y == '1' else 0.1}\n" for i, y, _ in factories.TRUTH_ROWS
)
DETERMINISTIC = """
import csv
rows = list(csv.DictReader(open("/input/test/test.csv")))
with open("/output/predictions.csv", "w") as out:
    out.write("id,label\\n")
    for row in rows:
        out.write(f"{row['id']},{float(row['x']) * 0.8 + 0.1}\\n")
"""
# Reads the clock: every run writes slightly different probabilities.
CLOCK = DETERMINISTIC.replace(
    "float(row['x']) * 0.8 + 0.1", "float(row['x']) * 0.8 + 0.05 + (time.time_ns() % 10**6) / 1e8"
).replace("import csv", "import csv, time")
STRANGERS = ["anonymous", "outsider", "other_participant", "other_organizer"]


def _container_phase(competition: Competition, scorer_image_id: str) -> None:
    phase = competition.phases.get()
    phase.submission_kind = "container"
    phase.save()
    task = competition.task
    task.scorer_image = scorer_image_id  # by id: another build may move the tag meanwhile
    task.secondary_metrics = ["accuracy", "log_loss"]  # log loss moves with any probability
    task.save()
    test = TaskFile(task=task, kind=TaskFile.Kind.TEST, name="test.csv")
    test.file.save("test.csv", ContentFile(TEST_CSV.encode()), save=False)
    test.save()


def _submit_image(competition, user, archive: Path) -> Submission:
    upload = SimpleUploadedFile("image.tar", archive.read_bytes(), "application/x-tar")
    submission = submission_create(competition=competition, user=user, uploaded_file=upload)
    Submission.objects.filter(pk=submission.pk).update(kind="container")
    submission.refresh_from_db()
    return submission


def _sha256(field) -> str:
    with field.open("rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture(scope="module")
def archives(docker_client, scorer_image, tmp_path_factory) -> dict[str, Path]:
    base = images.slim_python_image(docker_client, scorer_image)
    folder = tmp_path_factory.mktemp("replication-images")
    made = {}
    for name, script in (("deterministic", DETERMINISTIC), ("clock", CLOCK)):
        tag = images.script_image(docker_client, base, f"replicate-{name}", script)
        made[name] = images.save_image(docker_client, tag, folder / f"{name}.tar")
    return made


@pytest.fixture
def container_entry(request, competition, participant, archives, docker_client, scorer_image):
    """A container submission scored on the real engine; the parameter names its image."""
    _container_phase(competition, docker_client.images.get(scorer_image).id)
    submission = _submit_image(competition, participant, archives[request.param])
    submission_score(submission_id=submission.pk, runner=DockerRunner(docker_client))
    submission.refresh_from_db()
    assert submission.status == Submission.Status.SCORED, submission.error_message
    return submission


def _replicate(submission, organizer, docker_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        replication = replication_request(submission=submission, user=organizer)
    assert len(callbacks) == 1
    assert replication_run(replication_id=replication.pk, runner=DockerRunner(docker_client))
    replication.refresh_from_db()
    return replication


@pytest.mark.docker
@pytest.mark.parametrize("container_entry", ["deterministic"], indirect=True)
def test_a_deterministic_container_is_reproduced_identically(
    api, container_entry, organizer, docker_client, django_capture_on_commit_callbacks
):
    original = ScoringRun.objects.get(submission=container_entry)
    predictions_before = _sha256(container_entry.predictions)

    replication = _replicate(
        container_entry, organizer, docker_client, django_capture_on_commit_callbacks
    )

    assert (replication.status, replication.outcome) == ("done", "reproduced")
    assert replication.differences["max_abs_difference"] == 0
    assert replication.differences["differences"] == []
    assert replication.original_run == original
    new = replication.new_run.manifest
    VALIDATOR.validate(new)
    assert new["kind"] == "replication"
    assert new["container"]["image_digest"] == original.manifest["container"]["image_digest"]
    assert new["predictions"]["sha256"] == original.manifest["predictions"]["sha256"]
    assert [s["stage"] for s in new["stages"]] == ["inference", "scoring"]
    assert [s["stage"] for s in original.manifest["stages"]] == ["inference", "scoring"]
    container_entry.refresh_from_db()
    assert _sha256(container_entry.predictions) == predictions_before
    board = api(None).get(f"/api/v1/competitions/{container_entry.competition.slug}/leaderboard/")
    assert board.json()["results"][0]["replication"] == "reproduced"


@pytest.mark.docker
@pytest.mark.parametrize("container_entry", ["clock"], indirect=True)
def test_a_container_reading_the_clock_diverges_and_the_difference_is_shown(
    api, client, container_entry, organizer, docker_client, django_capture_on_commit_callbacks
):
    original = ScoringRun.objects.get(submission=container_entry)

    replication = _replicate(
        container_entry, organizer, docker_client, django_capture_on_commit_callbacks
    )

    assert (replication.status, replication.outcome) == ("done", "diverged")
    moved = {d["what"]: d for d in replication.differences["differences"]}
    assert "predictions sha256" in moved
    assert moved["public log_loss"]["recorded"] == original.manifest["scores"]["public"]["log_loss"]
    assert moved["public log_loss"]["replayed"] != moved["public log_loss"]["recorded"]
    assert replication.differences["max_abs_difference"] > replication.tolerance
    assert "public roc_auc" not in moved  # the ranking of the rows did not change
    container_entry.refresh_from_db()
    assert _sha256(container_entry.predictions) == original.manifest["predictions"]["sha256"]
    board = api(None).get(f"/api/v1/competitions/{container_entry.competition.slug}/leaderboard/")
    assert board.json()["results"][0]["replication"] == "diverged"
    page = client.get(f"/c/{container_entry.competition.slug}/entries/{container_entry.pk}/")
    assert "Diverged" in page.content.decode()


# --- Without an engine: requests, access, the finalize gate ------------------------------


@pytest.fixture
def scored_container(competition, participant) -> Submission:
    """A submission scored in process, then marked as a container submission: enough for
    everything that does not run the image."""
    submission = submission_create(
        competition=competition,
        user=participant,
        uploaded_file=factories.upload(factories.perfect_predictions()),
    )
    submission_score(submission_id=submission.pk, scorer=InProcessScorer())
    Submission.objects.filter(pk=submission.pk).update(kind="container")
    submission.refresh_from_db()
    return submission


def test_the_organizer_asks_for_a_replication_on_another_queue(
    api, scored_container, organizer, django_capture_on_commit_callbacks
):
    url = f"/api/v1/submissions/{scored_container.pk}/replicate/"

    with (
        mock.patch("judging.tasks.replication_run_task.apply_async") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = api(organizer).post(url, {"queue": "gpu", "tolerance": 1e-6}, format="json")

    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["status"], body["queue"], body["tolerance"]) == ("queued", "gpu", 1e-6)
    send.assert_called_once_with(args=[body["id"]], queue="gpu")
    again = api(organizer).post(url, {}, format="json")
    assert again.status_code == 409


def test_a_prediction_file_is_not_replicated(api, competition, participant, organizer):
    submission = submission_create(
        competition=competition,
        user=participant,
        uploaded_file=factories.upload(factories.perfect_predictions()),
    )
    submission_score(submission_id=submission.pk, scorer=InProcessScorer())

    response = api(organizer).post(f"/api/v1/submissions/{submission.pk}/replicate/")

    assert response.status_code == 409
    assert not Replication.objects.exists()


@pytest.mark.parametrize("persona", [*STRANGERS, "participant"])
def test_only_organizers_ask_for_replications(request, api, scored_container, persona):
    user = persona_user(request, persona)

    response = api(user).post(f"/api/v1/submissions/{scored_container.pk}/replicate/")

    expected = {None: 401, "participant": 403}.get(persona if user else None, 404)
    assert response.status_code == expected
    assert not Replication.objects.exists()


@pytest.mark.parametrize("persona", STRANGERS)
def test_strangers_do_not_see_a_submissions_replications(request, api, scored_container, persona):
    response = api(persona_user(request, persona)).get(
        f"/api/v1/submissions/{scored_container.pk}/replications/"
    )

    assert response.status_code in (401, 404)


def _done(submission, outcome: str) -> Replication:
    return Replication.objects.create(
        submission=submission,
        status=Replication.Status.DONE,
        outcome=outcome,
        differences={
            "max_abs_difference": 0.25,
            "scores": [],
            "differences": [
                {"what": "public roc_auc", "recorded": 1.0, "replayed": 0.9},
                {"what": "private roc_auc", "recorded": 1.0, "replayed": 0.75},
            ],
        },
    )


def test_the_team_sees_its_replications_without_the_private_split_before_finalize(
    api, scored_container, participant, organizer
):
    _done(scored_container, "diverged")
    url = f"/api/v1/submissions/{scored_container.pk}/replications/"

    team = api(participant).get(url).json()["results"][0]
    organizers = api(organizer).get(url).json()["results"][0]

    assert team["outcome"] == "diverged"
    assert [d["what"] for d in team["differences"]["differences"]] == ["public roc_auc"]
    assert "max_abs_difference" not in team["differences"]
    assert len(organizers["differences"]["differences"]) == 2


def test_finalizing_waits_for_the_replication_of_the_top_container_entries(
    api, competition, scored_container, organizer
):
    Competition.objects.filter(pk=competition.pk).update(replicate_top_n=1)
    url = f"/api/v1/competitions/{competition.slug}/finalize/"

    refused = api(organizer).post(url)
    _done(scored_container, "reproduced")
    accepted = api(organizer).post(url)

    assert refused.status_code == 409
    assert refused.json()["code"] == "invalid_state"
    assert refused.json()["unreplicated"] == [scored_container.pk]
    assert f"#{scored_container.pk}" in refused.json()["detail"]
    assert accepted.status_code == 200


def test_finalizing_does_not_wait_for_prediction_files_in_the_top_n(
    api, competition, participant, organizer
):
    Competition.objects.filter(pk=competition.pk).update(replicate_top_n=3)
    submission = submission_create(
        competition=competition,
        user=participant,
        uploaded_file=factories.upload(factories.perfect_predictions()),
    )
    submission_score(submission_id=submission.pk, scorer=InProcessScorer())

    response = api(organizer).post(f"/api/v1/competitions/{competition.slug}/finalize/")

    assert response.status_code == 200


def test_the_task_adapter_calls_the_service(scored_container):
    from judging.tasks import replication_run_task

    with mock.patch("judging.replication.replication_run", return_value=True) as run:
        assert replication_run_task(41) is True
    run.assert_called_once_with(replication_id=41)


def test_a_replication_that_cannot_run_fails_with_its_reason(
    scored_container, organizer, django_capture_on_commit_callbacks
):
    from scoring.sandbox import SandboxError
    from scoring.sandbox_fake import FakeRunner

    with django_capture_on_commit_callbacks(execute=False):
        replication = replication_request(submission=scored_container, user=organizer)
    runner = FakeRunner(error=SandboxError("exceeded memory limit of 2 GiB"))

    with mock.patch("judging.replication.inference_run", side_effect=runner.error):
        assert replication_run(replication_id=replication.pk, runner=runner) is True
    assert replication_run(replication_id=replication.pk, runner=runner) is False  # done

    replication.refresh_from_db()
    assert replication.status == "failed"
    assert "exceeded memory limit" in replication.error_message
    assert replication.outcome == ""


def test_the_leaderboard_page_links_each_row_to_its_claim_and_shows_the_badge(
    client, competition, scored_container
):
    _done(scored_container, "within_tolerance")

    page = client.get(f"/c/{competition.slug}/leaderboard/").content.decode()

    assert f'href="/c/{competition.slug}/entries/{scored_container.pk}/"' in page
    assert "Reproduced within tolerance" in page
    assert "Click a team to see how its score was measured." in page
