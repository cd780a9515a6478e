"""Database set-up shared by the container-submission tests: a container phase with test
files, and submitting an archive through the same service the API and the pages use."""

from __future__ import annotations

import hashlib
from pathlib import Path

from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile

from competitions.models import Competition, Submission, TaskFile
from competitions.services.submissions import submission_create
from tests import factories

# Test features for the factories' tiny task: x is high exactly where the label is 1.
TEST_CSV = "id,x\n" + "".join(
    f"{i},{0.9 if y == '1' else 0.1}\n" for i, y, _ in factories.TRUTH_ROWS
)


def truth_probe() -> bytes:
    """What a probing container gets to look for: the ground truth's sha256 and its first
    two lines in hex (they appear in no other file)."""
    truth = factories.truth_csv().encode()
    first_lines = b"\n".join(truth.split(b"\n")[:2])
    return f"{hashlib.sha256(truth).hexdigest()} {first_lines.hex()}\n".encode()


def make_container_phase(
    competition: Competition, *, files: dict[str, bytes] | None = None, limits: dict | None = None
) -> Competition:
    """Turn the competition's phase into a container phase with these test files."""
    phase = competition.phases.get()
    phase.submission_kind = "container"
    phase.daily_limit = 100
    phase.save()
    task = competition.task
    task.inference_limits = limits or {}
    task.save()
    for name, data in (files if files is not None else {"test.csv": TEST_CSV.encode()}).items():
        task_file = TaskFile(task=task, kind=TaskFile.Kind.TEST, name=name)
        task_file.file.save(name, ContentFile(data), save=False)
        task_file.size = len(data)
        task_file.save()
    return competition


def submit_archive(competition: Competition, user, path: Path) -> Submission:
    with path.open("rb") as f:
        uploaded = UploadedFile(f, name=path.name, size=path.stat().st_size)
        return submission_create(competition=competition, user=user, uploaded_file=uploaded)
