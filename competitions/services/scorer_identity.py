"""Which scorer may score under a task version, and how an organizer adopts a new one.

A scorer's identity is "in-process" or an image's
scoring.image_identity.scorer_identity_of (the same on every host for the same scorer).
The ranked version records one (in TaskVersion.scorer_image_digest); a worker whose scorer
differs does not score and does not make a version: it gives the submission back to the
queue for a matching worker and reports the mismatch (ScorerMismatchReport), which the
organizer's dashboard shows. Only task_scorer_adopt, an organizer's action, moves the task
to another scorer. docs/scorers.md states the rules.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Collection

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from competitions.errors import FinalizedError, InvalidState
from competitions.models import ScorerMismatchReport, Task, TaskVersion
from competitions.selectors import scorer_mismatches_recent
from competitions.services.freeze import SCORER_FROZEN
from competitions.services.versions import (
    task_version_activate,
    task_version_create,
    task_version_ensure,
)

log = logging.getLogger(__name__)
IN_PROCESS = "in-process"


class ScorerMismatch(Exception):
    """This worker's scorer is not the one the ranked version records."""

    def __init__(self, *, identity: str, expected: str, version: int) -> None:
        self.identity = identity
        self.expected = expected
        self.version = version
        super().__init__(
            f"scorer identity {identity} differs from task v{version}'s {expected or IN_PROCESS}"
        )


def scorer_matches(
    *, recorded: str, identity: str, image_id: str = "", aliases: Collection[str] = ()
) -> bool:
    """Whether a scorer of `identity` (local image id `image_id`) may score under a version
    that recorded `recorded`. Versions made before identities recorded the local image id,
    which still matches on the host that has that very image. `aliases`: the scorer's
    content label when it runs by registry digest, which versions recorded while the
    workers ran local builds of the same inputs."""
    names = {identity, *aliases, *([image_id] if image_id else [])}
    return recorded in names


def version_for_scorer(
    *,
    task: Task,
    identity: str,
    image_id: str = "",
    aliases: Collection[str] = (),
    number: int | None = None,
) -> int:
    """The number of the ranked version (or of version `number`, which a phase pins) the
    scores of this scorer go under.

    A version that records no scorer yet records this one (the first scoring under it
    decides, with a conditional UPDATE so two workers cannot both). An empty `identity`
    (a test's fake engine) is not checked. Raises ScorerMismatch.
    """
    if number is None:
        version = task_version_ensure(task=task)
    else:
        version = TaskVersion.objects.get(task=task, number=number)
    if not identity:
        return version.number
    if not version.scorer_image_digest:
        TaskVersion.objects.filter(pk=version.pk, scorer_image_digest="").update(
            scorer_image_digest=identity
        )
        version.refresh_from_db(fields=["scorer_image_digest"])
    recorded = version.scorer_image_digest
    if not scorer_matches(recorded=recorded, identity=identity, image_id=image_id, aliases=aliases):
        raise ScorerMismatch(identity=identity, expected=recorded, version=version.number)
    return version.number


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


def scorer_mismatch_report(
    *, task: Task, mismatch: ScorerMismatch, submission_id: int, image: str = ""
) -> None:
    """Log the mismatch (one WARNING line) and count it in this worker's report."""
    log.warning("%s; leaving submission #%d for a matching worker", mismatch, submission_id)
    worker = worker_name()
    fields = {
        "expected": mismatch.expected,
        "version": mismatch.version,
        "image": image[:200],
        "last_submission_id": submission_id,
        "last_at": timezone.now(),
    }
    key = {"task": task, "worker": worker, "identity": mismatch.identity[:100]}
    if ScorerMismatchReport.objects.filter(**key).update(count=F("count") + 1, **fields):
        return
    try:
        with transaction.atomic():
            ScorerMismatchReport.objects.create(**key, **fields)
    except IntegrityError:  # another process of this worker made it meanwhile
        ScorerMismatchReport.objects.filter(**key).update(count=F("count") + 1, **fields)


@transaction.atomic(durable=True)
def task_scorer_adopt(*, task: Task, by: User, identity: str | None = None) -> TaskVersion:
    """Make the scorer the workers now run the task's scorer: a new version recording its
    identity becomes the ranked one and every finished submission is queued to be scored
    under it (the scores of earlier versions stay).

    `identity` defaults to the one most recently reported by a worker that left this
    task's submissions (ScorerMismatchReport); with no report, the version records no
    scorer and the first scoring under it decides. Raises InvalidState when there is
    nothing to adopt, FinalizedError when the competition is finalized.
    """
    if task.competition.is_finalized:
        raise FinalizedError(SCORER_FROZEN)
    ranked = task_version_ensure(task=task)
    if identity is None:
        reports = scorer_mismatches_recent(task=task)
        identity = next(
            (r.identity for r in reports if r.identity != ranked.scorer_image_digest), ""
        )
    if identity and identity == ranked.scorer_image_digest:
        raise InvalidState(f"Version {ranked.number} already records the scorer {identity}.")
    note = f"scorer {identity or '(first to score)'} adopted by {by.get_username()}"
    version = task_version_create(task=task, note=note, scorer_identity=identity)
    task_version_activate(task=task, number=version.number, rescore=True)
    # Those workers match now; any that still differ will report again.
    ScorerMismatchReport.objects.filter(task=task).delete()
    return version
