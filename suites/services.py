"""Writes on suites: making one, adding its tasks, joining, registering methods and
submitting to them. Each top-level action is one transaction.

The organizer's console (suites/views_console.py, the API's organizer endpoints) writes
through suite_update, suite_task_attach, suite_task_remove, suite_task_move and
suite_cells_refresh_request (and suites/services_phases.py's suite_phases_set, the
phases): each a durable transaction, refused with an ApplicationError a
person can read. (The competitions' organizer log is per competition: a suite's changes are
not logged there.)

Joining a suite joins every task's competition (a team of one per competition, named
after the user, as competitions/services/teams.competition_join does). A method's
submission to a task is submission_create on the task's competition, so the task's phases,
quota, finalize, validation, scoring and sandbox apply unchanged; `MethodRun` links it to
the method. A container is fanned out: one submission (one scoring job) per task, each
sandboxed on its own, so a task that fails does not fail the others; it is refused as a
whole unless every task's current phase takes containers.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from django.contrib.auth.models import User
from django.core.files import File
from django.db import IntegrityError, transaction
from django.utils import timezone

from competitions.errors import ApplicationError, InvalidState, NotJoined, full_clean_or_refuse
from competitions.models import Competition, Membership, Submission
from competitions.permissions import Forbidden
from competitions.services.submissions import current_phase, submission_create
from competitions.services.teams import competition_join
from suites.cells import matrix_version_bump, suite_cells_enqueue
from suites.models import Method, MethodRun, Suite, SuiteTask

# A tag and each of its values: short words, so that a pivot reads well.
MAX_TAGS = 20
MAX_TAG_LENGTH = 60


def owned_visibility(suite_visibility: str) -> str:
    """The visibility of a competition a suite owns: never listed on its own (the suite
    is), invite-only when the suite is."""
    if suite_visibility == Competition.Visibility.INVITE_ONLY:
        return Competition.Visibility.INVITE_ONLY
    return Competition.Visibility.UNLISTED


def suite_create(
    *,
    slug: str,
    title: str,
    organizer: User | None,
    description: str = "",
    rules: str = "",
    visibility: str = Competition.Visibility.PUBLIC,
    split_seed: int | None = None,
) -> Suite:
    suite = Suite(
        slug=slug,
        title=title,
        description=description,
        rules=rules,
        visibility=visibility,
        split_seed=split_seed,
    )
    full_clean_or_refuse(suite)
    suite.save()
    if organizer is not None:
        suite.organizers.add(organizer)
    return suite


def suite_task_add(
    *, suite: Suite, competition: Competition, key: str = "", owned: bool = True
) -> SuiteTask:
    """Add `competition`'s task at the end of the suite. An owned competition takes the
    suite's organizers and is hidden from the listings (owned_visibility)."""
    with transaction.atomic():
        suite = Suite.objects.select_for_update().get(pk=suite.pk)
        last = suite.tasks.order_by("-position").values_list("position", flat=True).first()
        task = SuiteTask(
            suite=suite,
            competition=competition,
            position=0 if last is None else last + 1,
            key=key or competition.slug,
            owned=owned,
        )
        full_clean_or_refuse(task)
        task.save()
        if owned:
            competition.visibility = owned_visibility(suite.visibility)
            competition.save(update_fields=["visibility"])
            competition.organizers.add(*suite.organizers.all())
    return task


SUITE_DETAILS = ("title", "description", "rules", "visibility")


def suite_update(
    *, suite: Suite, title: str, description: str, rules: str, visibility: str
) -> Suite:
    """Change what participants read and who may see the suite. The competitions the suite
    owns follow its visibility (owned_visibility), as when they were added; a standalone
    task's competition keeps its own."""
    with transaction.atomic(durable=True):
        locked = Suite.objects.select_for_update().get(pk=suite.pk)
        wanted = {"title": title, "description": description, "rules": rules}
        wanted["visibility"] = visibility
        changed = [f for f in SUITE_DETAILS if getattr(locked, f) != wanted[f]]
        for field, value in wanted.items():
            setattr(locked, field, value)
        full_clean_or_refuse(locked)
        if changed:
            locked.save(update_fields=changed)
        if "visibility" in changed:
            Competition.objects.filter(suite_tasks__suite=locked, suite_tasks__owned=True).update(
                visibility=owned_visibility(locked.visibility)
            )
    return locked


def organizes_competition(user: User, competition: Competition) -> bool:
    return user.is_superuser or competition.organizers.filter(pk=user.pk).exists()


@transaction.atomic(durable=True)
def suite_task_attach(
    *, suite: Suite, competition: Competition, by: User, key: str = ""
) -> SuiteTask:
    """Add a competition `by` organizes as the suite's last task (suite_task_add's rules: a
    key unique in the suite, by default the competition's slug; a competition once per
    suite). The competition stays its own (not owned: its visibility and organizers are
    unchanged). Who joined the suite before joins the new task by joining again."""
    if not organizes_competition(by, competition):
        raise Forbidden("Add a competition you organize.")
    if not hasattr(competition, "task"):
        raise InvalidState(f"{competition.slug} has no task yet: give it its data first.")
    return suite_task_add(suite=suite, competition=competition, key=key.strip(), owned=False)


@transaction.atomic(durable=True)
def suite_task_remove(*, task: SuiteTask) -> None:
    """Take the task out of the suite, refused once a method has a run on it (the runs are
    the methods' results: they are not deleted with a click). Its competition stays, with
    its submissions. The tasks after it move up one place."""
    Suite.objects.select_for_update().filter(pk=task.suite_id).first()
    # Locks the task's row: a run being added to it (which locks the row it points to)
    # waits for this transaction, and then finds the task gone.
    locked = SuiteTask.objects.select_for_update().filter(pk=task.pk).first()
    if locked is None:
        return
    runs = locked.runs.count()
    if runs:
        raise InvalidState(
            f"The task {locked.key} has {runs} method run{'s' if runs != 1 else ''}: "
            "a task is removed only before any method submits to it."
        )
    locked.delete()
    # One at a time, in order: each place is free when the next task takes it.
    for later in SuiteTask.objects.filter(
        suite_id=locked.suite_id, position__gt=locked.position
    ).order_by("position"):
        SuiteTask.objects.filter(pk=later.pk).update(position=later.position - 1)


@transaction.atomic(durable=True)
def suite_task_move(*, task: SuiteTask, up: bool) -> SuiteTask:
    """Swap the task with the one before it (`up`) or after it; at either end, nothing
    moves. Positions stay unique (suitetask_unique_position) at every step: the task waits
    at a free place while its neighbour takes its own."""
    suite = Suite.objects.select_for_update().get(pk=task.suite_id)
    locked = SuiteTask.objects.get(pk=task.pk)
    tasks = suite.tasks.order_by("-position" if up else "position")
    neighbour = (
        tasks.filter(position__lt=locked.position)
        if up
        else tasks.filter(position__gt=locked.position)
    ).first()
    if neighbour is None:
        return locked
    last = suite.tasks.order_by("-position").values_list("position", flat=True).first()
    assert last is not None
    mine, theirs = locked.position, neighbour.position
    SuiteTask.objects.filter(pk=locked.pk).update(position=last + 1)
    SuiteTask.objects.filter(pk=neighbour.pk).update(position=mine)
    SuiteTask.objects.filter(pk=locked.pk).update(position=theirs)
    # The columns' order changed: the kept matrix is not current (update() sends no signal).
    matrix_version_bump(suite_id=suite.pk, layout=True)
    locked.position = theirs
    return locked


@transaction.atomic(durable=True)
def suite_cells_refresh_request(*, suite: Suite) -> None:
    """Ask a worker to compute the suite's stale cells (and keep the new matrix): sent once
    this transaction commits (the outbox), so the request answers at once. A cell already
    computed for its run, split and version is not computed again."""
    suite_cells_enqueue(suite_id=suite.pk)


@transaction.atomic(durable=True)
def suite_join(*, suite: Suite, user: User, accept_rules: bool) -> list[Membership]:
    """Join every task's competition (again is harmless: existing memberships stay)."""
    return [
        competition_join(competition=task.competition, user=user, accept_rules=accept_rules)
        for task in suite.tasks.select_related("competition")
    ]


def is_participant(*, suite: Suite, user: User) -> bool:
    """Whether `user` has joined every task of the suite."""
    tasks = suite.tasks.count()
    joined = Membership.objects.filter(user=user, competition__suite_tasks__suite=suite).count()
    return tasks > 0 and joined >= tasks


def components_clean(components: Mapping[str, object]) -> dict[str, list[str]]:
    """Components as tag -> list of values (a single value becomes a list of one), or
    ApplicationError naming every problem."""
    problems: list[str] = []
    clean: dict[str, list[str]] = {}
    if not isinstance(components, Mapping):
        raise ApplicationError('Components are an object of tags, e.g. {"model": "ridge"}.')
    if len(components) > MAX_TAGS:
        problems.append(f"At most {MAX_TAGS} component tags.")
    for tag, value in components.items():
        values = [value] if isinstance(value, str) else value
        if not isinstance(tag, str) or not tag.strip() or len(tag) > MAX_TAG_LENGTH:
            problems.append(f"Tag {tag!r}: a name of 1 to {MAX_TAG_LENGTH} characters.")
            continue
        if (
            not isinstance(values, list)
            or not values
            or not all(
                isinstance(v, str) and v.strip() and len(v) <= MAX_TAG_LENGTH for v in values
            )
        ):
            problems.append(
                f"Tag {tag!r}: a value, or a list of values, of 1 to {MAX_TAG_LENGTH} characters."
            )
            continue
        clean[tag.strip().lower()] = [v.strip().lower() for v in values]
    if problems:
        raise ApplicationError(" ".join(problems), extra={"problems": problems})
    return clean


@transaction.atomic(durable=True)
def method_create(
    *,
    suite: Suite,
    owner: User,
    name: str,
    description: str = "",
    paper_url: str = "",
    code_url: str = "",
    hardware_declared: str = "",
    components: Mapping[str, object] | None = None,
) -> Method:
    if not is_participant(suite=suite, user=owner):
        raise NotJoined("Join the suite (and accept its rules) before registering a method.")
    method = Method(
        suite=suite,
        owner=owner,
        name=name.strip(),
        description=description,
        paper_url=paper_url,
        code_url=code_url,
        hardware_declared=hardware_declared,
        components=components_clean(components or {}),
    )
    full_clean_or_refuse(method)
    try:
        with transaction.atomic():
            method.save()
    except IntegrityError:
        raise InvalidState(f"The suite already has a method named {method.name!r}.") from None
    return method


def _method_submission(
    *, method: Method, task: SuiteTask, user: User, uploaded_file: File, fanout: uuid.UUID | None
) -> MethodRun:
    submission = submission_create(
        competition=task.competition,
        user=user,
        uploaded_file=uploaded_file,
        method_name=method.name,
        description=method.description,
        paper_url=method.paper_url,
        code_url=method.code_url,
        hardware_declared=method.hardware_declared,
    )
    return MethodRun.objects.create(
        method=method, suite_task=task, submission=submission, fanout=fanout
    )


def _require_owner(method: Method, user: User) -> None:
    if method.owner_id != user.pk:
        raise NotJoined("Only the method's owner submits to it.")


@transaction.atomic(durable=True)
def method_submit(*, method: Method, task: SuiteTask, user: User, uploaded_file: File) -> MethodRun:
    """One prediction file (or container) for one task of the method's suite."""
    _require_owner(method, user)
    if task.suite_id != method.suite_id:
        raise ApplicationError("That task is not in this method's suite.")
    return _method_submission(
        method=method, task=task, user=user, uploaded_file=uploaded_file, fanout=None
    )


@transaction.atomic(durable=True)
def method_submit_everywhere(
    *, method: Method, user: User, uploaded_file: File, tasks: Sequence[SuiteTask] | None = None
) -> list[MethodRun]:
    """One container image run once per task: one submission, so one sandboxed scoring job,
    per task (every task of the suite unless `tasks` says which). All are made or none."""
    _require_owner(method, user)
    chosen = (
        list(tasks)
        if tasks is not None
        else list(method.suite.tasks.select_related("competition__task"))
    )
    if any(t.suite_id != method.suite_id for t in chosen):
        raise ApplicationError("A task named is not in this method's suite.")
    _require_containers_now(chosen)
    fanout = uuid.uuid4()
    runs = []
    for task in chosen:
        runs.append(
            _method_submission(
                method=method,
                task=task,
                user=user,
                uploaded_file=_copy_of(uploaded_file),
                fanout=fanout,
            )
        )
    return runs


def _require_containers_now(tasks: Sequence[SuiteTask]) -> None:
    """A container runs once per task only while every task's phase takes containers (the
    suite's phases say when, for the tasks it made): else none is made, and the message
    names the tasks that take prediction files now. A task with no open phase is refused
    by submission_create, as for one file."""
    now = timezone.now()
    files = [
        t.key
        for t in tasks
        if (found := current_phase(t.competition, now)) is not None
        and found[0].submission_kind != "container"
    ]
    if files:
        raise InvalidState(
            f"The current phase of {', '.join(files)} takes prediction files, not containers: "
            "upload one file per task, or the container once the phase takes containers."
        )


def _copy_of(uploaded_file: File) -> File:
    """The upload, read again from its start: stored once per task. (A temporary upload
    would be moved into place by the first store, so each store reads it as a plain file.)"""
    temporary = getattr(uploaded_file, "temporary_file_path", None)
    if temporary is not None:
        copy = File(open(temporary(), "rb"), name=uploaded_file.name)  # noqa: SIM115
        copy.size = uploaded_file.size  # type: ignore[misc]
        return copy
    uploaded_file.seek(0)
    return File(uploaded_file.file, name=uploaded_file.name)


def submission_suite_method(submission: Submission) -> Method | None:
    run = MethodRun.objects.filter(submission=submission).select_related("method").first()
    return None if run is None else run.method
