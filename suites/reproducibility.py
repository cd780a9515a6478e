"""A method's reproducibility bundle: every task's manifest for the method's current cells.

Contract: the bundle (a zip) holds method.json (the method as registered: name,
description, components, links, declared hardware, and one line per task of the suite,
in order, naming the cell's submission, its status and its manifest), manifests/<key>.json
for every cell that has one, replay.py and a README. A cell is the method's latest
finished run on the task, as on the suite's matrix (suites/selectors.py). Each manifest is
shown as `user` may read it on the entry's page (competitions' manifest_for_reader: the
private split withheld until revealed, the host's details to signed-in readers only), and a
manifest holds hashes, counts and scores, never a label nor a row of the ground truth; no
ground truth, predictions, logs or scoring program are included. Anyone who can see the
suite may therefore download it (suites/views_downloads.py).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

from django.contrib.auth.models import AnonymousUser, User

from competitions.entry_facts import manifest_for_reader
from competitions.models import Competition, ScoringRun, Submission
from competitions.selectors import private_split_visible
from competitions.selectors_runs import scoring_run_latest
from competitions.services.reproducibility import REPLAY_SOURCE
from competitions.zips import zip_written_atomically
from suites.cells import latest_finished
from suites.models import Method, SuiteTask
from suites.selectors import suite_tasks

README = """\
Reproducibility bundle of the method "{name}" on the suite "{suite}".

method.json          the method (components, links, declared hardware) and its cell on
                     every task: the submission, its status and its manifest
manifests/KEY.json   what was scored on task KEY, with what, where and when (docs/manifest.md)
replay.py            re-runs a task's scorer offline and compares the scores

To replay one task, with its scorer image loaded in Docker, its ground truth (from the
suite's organizers once they publish it) and the predictions the method submitted there:

    python replay.py --manifest manifests/KEY.json --truth TRUTH_FILE --predictions FILE
"""


def method_cells(method: Method) -> list[tuple[SuiteTask, Submission | None]]:
    """Every task of the method's suite, in order, with the method's current cell there
    (suites.cells.latest_finished; None when it has none)."""
    tasks = list(suite_tasks(method.suite))
    cells = latest_finished(suite_id=method.suite_id, method_id=method.pk)
    submissions = Submission.objects.in_bulk([submission for submission, _ in cells.values()])
    shown = {task: submissions[submission] for (_m, task), (submission, _) in cells.items()}
    return [(task, shown.get(task.pk)) for task in tasks]


def _manifest(
    submission: Submission, competition: Competition, user: User | AnonymousUser
) -> dict[str, Any] | None:
    run: ScoringRun | None = scoring_run_latest(
        submission=submission, task_version=competition.task.version
    )
    if run is None:
        run = submission.scoring_runs.order_by("-created_at", "-pk").first()
    if run is None:
        return None
    return manifest_for_reader(
        run.manifest,
        private_visible=private_split_visible(user, competition),
        signed_in=user.is_authenticated,
        ladder=competition.public_board == Competition.PublicBoard.LADDER,
    )


def method_bundle_write(*, method: Method, user: User | AnonymousUser, dest: Path) -> Path:
    """Write the method's bundle as `user` may read it to `dest` (a zip); returns dest."""
    tasks: list[dict[str, Any]] = []
    manifests: dict[str, dict[str, Any]] = {}
    for task, submission in method_cells(method):
        line: dict[str, Any] = {
            "key": task.key,
            "competition": task.competition.slug,
            "submission": None,
            "status": "missing",
            "manifest": None,
        }
        if submission is not None:
            line |= {"submission": submission.pk, "status": submission.status}
            manifest = _manifest(submission, task.competition, user)
            if manifest is not None:
                line["manifest"] = f"manifests/{task.key}.json"
                manifests[line["manifest"]] = manifest
        tasks.append(line)
    document = {
        "suite": method.suite.slug,
        "name": method.name,
        "description": method.description,
        "components": method.components,
        "links": {"paper": method.paper_url, "code": method.code_url},
        "hardware": method.hardware_declared,
        "owner": method.owner.username,
        "tasks": tasks,
    }
    dest = Path(dest)
    with zip_written_atomically(dest, prefix=".method-") as zf:
        zf.writestr(_entry("method.json"), _json(document))
        for name, manifest in manifests.items():
            zf.writestr(_entry(name), _json(manifest))
        zf.writestr(_entry("replay.py"), REPLAY_SOURCE.read_bytes())
        readme = README.format(name=method.name, suite=method.suite.title)
        zf.writestr(_entry("README.txt"), readme)
    return dest


def method_bundle_file(*, method: Method, user: User | AnonymousUser) -> BinaryIO:
    """The bundle as an open file already removed from disk (for a download)."""
    workdir = Path(tempfile.mkdtemp(prefix="heldout-method-"))
    try:
        return method_bundle_write(method=method, user=user, dest=workdir / "method.zip").open("rb")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def method_bundle_name(method: Method) -> str:
    """The download's file name: the suite's slug and the method's id."""
    return f"{method.suite.slug}-method-{method.pk}.zip"


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
