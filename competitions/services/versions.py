"""Task versions: what a score means (ground truth, split, scorer program, scorer image).

A version is never edited: a new ground truth, split or scorer makes the next version,
scores keep the version that produced them, and the organizer chooses when the leaderboard
switches (task_version_activate). Switching back to an earlier version restores its board
from the scores that were kept.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import Max

from competitions.errors import ApplicationError, InvalidState
from competitions.models import Task, TaskVersion
from competitions.permissions import NotFound
from competitions.services.bundles import file_sha256
from competitions.services.leaderboard import leaderboard_rebuild
from scoring.cli import truth_summary
from scoring.evaluate import load_truth
from scoring.spec import TaskSpec
from scoring.validation import validate_ground_truth


class InvalidGroundTruth(ApplicationError):
    code = "invalid_ground_truth"


def task_version_create(
    *, task: Task, ground_truth: File | None = None, note: str = ""
) -> TaskVersion:
    """Record the task as it is now, with `ground_truth` if given, as its next version.

    The new version is not ranked until task_version_activate. Raises InvalidGroundTruth
    listing the file's problems; nothing is stored then.
    """
    current = task_version_ensure(task=task)
    with transaction.atomic():
        # Serialises version numbering per task.
        Task.objects.select_for_update().get(pk=task.pk)
        number = (task.versions.aggregate(top=Max("number"))["top"] or 0) + 1
        version = TaskVersion(task=task, number=number, note=note[:300])
        if ground_truth is None:
            # The same file as the ranked version: only the scorer changed.
            version.ground_truth.name = current.ground_truth.name
            version.ground_truth_sha256 = current.ground_truth_sha256
            version.split_sha256 = current.split_sha256
        else:
            name = (
                f"{task.competition.slug}/v{number}/{Path(ground_truth.name or 'truth.csv').name}"
            )
            version.ground_truth.save(name, ground_truth, save=False)
            try:
                path = Path(version.ground_truth.path)
                _check(path, task.spec())
                version.ground_truth_sha256 = file_sha256(path)
                version.split_sha256 = split_sha256(path, task.spec())
            except BaseException:
                version.ground_truth.delete(save=False)
                raise
        version.scorer_program_sha256 = _scorer_program_sha256(task)
        version.scorer_image_digest = scorer_image_digest(task)
        version.save()
    return version


def task_version_ensure(*, task: Task) -> TaskVersion:
    """The row of the task's ranked version, recorded from the task's files if missing (tasks
    made before versions were recorded, or by code that does not record them)."""
    version = TaskVersion.objects.filter(task=task, number=task.version).first()
    if version is not None:
        return version
    path = Path(task.ground_truth.path)
    version, _ = TaskVersion.objects.get_or_create(
        task=task,
        number=task.version,
        defaults={
            "ground_truth": task.ground_truth.name,
            "ground_truth_sha256": task.ground_truth_sha256 or file_sha256(path),
            "split_sha256": split_sha256(path, task.spec()),
            "scorer_program_sha256": _scorer_program_sha256(task),
            "scorer_image_digest": scorer_image_digest(task),
        },
    )
    return version


def task_version_activate(*, task: Task, number: int, rescore: bool = False) -> TaskVersion:
    """Rank the leaderboard by version `number`: the task scores against its ground truth
    from now on, and every team's rows are recomputed from the scores under it.

    One transaction with a constant number of queries, whatever the number of teams
    (leaderboard_rebuild). With `rescore`, every finished submission is queued to be
    scored under it (scores under other versions are kept).
    """
    with transaction.atomic():
        version = TaskVersion.objects.filter(task=task, number=number).first()
        if version is None:
            raise NotFound(f"Version {number} does not exist.")
        competition = task.competition
        if competition.is_finalized:
            raise InvalidState("The competition is finalized; its ranked version can't change.")
        size = version.ground_truth.size
        Task.objects.filter(pk=task.pk).update(
            version=number,
            ground_truth=version.ground_truth.name,
            ground_truth_sha256=version.ground_truth_sha256,
            ground_truth_size=size,
        )
        task.refresh_from_db()
        competition.task = task
        leaderboard_rebuild(competition=competition)
        if rescore:
            from competitions.services.submissions import submissions_rescore_all

            submissions_rescore_all(competition=competition)
    return version


def split_sha256(path: Path, spec: TaskSpec) -> str:
    """The split's identity (scoring.cli.truth_summary), from the ground-truth file."""
    return str(truth_summary(load_truth(path, spec))["split_sha256"])


def scorer_image_digest(task: Task) -> str:
    """The content id of the image that scores the task, or "" when scoring runs in process
    or no engine answers (then the manifest of each scoring records the digest it used)."""
    from scoring.sandbox import DockerRunner, SandboxUnavailable
    from scoring.services import scoring_mode  # imports this package's services

    if not task.scorer_image and not task.scorer_program and scoring_mode() == "in-process":
        return ""

    try:
        return DockerRunner().image_digest(task.scorer_image or settings.HELDOUT_SCORER_IMAGE)
    except SandboxUnavailable:
        return ""


def _scorer_program_sha256(task: Task) -> str:
    if not task.scorer_program:
        return ""
    return task.scorer_program_sha256 or file_sha256(Path(task.scorer_program.path))


def _check(path: Path, spec: TaskSpec) -> None:
    result = validate_ground_truth(path, spec=spec)
    if not result.ok:
        problems = [p.to_dict() for p in result.problems]
        raise InvalidGroundTruth(
            f"The ground truth has {result.total_problems} problem(s); no version was made.",
            extra={"problems": problems, "total_problems": result.total_problems},
        )


def task_version_for_scorer_image(*, task: Task, digest: str) -> int:
    """The task version a score made by the scorer image `digest` belongs to.

    When the ranked version recorded another image (the platform's scorer image was
    rebuilt, say), a successor version is made for this one: the leaderboard ranks it and
    every submission is rescored, so no score claims an image that did not make it. Scores
    under the earlier version stay. A finalized competition keeps its version; each
    manifest still records the image that ran.
    """
    if not digest:
        return task.version
    with transaction.atomic():
        # Workers that notice the change together make one version between them.
        locked = Task.objects.select_for_update().select_related("competition").get(pk=task.pk)
        ranked = TaskVersion.objects.filter(task=locked, number=locked.version).first()
        if (
            ranked is None
            or not ranked.scorer_image_digest
            or ranked.scorer_image_digest == digest
            or locked.competition.is_finalized
        ):
            return locked.version
        version = task_version_create(task=locked, note="scorer image changed")
        TaskVersion.objects.filter(pk=version.pk).update(scorer_image_digest=digest)
        task_version_activate(task=locked, number=version.number, rescore=True)
    task.refresh_from_db()
    return version.number
