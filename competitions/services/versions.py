"""Task versions: what a score means (ground truth, split, scorer program, scorer).

A version is never edited: a new ground truth, split or scorer makes the next version,
scores keep the version that produced them, and the organizer chooses when the leaderboard
switches (task_version_activate). Switching back to an earlier version restores its board
from the scores that were kept. Only an organizer's action makes a version: workers never
do (scoring.identity).

`scorer_image_digest` holds the scorer's identity
(scoring.image_identity.scorer_identity_of, or IN_PROCESS): a new version inherits its
predecessor's unless the scorer changed; "" means not known yet, and the first scoring
under the version records the scorer that made it (scoring.identity.version_for_scorer).
docs/scorers.md explains it.
"""

from __future__ import annotations

from pathlib import Path

from django.core.files import File
from django.db import transaction
from django.db.models import Max

from competitions.errors import ApplicationError, FinalizedError
from competitions.files import local_file, sha256_of
from competitions.models import Competition, LeaderboardEntry, Task, TaskVersion
from competitions.permissions import NotFound
from competitions.services.bundles import file_sha256
from competitions.services.claims import claims_remember
from competitions.services.freeze import VERSION_FROZEN
from competitions.services.leaderboard import leaderboard_rebuild
from competitions.services.references import references_enqueue, references_publish
from competitions.signals import ranking_changed
from scoring.cli import truth_summary
from scoring.evaluate import load_truth
from scoring.spec import TaskSpec
from scoring.validation import validate_ground_truth


class InvalidGroundTruth(ApplicationError):
    code = "invalid_ground_truth"


def task_version_create(
    *,
    task: Task,
    ground_truth: File | None = None,
    note: str = "",
    scorer_identity: str | None = None,
) -> TaskVersion:
    """Record the task as it is now, with `ground_truth` if given, as its next version.

    `scorer_identity` is the scorer the version's scores must come from; None keeps the
    ranked version's when only the ground truth changed, and leaves it to the first
    scoring ("") otherwise (the scorer changed). The new version is not ranked until
    task_version_activate. Raises InvalidGroundTruth listing the file's problems; nothing
    is stored then.
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
                with local_file(version.ground_truth) as path:
                    _check(path, task.spec())
                    version.ground_truth_sha256 = file_sha256(path)
                    version.split_sha256 = split_sha256(path, task.spec())
            except BaseException:
                version.ground_truth.delete(save=False)
                raise
        version.scorer_program_sha256 = _scorer_program_sha256(task)
        if scorer_identity is None:
            scorer_identity = current.scorer_image_digest if ground_truth is not None else ""
        version.scorer_image_digest = scorer_identity
        version.save()
    return version


def task_version_ensure(*, task: Task) -> TaskVersion:
    """The row of the task's ranked version, recorded from the task's files if missing (tasks
    made before versions were recorded, or by code that does not record them)."""
    version = TaskVersion.objects.filter(task=task, number=task.version).first()
    if version is not None:
        return version
    with local_file(task.ground_truth) as path:
        truth_sha256 = task.ground_truth_sha256 or file_sha256(path)
        split = split_sha256(path, task.spec())
    version, _ = TaskVersion.objects.get_or_create(
        task=task,
        number=task.version,
        defaults={
            "ground_truth": task.ground_truth.name,
            "ground_truth_sha256": truth_sha256,
            "split_sha256": split,
            "scorer_program_sha256": _scorer_program_sha256(task),
            # Not known until something scores under it (docs/scorers.md).
            "scorer_image_digest": "",
        },
    )
    return version


def task_version_activate(*, task: Task, number: int, rescore: bool = False) -> TaskVersion:
    """Rank the leaderboard by version `number`: the task scores against its ground truth
    from now on, every team's rows are recomputed from the scores under it, and the
    version's reference rows are shown (made by a worker if not yet).

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
            raise FinalizedError(VERSION_FROZEN)
        size = version.ground_truth.size
        # The board's rows stay citable under the version they were made on.
        claims_remember(entries=LeaderboardEntry.objects.filter(competition=competition))
        Task.objects.filter(pk=task.pk).update(
            version=number,
            ground_truth=version.ground_truth.name,
            ground_truth_sha256=version.ground_truth_sha256,
            ground_truth_size=size,
        )
        task.refresh_from_db()
        competition.task = task
        leaderboard_rebuild(competition=competition)
        # The version's references: those already made show at once, the others are made.
        references_publish(competition=competition)
        references_enqueue(competition_id=competition.pk, queue=task.queue)
        ranking_changed.send(sender=Competition, competition_id=competition.pk)
        if rescore:
            from competitions.services.submissions import submissions_rescore_all

            submissions_rescore_all(competition=competition)
    return version


def split_sha256(path: Path, spec: TaskSpec) -> str:
    """The split's identity (scoring.cli.truth_summary), from the ground-truth file."""
    return str(truth_summary(load_truth(path, spec))["split_sha256"])


def _scorer_program_sha256(task: Task) -> str:
    if not task.scorer_program:
        return ""
    return task.scorer_program_sha256 or sha256_of(task.scorer_program)


def _check(path: Path, spec: TaskSpec) -> None:
    result = validate_ground_truth(path, spec=spec)
    if not result.ok:
        problems = [p.to_dict() for p in result.problems]
        raise InvalidGroundTruth(
            f"The ground truth has {result.total_problems} problem(s); no version was made.",
            extra={"problems": problems, "total_problems": result.total_problems},
        )
