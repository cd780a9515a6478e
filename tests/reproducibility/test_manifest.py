"""The manifest every scoring writes: valid against its schema, and true to the files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jsonschema
import pytest
from django.core.files.base import ContentFile

from competitions.models import ScoringRun, Submission
from competitions.selectors_runs import scoring_run_latest
from competitions.services.submissions import submission_create
from competitions.services.versions import task_version_activate, task_version_create
from judging.services import submission_score
from scoring.docker_scorer import DockerScorer
from scoring.manifest import SCHEMA_PATH, manifest_for_viewer
from scoring.sandbox import SandboxLimits
from scoring.sandbox_docker import DockerRunner
from scoring.scorers import InProcessScorer
from tests import factories

pytestmark = pytest.mark.django_db

SCHEMA = json.loads(SCHEMA_PATH.read_text())
VALIDATOR = jsonschema.Draft202012Validator(
    SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)
LIMITS = SandboxLimits(memory_bytes=512 * 1024**2, timeout_s=60)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _split_sha256(text: str) -> str:
    lines = [line.split(",") for line in text.splitlines()[1:]]
    return hashlib.sha256("".join(f"{i}\t{u.lower()}\n" for i, _, u in lines).encode()).hexdigest()


def _submit(competition, user, content: bytes, **fields) -> Submission:
    return submission_create(
        competition=competition, user=user, uploaded_file=factories.upload(content), **fields
    )


def test_the_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["properties"]["schema_version"] == {"const": "1"}


def test_the_schema_rejects_a_manifest_missing_a_hash(competition, participant):
    submission = _submit(competition, participant, factories.perfect_predictions())
    submission_score(submission_id=submission.pk, scorer=InProcessScorer())
    manifest = ScoringRun.objects.get(submission=submission).manifest

    del manifest["ground_truth"]["split_sha256"]
    manifest["predictions"]["sha256"] = "not-a-hash"

    messages = [e.message for e in VALIDATOR.iter_errors(manifest)]
    assert any("split_sha256" in m for m in messages)
    assert any("not-a-hash" in m for m in messages)


def test_an_in_process_scoring_writes_a_manifest_true_to_its_files(competition, participant):
    submission = _submit(
        competition,
        participant,
        factories.perfect_predictions(),
        method_name="Logistic regression",
        hardware_declared="1x laptop CPU",
    )

    submission_score(submission_id=submission.pk, scorer=InProcessScorer())

    run = ScoringRun.objects.get(submission=submission)
    manifest = run.manifest
    VALIDATOR.validate(manifest)
    submission.refresh_from_db()
    task = competition.task
    assert run.task_version == manifest["task"]["version"] == 1
    assert manifest["predictions"]["sha256"] == _sha256(Path(submission.file.path))
    assert manifest["submission"]["file"]["size"] == Path(submission.file.path).stat().st_size
    assert manifest["ground_truth"]["sha256"] == _sha256(Path(task.ground_truth.path))
    assert manifest["ground_truth"]["split_sha256"] == _split_sha256(factories.truth_csv())
    assert manifest["ground_truth"]["rows"] == {"public": 6, "private": 4}
    assert manifest["scores"]["public"] == {"roc_auc": 1.0, "accuracy": 1.0}
    assert [m["name"] for m in manifest["metrics"]] == ["roc_auc", "accuracy"]
    assert manifest["libraries"]["source"] == "worker process"
    assert set(manifest["libraries"]["versions"]) >= {"python", "numpy", "scikit-learn"}
    assert manifest["submission"]["method"]["hardware_declared"] == "1x laptop CPU"
    assert manifest["random_seeds"]["used"] == []
    attempt = factories.latest(submission)
    assert attempt.started_at is not None
    assert attempt.queued_at is not None
    assert manifest["timing"]["started_at"] == attempt.started_at.isoformat()
    assert manifest["timing"]["queued_at"] == attempt.queued_at.isoformat()
    assert manifest["host"]["host_processor_thread_count"] >= 1
    assert manifest["platform"]["version"]


@pytest.mark.docker
def test_a_docker_scoring_records_the_image_digest_and_the_containers_libraries(
    competition, participant, docker_client, scorer_image
):
    submission = _submit(competition, participant, factories.perfect_predictions())
    # By its id: another build may move the tag meanwhile.
    digest = docker_client.images.get(scorer_image).id
    scorer = DockerScorer(runner=DockerRunner(docker_client), image=digest, limits=LIMITS)

    submission_score(submission_id=submission.pk, scorer=scorer)

    manifest = ScoringRun.objects.get(submission=submission).manifest
    VALIDATOR.validate(manifest)
    assert manifest["scorer"]["image_digest"] == digest
    assert manifest["libraries"]["source"] == "scorer container"
    python = docker_client.containers.run(
        digest,
        ["python", "-c", "import platform; print(platform.python_version())"],
        network_mode="none",
        remove=True,
    )
    assert manifest["libraries"]["versions"]["python"] == python.decode().strip()
    assert manifest["ground_truth"]["split_sha256"] == _split_sha256(factories.truth_csv())
    assert manifest["stages"][0]["limits"]["memory_bytes"] == LIMITS.memory_bytes
    assert manifest["stages"][0]["exit_code"] == 0
    assert manifest["host"]["docker_version"] == docker_client.version()["Version"]


def test_an_invalid_file_gets_a_manifest_with_its_problem_count_and_no_scores(
    competition, participant
):
    submission = _submit(competition, participant, b"id,label\nid0,0.1\n")

    submission_score(submission_id=submission.pk, scorer=InProcessScorer())

    manifest = ScoringRun.objects.get(submission=submission).manifest
    VALIDATOR.validate(manifest)
    assert manifest["scores"] == {}
    assert manifest["validation"]["total_problems"] >= 1


def test_a_rescore_under_a_new_version_writes_a_second_manifest_and_keeps_the_first(
    competition, participant, django_capture_on_commit_callbacks
):
    submission = _submit(competition, participant, factories.perfect_predictions())
    submission_score(submission_id=submission.pk, scorer=InProcessScorer())
    truth_v2 = factories.truth_csv().replace("id0,0,", "id0,1,")
    task = competition.task
    task_version_create(task=task, ground_truth=ContentFile(truth_v2.encode(), name="t.csv"))
    with django_capture_on_commit_callbacks(execute=False):
        task_version_activate(task=task, number=2, rescore=True)

    submission_score(submission_id=submission.pk, scorer=InProcessScorer())

    first = scoring_run_latest(submission=submission, task_version=1)
    second = scoring_run_latest(submission=submission, task_version=2)
    assert first is not None
    assert second is not None
    assert (
        first.manifest["ground_truth"]["sha256"]
        == hashlib.sha256(factories.truth_csv().encode()).hexdigest()
    )
    assert (
        second.manifest["ground_truth"]["sha256"] == hashlib.sha256(truth_v2.encode()).hexdigest()
    )
    assert first.manifest["scores"]["public"]["accuracy"] == 1.0
    assert second.manifest["scores"]["public"]["accuracy"] == pytest.approx(5 / 6)


def test_the_viewers_copy_withholds_the_private_split_until_it_is_revealed(
    competition, participant
):
    submission = _submit(competition, participant, factories.perfect_predictions())
    submission_score(submission_id=submission.pk, scorer=InProcessScorer())
    manifest = ScoringRun.objects.get(submission=submission).manifest

    hidden = manifest_for_viewer(manifest, private_visible=False)
    shown = manifest_for_viewer(manifest, private_visible=True)

    VALIDATOR.validate(hidden)
    assert "private" not in hidden["scores"]
    assert hidden["ground_truth"]["rows"]["private"] is None
    assert hidden["withheld"] == ["scores.private", "ground_truth.rows.private"]
    assert "private" in manifest["scores"]  # the stored manifest is untouched
    assert shown == manifest
