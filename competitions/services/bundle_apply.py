"""`bundle apply`: create a competition from a bundle, or update it to what the bundle says.

The diff (competitions.services.bundle_diff) is computed first; a dry run returns it, an
apply recomputes it inside one durable transaction with the competition's row locked and
writes it, or raises BundleRefused listing what would rewrite history. Rules
(docs/bundle.md, "Applying a bundle"):

- only staff accounts apply, and only a competition's organizers apply to its slug;
- nothing changes in a finalized competition;
- a new ground truth makes a new task version (never overwrites one), ranked only with
  `task.activate: true`; a ground truth a version already holds makes none;
- a new scorer program or image goes through a new version at once when submissions were
  scored, as a scorer upload does (services/scorers.py), since the task holds one program;
- phases are pinned to the bundle's `ground_truth:`s as on import (bundle_diff's
  phase_truths_planned says when they change): a phase pins a version holding its data,
  made from the file when none does; a phase whose pin changed and is open now has the
  board rank its version at once, as when a phase opens (phase_version_rank, no rescore);
- ranking a version is the version switch's background job (services/jobs.py), queued
  once the apply commits; it is refused while an open phase pins another version;
- a phase with submissions is never removed or renamed, nor its kind changed; the
  task's scoring spec does not change once there are submissions.

Files are stored before the transaction commits and removed again if it fails.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files import File
from django.db import transaction
from django.db.models.fields.files import FieldFile
from django.utils import timezone

from competitions.bundles import Bundle, BundlePhase, bundle_open, bundle_read
from competitions.errors import ApplicationError, full_clean_or_refuse
from competitions.models import Competition, Phase, Submission, Task, TaskFile, TaskVersion
from competitions.permissions import Forbidden, access_competition
from competitions.services.bundle_diff import FROZEN, BundleDiff, bundle_diff
from competitions.services.bundles import (
    competition_create_from_bundle,
    competition_settings_fields,
    field_file_store,
    file_sha256,
    files_release_set,
    phase_fields,
    scorer_name,
    stored_files_delete,
    task_settings_fields,
)
from competitions.services.freeze import competition_require_not_final
from competitions.services.leaderboard import leaderboard_rebuild


class BundleRefused(ApplicationError):
    status = 409
    code = "bundle_refused"


def bundle_apply(*, source: Path, organizer: User, dry_run: bool) -> BundleDiff:
    """Create or update the competition the bundle at `source` names; returns the diff.

    Raises BundleInvalid (every problem of the bundle), Forbidden/NotFound (not this
    user's competition) or BundleRefused (with the diff's refusals in `problems`).
    """
    if not (organizer.is_staff or organizer.is_superuser):
        raise Forbidden("Only organizer accounts can apply bundles.")
    with tempfile.TemporaryDirectory(prefix="heldout-bundle-") as workdir:
        bundle = bundle_read(bundle_open(Path(source), workdir=Path(workdir)), existing_ok=True)
        competition = Competition.objects.filter(slug=bundle.slug).first()
        if competition is not None:
            access_competition(organizer, bundle.slug, organize=True)
        if dry_run:
            return bundle_diff(bundle=bundle, competition=competition)
        if competition is None:
            diff = bundle_diff(bundle=bundle, competition=None)
            with transaction.atomic(durable=True):
                competition_create_from_bundle(bundle=bundle, organizer=organizer)
            diff.applied = True
            return diff
        return _update(bundle=bundle, competition_id=competition.pk, user=organizer)


def _update(*, bundle: Bundle, competition_id: int, user: User) -> BundleDiff:
    stored: list[FieldFile] = []
    try:
        with transaction.atomic(durable=True):
            competition = Competition.objects.select_for_update().get(pk=competition_id)
            diff = bundle_diff(bundle=bundle, competition=competition)
            if diff.refusals:
                raise BundleRefused(
                    "The bundle would rewrite history; nothing was applied.",
                    extra={"problems": diff.refusals},
                )
            if not diff.empty:
                competition_require_not_final(competition_id=competition.pk, refusal=FROZEN)
                _write(competition, bundle, diff, stored, user)
            diff.applied = True
    except BaseException:
        stored_files_delete(stored)
        raise
    return diff


def _write(
    competition: Competition,
    bundle: Bundle,
    diff: BundleDiff,
    stored: list[FieldFile],
    user: User,
) -> None:
    board_before = competition.public_board
    for key, value in _competition_fields(bundle).items():
        setattr(competition, key, value)
    # The tie rule is checked against the metrics the task is about to compute (_task_write).
    competition.task.secondary_metrics = list(bundle.spec.secondary_metrics)
    competition.full_clean()
    competition.save()
    task = competition.task
    scorer_changed = _task_write(task, bundle, stored)
    _phases_write(competition, bundle)  # first: files name the phases they are released with
    _files_write(task, bundle, stored)
    truth = _versions_write(task, bundle, diff, stored)
    # Pinned before any switch: a switch an open phase's pin would undo is refused.
    repinned = _pins_write(competition, bundle, diff, stored, task_truth=truth)
    _rank(task, bundle, diff, repinned, scorer_changed=scorer_changed, user=user)
    if competition.public_board != board_before:  # plain <-> Ladder: the public rows change
        leaderboard_rebuild(competition=competition)


def _competition_fields(bundle: Bundle) -> dict:
    return {
        "title": bundle.title,
        "description": bundle.description,
        "rules": bundle.rules,
        "visibility": bundle.visibility,
        "start_at": bundle.start_at,
        "end_at": bundle.end_at,
        "selection_limit": bundle.selection_limit,
        **competition_settings_fields(bundle),
    }


def _task_write(task: Task, bundle: Bundle, stored: list[FieldFile]) -> bool:
    """Write the task's spec and settings; returns whether the scorer (program, image) changed."""
    spec = bundle.spec
    before = (task.scorer_program_sha256 if task.scorer_program else "", _image(task))
    task.task_type = spec.task_type
    task.id_column = spec.id_column
    task.target_columns = list(spec.target_columns)
    task.classes = list(spec.classes)
    task.primary_metric = spec.primary_metric
    task.secondary_metrics = list(spec.secondary_metrics)
    for key, value in task_settings_fields(bundle).items():
        setattr(task, key, value)
    program = bundle.task_settings.scorer_program
    if program is None:
        task.scorer_program, task.scorer_program_sha256 = "", ""  # type: ignore[assignment]
    elif file_sha256(program) != before[0]:
        # The earlier program's file is kept: versions scored with it name its sha256.
        name = f"{task.competition.slug}/{scorer_name(program)}"
        task.scorer_program_sha256, _ = field_file_store(task.scorer_program, program, name)
        stored.append(task.scorer_program)
    task.full_clean()
    task.save()
    return before != (task.scorer_program_sha256, _image(task))


def _image(task: Task) -> str:
    # "" means the site's default: naming the default explicitly changes no scorer.
    return task.scorer_image or settings.HELDOUT_SCORER_IMAGE


def _files_write(task: Task, bundle: Bundle, stored: list[FieldFile]) -> None:
    current = {f.name: f for f in task.files.all()}
    wanted = {f.name for f in bundle.files}
    gone: list[str | None] = [f.file.name for name, f in current.items() if name not in wanted]
    TaskFile.objects.filter(task=task).exclude(name__in=wanted).delete()
    for item in bundle.files:
        task_file = current.get(item.name) or TaskFile(task=task, name=item.name)
        task_file.kind, task_file.description = item.kind, item.description
        sha256 = file_sha256(item.path)
        if task_file.pk is None or task_file.sha256 != sha256:
            if task_file.pk is not None:
                gone.append(task_file.file.name)
            name = f"{task.competition.slug}/{item.name}"
            task_file.sha256, task_file.size = field_file_store(task_file.file, item.path, name)
            stored.append(task_file.file)
        task_file.full_clean()
        task_file.save()
    files_release_set(task=task, bundle=bundle)
    storage = TaskFile._meta.get_field("file").storage  # type: ignore[attr-defined]
    # Replaced public files go once the change is committed (a rollback still needs them).
    transaction.on_commit(lambda: _delete_names(storage, gone))


def _delete_names(storage, names: list[str | None]) -> None:
    for name in names:
        if name:
            storage.delete(name)


def _phases_write(competition: Competition, bundle: Bundle) -> None:
    current = {p.name: p for p in competition.phases.all()}
    wanted = {p.name: p for p in bundle.phases}
    # Phases with submissions were refused by the diff; removing first leaves room for
    # the phases that replace them. Their files are released again as the bundle says
    # (_files_write, after this).
    gone = Phase.objects.filter(competition=competition).exclude(name__in=wanted)
    TaskFile.objects.filter(released_with__in=gone).update(released_with=None)
    gone.delete()
    for item in _write_order(bundle.phases, current):
        phase = current.get(item.name) or Phase(competition=competition)
        for key, value in phase_fields(item).items():
            setattr(phase, key, value)
        phase.full_clean()
        phase.save()


def _write_order(items: list[BundlePhase], current: dict[str, Phase]) -> list[BundlePhase]:
    """Phases moving later go first, the latest first, then the rest earliest first, so a
    shift of consecutive phases never overlaps a phase not yet moved (a rule full_clean
    or a database constraint may check one phase at a time)."""
    later = [p for p in items if p.name in current and p.start_at > current[p.name].start_at]
    rest = [p for p in items if p not in later]
    return sorted(later, key=lambda p: p.start_at, reverse=True) + sorted(
        rest, key=lambda p: p.start_at
    )


def _versions_write(task: Task, bundle: Bundle, diff: BundleDiff, stored: list[FieldFile]) -> int:
    """A new ground truth makes a new version (diff.version). Returns the number of the
    version holding the bundle's task.ground_truth (made now, ranked, or an earlier one)."""
    from competitions.services.versions import task_version_create

    if any(f.path == "task.ground_truth" for f in diff.files):
        with bundle.ground_truth.open("rb") as truth:
            version = task_version_create(
                task=task, ground_truth=File(truth, name=bundle.ground_truth.name), note="bundle"
            )
        stored.append(version.ground_truth)
        diff.version = version.number
        return version.number
    if bundle.task_settings.activate:
        diff.version = next((c.new for c in diff.changes if c.field == "task.version"), None)
    sha256 = file_sha256(bundle.ground_truth)
    if sha256 == task.ground_truth_sha256:
        return task.version
    held = TaskVersion.objects.filter(task=task, ground_truth_sha256=sha256).order_by("-number")
    return held.values_list("number", flat=True).first() or task.version


def _pins_write(
    competition: Competition,
    bundle: Bundle,
    diff: BundleDiff,
    stored: list[FieldFile],
    *,
    task_truth: int,
) -> list[Phase]:
    """Pin each phase to a version holding the data diff.pins names, as the import does
    (one version per file): the version it pins already, else the task truth's, else the
    latest holding it, else one made from the phase's file. Returns the phases whose pin
    changed."""
    if diff.pins is None:
        return []
    from competitions.services.versions import task_version_create

    task = competition.task
    held = dict(TaskVersion.objects.filter(task=task).values_list("number", "ground_truth_sha256"))
    files = {item.name: item.ground_truth for item in bundle.phases}
    changed = []
    for phase in Phase.objects.filter(competition=competition).order_by("start_at"):
        wanted = diff.pins.get(phase.name)
        candidates = [phase.task_version, task_truth, *sorted(held, reverse=True)]
        number = next((n for n in candidates if n is not None and held.get(n) == wanted), None)
        path = files.get(phase.name)
        if wanted is not None and number is None and path is not None:
            with path.open("rb") as truth:
                version = task_version_create(
                    task=task,
                    ground_truth=File(truth, name=path.name),
                    note=f"phase {phase.name}"[:300],
                )
            stored.append(version.ground_truth)
            held[version.number] = version.ground_truth_sha256
            number = version.number
        if number == phase.task_version:
            continue
        phase.task_version = number
        full_clean_or_refuse(phase)
        phase.save(update_fields=["task_version"])
        changed.append(phase)
    return changed


def _rank(
    task: Task,
    bundle: Bundle,
    diff: BundleDiff,
    repinned: list[Phase],
    *,
    scorer_changed: bool,
    user: User,
) -> None:
    """An open phase whose pin changed has the board rank it now, as when a phase opens;
    then ranking the bundle's version is a background job (diff.job), as the organizer
    pages' version switch is."""
    from competitions.services.phase_versions import phase_version_rank

    now = timezone.now()
    for phase in repinned:
        if phase.task_version is not None and phase.is_open_at(now):
            phase_version_rank(phase=phase)
    task.refresh_from_db()
    if diff.version is not None and (bundle.task_settings.activate or scorer_changed):
        # The task holds one program: with a new one, the new truth must be what it scores.
        diff.job = _switch(task, diff.version, user)
    elif scorer_changed:
        diff.job = _scorer_version(task, user)


def _scorer_version(task: Task, user: User) -> int | None:
    """Scores name the scorer that made them (services/scorers.py): a new program starts a
    new version, ranked with everything rescored, unless nothing was scored yet."""
    from competitions.services.versions import task_version_create

    scored = Submission.objects.filter(
        competition_id=task.competition_id, status=Submission.Status.SCORED
    )
    if not scored.exists():
        TaskVersion.objects.filter(task=task, number=task.version).update(
            scorer_program_sha256=task.scorer_program_sha256, scorer_image_digest=""
        )
        return None
    version = task_version_create(task=task, note="scoring program changed (bundle)")
    return _switch(task, version.number, user)


def _switch(task: Task, number: int, user: User) -> int:
    from competitions.services.jobs import version_switch_start

    job = version_switch_start(competition=task.competition, user=user, number=number, rescore=True)
    return job.pk
