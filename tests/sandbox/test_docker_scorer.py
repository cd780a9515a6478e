"""DockerScorer: the same scores as in-process scoring, and clear failures."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from scoring import cli
from scoring.docker_scorer import DockerScorer
from scoring.sandbox import RunResult, SandboxError
from scoring.sandbox_fake import FakeCall, FakeRunner
from scoring.scorers import InProcessScorer
from scoring.spec import TaskSpec

SPEC = TaskSpec(
    id_column="id",
    target_columns=("target",),
    task_type="binary",
    primary_metric="roc_auc",
    secondary_metrics=("log_loss", "accuracy"),
)


@pytest.fixture
def task_files(tmp_path: Path) -> tuple[Path, Path]:
    """A 40-row binary task with imperfect predictions: (predictions, truth)."""
    truth_lines = ["id,target,Usage"]
    prediction_lines = ["id,target"]
    for i in range(1, 41):
        label = int(i % 3 == 0)
        probability = (0.35 + 0.4 * label + ((i * 37) % 100) / 250) % 1
        truth_lines.append(f"{i},{label},{'Public' if i % 2 else 'Private'}")
        prediction_lines.append(f"{i},{probability:.4f}")
    truth = tmp_path / "truth.csv"
    predictions = tmp_path / "predictions.csv"
    truth.write_text("\n".join(truth_lines) + "\n")
    predictions.write_text("\n".join(prediction_lines) + "\n")
    truth.chmod(0o600)  # like private storage: the scorer must hand the sandbox a copy
    predictions.chmod(0o644)
    return predictions, truth


def score(scorer, task_files, tmp_path: Path, name: str):
    predictions, truth = task_files
    workdir = tmp_path / name
    workdir.mkdir(mode=0o700)
    return scorer.score(predictions_path=predictions, truth_path=truth, spec=SPEC, workdir=workdir)


def run_cli_on_the_host(call: FakeCall) -> None:
    """What the container would do, with its paths mapped back to the host."""
    args = [str(call.host_path(a)) if a.startswith("/") else a for a in call.command[3:]]
    assert cli.main(args) == 0


@pytest.mark.docker
def test_it_gives_the_same_scores_as_in_process_scoring(
    runner, scorer_image, small_limits, task_files, tmp_path
):
    scorer = DockerScorer(runner=runner, image=scorer_image, limits=small_limits)

    in_docker = score(scorer, task_files, tmp_path, "docker")
    in_process = score(InProcessScorer(), task_files, tmp_path, "in-process")

    assert in_docker.evaluation.ok
    assert in_docker.evaluation.scores == in_process.evaluation.scores
    assert 0.5 < in_docker.evaluation.scores["public"]["roc_auc"] < 1
    np.testing.assert_array_equal(in_docker.evaluation.row_values, in_process.evaluation.row_values)
    assert in_docker.scorer_name == "docker"
    assert in_docker.scorer_image.startswith(f"{scorer_image}@sha256:")
    assert in_docker.peak_memory_bytes > 0


@pytest.mark.docker
def test_an_invalid_submission_is_a_result_not_a_failure(
    runner, scorer_image, small_limits, task_files, tmp_path
):
    predictions, _ = task_files
    predictions.write_text("id,target\n1,0.5\n1,0.5\n")
    scorer = DockerScorer(runner=runner, image=scorer_image, limits=small_limits)

    outcome = score(scorer, task_files, tmp_path, "docker")

    assert not outcome.evaluation.ok
    assert outcome.evaluation.total_problems > 0
    assert outcome.evaluation.scores == {}


@pytest.mark.docker
def test_a_scorer_past_its_memory_limit_fails_with_the_reason(
    runner, scorer_image, small_limits, task_files, tmp_path
):
    limits = dataclasses.replace(small_limits, memory_bytes=20 * 1024**2)
    scorer = DockerScorer(runner=runner, image=scorer_image, limits=limits)

    with pytest.raises(SandboxError, match=r"^exceeded memory limit of 20 MiB$"):
        score(scorer, task_files, tmp_path, "docker")


def test_it_mounts_the_inputs_read_only_and_reads_the_result_back(
    task_files, tmp_path, small_limits
):
    runner = FakeRunner(behaviour=run_cli_on_the_host)
    scorer = DockerScorer(runner=runner, image="heldout-scorer:test", limits=small_limits)

    outcome = score(scorer, task_files, tmp_path, "fake")

    assert outcome.evaluation.ok
    (call,) = runner.calls
    assert call.command[:3] == ["python", "-m", "scoring.cli"]
    assert {m.target: m.read_only for m in call.mounts} == {
        "/input/spec.json": True,
        "/input/predictions": True,
        "/input/truth": True,
    }
    assert json.loads(call.host_path("/input/spec.json").read_text()) == SPEC.to_dict()
    # The 0600 ground truth went in as a world-readable copy inside the work dir.
    truth_mount = call.host_path("/input/truth")
    assert truth_mount.parent == tmp_path / "fake"
    assert truth_mount.stat().st_mode & 0o777 == 0o644
    assert call.host_path("/input/predictions") == task_files[0]


def test_a_failed_run_raises_sandbox_error_with_the_reason(task_files, tmp_path, small_limits):
    failed = RunResult(
        exit_code=1,
        timed_out=False,
        oom_killed=False,
        duration_s=0.5,
        peak_memory_bytes=None,
        log="Traceback (most recent call last):\nRuntimeError: boom\n",
        output_truncated=False,
        image="heldout-scorer:test",
        image_digest="sha256:fake",
    )
    scorer = DockerScorer(runner=FakeRunner(result=failed), image="x", limits=small_limits)

    with pytest.raises(SandboxError, match=r"(?s)exited with code 1: .*RuntimeError: boom"):
        score(scorer, task_files, tmp_path, "fake")


def test_a_missing_result_raises_sandbox_error(task_files, tmp_path, small_limits):
    scorer = DockerScorer(runner=FakeRunner(), image="x", limits=small_limits)

    with pytest.raises(SandboxError, match="output could not be read"):
        score(scorer, task_files, tmp_path, "fake")
