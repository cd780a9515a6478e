"""The inference stage of a container submission: the participant's image makes predictions.

The container sees the task's test features read-only under /input/test and may write only
to /output; the ground truth is never mounted. It runs the image's CMD in the image's
WORKDIR, in the same locked-down sandbox as scorers, under the task's inference limits.
What it writes to /output/predictions.csv (or .parquet) is then scored like an uploaded
file. docs/containers.md is the participant's side of this contract.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.db.models.fields.files import FieldFile
from django.utils import timezone

from competitions.files import local_copy
from competitions.models import SandboxRun, Submission, Task, TaskFile
from competitions.sandboxes import sandbox_limits
from judging.images import DockerImages, ImageStore, submission_image_tag
from scoring.recording import STAGE_LABEL, SUBMISSION_LABEL
from scoring.sandbox import Mount, SandboxError, SandboxLimits, SandboxRunner

TEST_TARGET = "/input/test"
PREDICTIONS_NAMES = ("predictions.csv", "predictions.parquet")
# Runs the image's command in its WORKDIR: the sandbox starts every container in /tmp.
_IN_WORKDIR = ["/bin/sh", "-c", 'cd "$0" && exec "$@"']


def inference_limits(task: Task) -> SandboxLimits:
    """The platform's sandbox limits with the task's `inference_limits` over them (the keys
    of a task's scoring `limits`: memory_mb, cpus, pids, timeout_s, ...)."""
    return sandbox_limits(overrides=task.inference_limits)


def inference_run(
    *,
    submission: Submission,
    runner: SandboxRunner,
    workdir: Path,
    images: ImageStore | None = None,
) -> Path:
    """Run the submission's image; returns the predictions it wrote (under `workdir`).

    Raises SandboxError with the reason the participant reads (refused archive, time or
    memory limit, exit code with the log's last lines, no predictions), and
    SandboxUnavailable when the engine cannot be used. The run is labelled
    heldout.stage=inference: submission_score's RecordingRunner saves it as the
    inference SandboxRun, whose log the participant may see (their own container's).
    `images` defaults to the engine of `runner` (or of the runner it wraps).
    """
    task = submission.competition.task
    limits = inference_limits(task)
    images = images or _engine_images(runner)
    image = images.ensure(
        tag=submission_image_tag(submission_id=submission.pk, sha256=submission.sha256),
        # Worker hosts share no disk with the web: the archive comes from the storage.
        archive=local_copy(submission.file, workdir / "archive"),
        digest=submission.container_image_digest,
        build_bases=settings.HELDOUT_SCORER_IMAGES
        if submission.phase.allow_build_context
        else None,
        pushed=submission.container_image_pushed,
    )
    Submission.objects.filter(pk=submission.pk).update(
        container_image=image.tag[:200],
        container_image_digest=image.digest[:100],
        container_image_size=image.size,
        container_image_pushed=image.pushed[:300],
    )
    output_dir = workdir / "inference-output"
    result = runner.run(
        image=image.tag,
        command=[*_IN_WORKDIR, image.working_dir or "/", *image.command],
        mounts=inference_mounts(task, workdir),
        output_dir=output_dir,
        limits=limits,
        labels={STAGE_LABEL: SandboxRun.Stage.INFERENCE, SUBMISSION_LABEL: str(submission.pk)},
    )
    reason = result.failure_reason(limits)
    if reason is not None:
        raise SandboxError(f"your container {reason}")
    predictions = _predictions_in(output_dir)
    if predictions is None:
        raise SandboxError(f"your container {_no_predictions_reason(output_dir)}")
    _store_predictions(submission, predictions)
    return predictions


def _engine_images(runner: SandboxRunner) -> ImageStore:
    """A DockerImages on the engine of `runner`, looking through wrapping runners."""
    inner: object = runner
    while not hasattr(inner, "client") and hasattr(inner, "runner"):
        inner = inner.runner
    if not hasattr(inner, "client"):
        raise TypeError("inference_run needs `images` when the runner has no Docker engine")
    return DockerImages(
        inner.client,
        max_bytes=settings.HELDOUT_MAX_IMAGE_BYTES,
        deployment=settings.HELDOUT_DEPLOYMENT_ID,
        registry=settings.HELDOUT_IMAGE_REGISTRY,
    )


def inference_mounts(task: Task, workdir: Path) -> list[Mount]:
    """The task's test files released by now, each read-only at /input/test/<name>; never
    the ground truth, nor a file a phase not yet started holds back (a container could copy
    it into the predictions its team downloads)."""
    released = task.files.released_at(timezone.now())
    files = list(released.filter(kind=TaskFile.Kind.TEST))
    if not files:
        empty = workdir / "no-test-files"
        empty.mkdir(mode=0o755, exist_ok=True)
        return [Mount(empty, TEST_TARGET)]
    mounts = []
    for task_file in files:
        name = os.path.basename(task_file.name)
        if not name or name.startswith(".") or name != task_file.name:
            raise ValueError(f"test file name {task_file.name!r} cannot be mounted")
        same_bytes = bool(task.ground_truth_sha256) and task_file.sha256 == task.ground_truth_sha256
        same_file = bool(task.ground_truth) and task_file.file.name == task.ground_truth.name
        if same_bytes or same_file:
            # An organizer's mistake, caught before the labels reach a participant's code.
            raise ValueError(f"test file {name} is the ground truth; it is never mounted")
        source = _world_readable(task_file.file, workdir / f"test-{task_file.pk}")
        mounts.append(Mount(source, f"{TEST_TARGET}/{name}"))
    return mounts


def _world_readable(field_file: FieldFile, copy_to: Path) -> Path:
    # The sandbox user owns nothing on the host: the stored file is handed over as a
    # readable copy inside the worker's private work dir (removed with it).
    copy = local_copy(field_file, copy_to)
    copy.chmod(0o644)
    copy_to.chmod(0o755)
    return copy


def _predictions_in(output_dir: Path) -> Path | None:
    for name in PREDICTIONS_NAMES:
        path = output_dir / name
        # The runner has already deleted links and special files the container made.
        if path.exists() and stat.S_ISREG(path.lstat().st_mode):
            return path
    return None


def _no_predictions_reason(output_dir: Path) -> str:
    written = sorted(p.name for p in output_dir.iterdir())[:10] if output_dir.exists() else []
    found = f"; it wrote {', '.join(written)}" if written else "; /output is empty"
    return f"finished without writing /output/predictions.csv{found}"


def _store_predictions(submission: Submission, path: Path) -> None:
    """Keep the predictions in private storage, for the team and the organizers."""
    field = submission.predictions
    if field.name:
        field.storage.delete(field.name)  # a rescore replaces them
    with path.open("rb") as f:
        name = field.storage.save(f"predictions/{submission.pk}/{path.name}", File(f))
    Submission.objects.filter(pk=submission.pk).update(predictions=name)
    submission.predictions.name = name
