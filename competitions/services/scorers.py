"""Organizer-written scoring programs: accept one only after it scored the sample submission.

The upload is checked and stored with a dry-run job (competitions.services.jobs); a worker
runs the dry run (task_scorer_dry_run), which installs the program only if it succeeds.

The contract a program follows is in docs/scorers.md; scoring.program_scorer runs it.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.utils import timezone

from competitions.errors import ApplicationError, FinalizedError
from competitions.files import local_copy
from competitions.models import OrganizerJob, Submission, Task, TaskFile, TaskVersion
from competitions.sandboxes import sandbox_limits, sandbox_runner
from competitions.services.freeze import SCORER_FROZEN
from competitions.services.jobs import organizer_job_create
from scoring.program_scorer import MAX_PROGRAM_BYTES, ProgramScorer, program_unpack
from scoring.recording import RecordingRunner
from scoring.sandbox import SandboxError, SandboxRunner, SandboxUnavailable

LOG_TAIL_CHARS = 4000


class ScorerRejected(ApplicationError):
    status = 400
    code = "scorer_rejected"


class SandboxUnreachable(ApplicationError):
    status = 503
    code = "sandbox_unavailable"


def task_scorer_set(
    *,
    task: Task,
    uploaded_file: UploadedFile,
    image: str | None = None,
    public: bool | None = None,
    user: User | None = None,
) -> OrganizerJob | None:
    """Accept an uploaded score.py (or a zip holding one) for a dry run in the sandbox on
    the task's sample submission, run by a worker (task_scorer_dry_run). Returns the job.

    What can be checked at once is: a finalized competition (FinalizedError, 409 like
    every action the freeze refuses), and (ScorerRejected) an unknown image, the size, a
    missing sample, a zip that can't be unpacked. The task keeps the
    scorer it had until the dry run succeeds.

    The same bytes as the stored program, on the same image, change nothing but
    `public` when given: no dry run, no re-upload, no new version, no rescore; then it
    returns None.
    """
    if _unchanged_program(task=task, uploaded_file=uploaded_file, image=image):
        if public is not None and public != task.scorer_program_public:
            task.scorer_program_public = public
            task.save(update_fields=["scorer_program_public"])
        return None
    if task.competition.is_finalized:
        raise FinalizedError(SCORER_FROZEN)
    image = image or task.scorer_image or settings.HELDOUT_SCORER_IMAGE
    if image not in settings.HELDOUT_SCORER_IMAGES:
        known = ", ".join(settings.HELDOUT_SCORER_IMAGES)
        raise ScorerRejected(f"Unknown scorer image {image!r}; choose one of: {known}.")
    if (uploaded_file.size or 0) > MAX_PROGRAM_BYTES:
        raise ScorerRejected(f"A scoring program is at most {MAX_PROGRAM_BYTES >> 20} MiB.")
    if not task.files.filter(kind=TaskFile.Kind.SAMPLE).exists():
        raise ScorerRejected("The task has no sample submission to try the program on.")
    with tempfile.TemporaryDirectory(prefix="heldout-scorer-") as tmp:
        program, sha256 = _store_upload(uploaded_file, Path(tmp))
        _unpack(program, Path(tmp))
        with program.open("rb") as stored:
            return organizer_job_create(
                competition=task.competition,
                kind=OrganizerJob.Kind.DRY_RUN,
                user=user,
                params={"image": image, "public": public, "program_sha256": sha256},
                total=1,
                file=File(stored, name=program.name),
            )


def task_scorer_dry_run(*, job: OrganizerJob, runner: SandboxRunner | None = None) -> dict:
    """The dry run of the program the job holds; if it scores the sample, the program
    becomes the task's scorer (a new task version if anything was scored). Returns the dry
    run. A program that fails is refused (ScorerRejected, with the error and the log's
    tail in extra["dry_run"]) and the task keeps the scorer it had."""
    task = Task.objects.select_related("competition").get(competition_id=job.competition_id)
    if task.competition.is_finalized:
        raise FinalizedError(SCORER_FROZEN)
    sample = task.files.filter(kind=TaskFile.Kind.SAMPLE).first()
    if sample is None:
        raise ScorerRejected("The task has no sample submission to try the program on.")
    image, public = job.params["image"], job.params.get("public")
    sha256 = job.params["program_sha256"]
    with tempfile.TemporaryDirectory(prefix="heldout-scorer-") as tmp:
        name = "program.zip" if (job.file.name or "").endswith(".zip") else "score.py"
        program = Path(tmp) / name
        with job.file.open("rb") as staged, program.open("wb") as out:
            shutil.copyfileobj(staged, out)
        _unpack(program, Path(tmp))
        dry_run = _dry_run(task, sample, program, image, runner, Path(tmp))
        dry_run["program_sha256"] = sha256
        with program.open("rb") as stored:
            task.scorer_program.save(f"score{program.suffix}", File(stored), save=False)
    task.scorer_program_sha256 = sha256
    task.scorer_image = image
    task.scorer_dry_run = dry_run
    if public is not None:
        task.scorer_program_public = public
    task.save(
        update_fields=[
            "scorer_program",
            "scorer_program_sha256",
            "scorer_image",
            "scorer_dry_run",
            "scorer_program_public",
        ]
    )
    _version_for_new_scorer(task)
    return dry_run


def _unchanged_program(*, task: Task, uploaded_file: UploadedFile, image: str | None) -> bool:
    """Whether the upload is the stored program, byte for byte, on the same image (making
    a program public re-sends it). Its scores stand, so this holds after finalize too:
    publishing moves no board."""
    if not task.scorer_program or not task.scorer_program_sha256:
        return False
    if image and image != (task.scorer_image or settings.HELDOUT_SCORER_IMAGE):
        return False
    if (uploaded_file.size or 0) > MAX_PROGRAM_BYTES:
        return False
    sha = hashlib.sha256()
    for chunk in uploaded_file.chunks():
        sha.update(chunk)
    uploaded_file.seek(0)
    return sha.hexdigest() == task.scorer_program_sha256


def _unpack(program: Path, folder: Path) -> None:
    try:
        program_unpack(program, folder / "unpacked")
    except ValueError as exc:
        raise ScorerRejected(f"The program cannot be used: {exc}.") from exc


def _version_for_new_scorer(task: Task) -> None:
    """Scores name the scorer that made them. The program in place is the one that scores,
    so a new one starts a new task version at once and everything is rescored under it;
    the scores of earlier versions are kept and an organizer can rank by them again."""
    from competitions.services.versions import task_version_activate, task_version_create

    scored = Submission.objects.filter(
        competition_id=task.competition_id, status=Submission.Status.SCORED
    )
    if not scored.exists():
        # Nothing was scored by the previous scorer: the ranked version just records this
        # one; its identity is left to the first scoring (docs/scorers.md).
        TaskVersion.objects.filter(task=task, number=task.version).update(
            scorer_program_sha256=task.scorer_program_sha256,
            scorer_image_digest="",
        )
        return
    version = task_version_create(task=task, note="scoring program changed")
    task_version_activate(task=task, number=version.number, rescore=True)


def _store_upload(uploaded_file: UploadedFile, folder: Path) -> tuple[Path, str]:
    head = uploaded_file.read(4)
    uploaded_file.seek(0)
    path = folder / ("program.zip" if head == b"PK\x03\x04" else "score.py")
    sha = hashlib.sha256()
    with path.open("wb") as out:
        for chunk in uploaded_file.chunks():
            sha.update(chunk)
            out.write(chunk)
    return path, sha.hexdigest()


def _dry_run(
    task: Task,
    sample: TaskFile,
    program: Path,
    image: str,
    runner: SandboxRunner | None,
    folder: Path,
) -> dict:
    try:
        limits = sandbox_limits(overrides=task.limits)
    except ValueError as exc:
        raise ScorerRejected(f"The task's sandbox limits are invalid: {exc}.") from exc
    recorder = RecordingRunner(runner or sandbox_runner(), labels={"heldout.dry-run": str(task.pk)})
    scorer = ProgramScorer(runner=recorder, image=image, limits=limits, program_path=program)
    workdir = folder / "dry-run"
    workdir.mkdir(mode=0o700)
    try:
        outcome = scorer.score(
            predictions_path=local_copy(sample.file, folder / "sample"),
            truth_path=local_copy(task.ground_truth, folder / "truth"),
            spec=task.spec(),
            workdir=workdir,
        )
    except SandboxUnavailable as exc:
        raise SandboxUnreachable(f"The scoring sandbox is unavailable: {exc}") from exc
    except SandboxError as exc:
        log = recorder.runs[-1].result.log if recorder.runs else ""
        failed = {"ok": False, "error": str(exc), "log": _tail(log), "sample": sample.name}
        raise ScorerRejected(
            f"The program failed on the sample submission {sample.name}: {exc}",
            extra={"dry_run": failed},
        ) from exc
    evaluation = outcome.evaluation
    if not evaluation.ok:
        problems = "; ".join(p.message for p in evaluation.problems[:5])
        failed = {"ok": False, "error": problems, "log": _tail(outcome.log), "sample": sample.name}
        raise ScorerRejected(
            f"The program found problems in the sample submission {sample.name}: {problems}",
            extra={"dry_run": failed},
        )
    return {
        "ok": True,
        "sample": sample.name,
        "scores": evaluation.scores,
        "image": outcome.scorer_image,
        "duration_s": round(outcome.duration_s, 3),
        "peak_memory_bytes": outcome.peak_memory_bytes,
        "log": _tail(outcome.log),
        "ran_at": timezone.now().isoformat(),
    }


def _tail(log: str) -> str:
    return log[-LOG_TAIL_CHARS:]
