"""Reproducibility bundles of single submissions, and Hugging Face model-index exports.

A bundle is what a reader needs to re-derive a submission's scores offline
(docs/reproducibility.md): its manifest, replay.py, and what the reader may see of the
rest. The whole-competition archive lives in competitions/services/archive.py.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.contrib.auth.models import AnonymousUser, User
from django.db.models.fields.files import FieldFile
from django.urls import reverse

from competitions.entry_facts import manifest_for_reader
from competitions.models import (
    Competition,
    LeaderboardEntry,
    Membership,
    SandboxRun,
    ScoringRun,
    Submission,
    TaskVersion,
)
from competitions.permissions import is_organizer
from competitions.selectors import private_split_visible
from competitions.selectors_runs import scoring_run_latest
from scoring.metrics import metric_get

STORE_ABOVE = 64 << 20  # bytes
REPLAY_SOURCE = Path(__file__).resolve().parents[2] / "scoring" / "replay.py"
README = """\
Reproducibility bundle of submission {id} to {title} (task version {version}).

manifest.json   what was scored, with what, where and when (docs/manifest.md)
manifests/      every scoring and replication of this submission
replay.py       re-runs the scorer offline and compares the scores
{extra}
To replay, with the scorer image loaded in Docker (docker load) and a ground truth:

    python replay.py --truth TRUTH_FILE{predictions_hint}

It reports whether the recorded scores are reproduced exactly, within a tolerance
(--tolerance), or not, and everything that differs: file hashes, split, image digest,
program hash, library versions, problems found in the files, missing or extra scores.
Exit status: 0 reproduced, 1 not reproduced, 2 could not run. --json prints the report
as JSON; --manifest manifests/NAME.json replays an earlier scoring.
"""


def submission_bundle_write(
    *, submission: Submission, user: User | AnonymousUser, dest: Path
) -> Path:
    """Write the submission's bundle as `user` may see it to `dest` (a zip); returns dest.

    The submitted file and the predictions go to the team and the organizers only; logs as
    each may read them; the ground truth only once the organizers published the labels.
    """
    competition = submission.competition
    task = competition.task
    owner = _is_owner(user, submission)
    organizer = is_organizer(user, competition)
    private = private_split_visible(user, competition)
    signed_in = user.is_authenticated  # anonymous readers get no host-identifying details
    ladder = competition.public_board == competition.PublicBoard.LADDER
    latest = scoring_run_latest(submission=submission, task_version=task.version)
    if latest is None:
        latest = submission.scoring_runs.order_by("-created_at", "-pk").first()
    members: dict[str, Any] = {}
    if latest is not None:
        members["manifest.json"] = _json(
            manifest_for_reader(
                latest.manifest, private_visible=private, signed_in=signed_in, ladder=ladder
            )
        )
    for run in ScoringRun.objects.filter(submission=submission).order_by("created_at", "pk"):
        shown = manifest_for_reader(
            run.manifest, private_visible=private, signed_in=signed_in, ladder=ladder
        )
        members[f"manifests/{run.created_at:%Y%m%dT%H%M%S}-{run.pk}.json"] = _json(shown)
    files: dict[str, FieldFile] = {}
    if owner:
        files[f"predictions/{_predictions_name(submission)}"] = _predictions_field(submission)
        if submission.kind == "container":
            files[f"image/{submission.original_name}"] = submission.file
    members |= _logs(submission, owner=owner, organizer=organizer)
    if task.scorer_program and (task.scorer_program_public or organizer):
        # Organizers replay entries scored by their own private program; nobody else gets
        # it until they make it public. Named by its kind, not its storage name.
        suffix = ".zip" if (task.scorer_program.name or "").endswith(".zip") else ".py"
        files[f"scorer/score{suffix}"] = task.scorer_program
    private_program = bool(task.scorer_program) and not task.scorer_program_public
    if competition.labels_published and latest is not None:
        version = TaskVersion.objects.filter(task=task, number=latest.task_version).first()
        truth = version.ground_truth if version else task.ground_truth
        files[f"ground_truth/{PurePosixPath(truth.name or '').name}"] = truth
    members["README.txt"] = _readme(submission, latest, files, private_program=private_program)
    return _zip(dest, members, files)


def _is_owner(user: User | AnonymousUser, submission: Submission) -> bool:
    if not user.is_authenticated:
        return False
    return is_organizer(user, submission.competition) or (
        Membership.objects.filter(team_id=submission.team_id, user=user).exists()
    )


def _predictions_name(submission: Submission) -> str:
    field = _predictions_field(submission)
    return (
        PurePosixPath(field.name or "").name
        if field is submission.predictions
        else submission.original_name
    )


def _predictions_field(submission: Submission) -> FieldFile:
    """The file the scorer read: a container's predictions, or the uploaded file."""
    if submission.kind == "container" and submission.predictions:
        return submission.predictions
    return submission.file


def _logs(submission: Submission, *, owner: bool, organizer: bool) -> dict[str, str]:
    """Scorer logs go to organizers, and to the team when the organizers opted in (they can
    leak labels); a container's own log goes to its team and the organizers."""
    logs: dict[str, str] = {}
    scorer_visible = organizer or (owner and submission.competition.task.scorer_logs_visible)
    for run in SandboxRun.objects.filter(submission=submission).order_by("created_at", "pk"):
        visible = scorer_visible if run.stage == SandboxRun.Stage.SCORING else owner
        if visible and run.log:
            logs[f"logs/{run.stage}-{run.attempt}-{run.pk}.log"] = run.log
    latest = submission.latest_attempt
    if scorer_visible and latest is not None and latest.scorer_log and not logs:
        logs["logs/scoring.log"] = latest.scorer_log
    return logs


def _readme(
    submission: Submission,
    run: ScoringRun | None,
    files: dict[str, FieldFile],
    *,
    private_program: bool,
) -> str:
    extra = []
    if any(name.startswith("predictions/") for name in files):
        extra.append("predictions/    the file the scorer read")
    if any(name.startswith("image/") for name in files):
        extra.append("image/          the submitted image archive (docker load)")
    if any(name.startswith("scorer/") for name in files):
        extra.append(
            "scorer/         the organizers' scoring program"
            + (" (private: for the organizers only, do not share)" if private_program else "")
        )
    if any(name.startswith("ground_truth/") for name in files):
        extra.append("ground_truth/   the labels, published by the organizers")
    has_predictions = any(name.startswith("predictions/") for name in files)
    return README.format(
        id=submission.pk,
        title=submission.competition.title,
        version=run.task_version if run else submission.competition.task.version,
        extra="\n".join(extra) + ("\n" if extra else ""),
        predictions_hint="" if has_predictions else " --predictions THE_SCORED_FILE",
    )


def _zip(dest: Path, members: dict[str, str], files: dict[str, FieldFile]) -> Path:
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the destination and renamed, so a failure leaves no half zip.
    fd, tmp = tempfile.mkstemp(prefix=".bundle-", suffix=".zip", dir=dest.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.write(REPLAY_SOURCE, "replay.py")
            for name, text in members.items():
                zf.writestr(name, text)
            for name, field in files.items():
                with (
                    field.open("rb") as source,
                    zf.open(_member(name, field), "w", force_zip64=True) as out,
                ):
                    shutil.copyfileobj(source, out, 1 << 20)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def _member(name: str, field: FieldFile) -> zipfile.ZipInfo:
    """Large files (image archives) are stored as they are: deflating gigabytes of
    already-compressed layers costs minutes and saves little."""
    info = zipfile.ZipInfo(name, date_time=time.gmtime()[:6])
    info.compress_type = zipfile.ZIP_STORED if field.size > STORE_ABOVE else zipfile.ZIP_DEFLATED
    return info


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


# --- Hugging Face model-index ------------------------------------------------------------


HF_TASK_TYPES = {
    "binary": "tabular-classification",
    "multiclass": "tabular-classification",
    "probabilities": "tabular-classification",
    "regression": "tabular-regression",
}


def model_index(
    *, competition: Competition, user: User | AnonymousUser, site_url: str = ""
) -> dict[str, Any]:
    """The leaderboard's rows as Hugging Face model-index metadata: one entry per row, with
    a result per split the user may see. The dataset revision names the task version and
    its ground truth's sha256. No `verified`: Hugging Face reserves it for its own
    evaluations. With `site_url` (scheme and host, e.g. https://heldout.example.org), each
    result's source is the absolute URL of the entry's claim page."""
    task = competition.task
    splits = ["public", "private"] if private_split_visible(user, competition) else ["public"]
    version = TaskVersion.objects.filter(task=task, number=task.version).first()
    revision = f"v{task.version}" + (f"-{version.ground_truth_sha256}" if version else "")
    rows = (
        LeaderboardEntry.objects.filter(
            competition=competition, task_version=task.version, split__in=splits
        )
        .select_related("submission", "team")
        .order_by("split", "-sort_key", "submitted_at", "team_id")
    )
    entries: dict[int, dict[str, Any]] = {}
    for row in rows:
        entry = entries.setdefault(
            row.submission_id,
            {"name": _entry_name(row.submission), "results": []},
        )
        source = _claim_url(site_url, competition, row.submission_id)
        entry["results"].append(_result(competition, row, revision, source))
    return {"model-index": list(entries.values())}


def _claim_url(site_url: str, competition: Competition, submission_id: int) -> str:
    """The claim page's absolute URL: the public page readers can open, with no query."""
    if not site_url:
        return ""
    parts = urlsplit(site_url)
    path = reverse("entry", args=[competition.slug, submission_id])
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _entry_name(submission: Submission) -> str:
    method = submission.method_name or f"submission {submission.pk}"
    return f"{submission.team.name}: {method}"


def _result(
    competition: Competition, row: LeaderboardEntry, revision: str, source_url: str
) -> dict[str, Any]:
    task = competition.task
    metrics = []
    for name in (task.primary_metric, *task.secondary_metrics):
        value = row.scores.get(name)
        if value is not None:
            label = metric_get(name).label
            metrics.append({"type": name, "value": value, "name": label})
    result: dict[str, Any] = {
        "task": {"type": HF_TASK_TYPES[task.task_type], "name": task.get_task_type_display()},
        "dataset": {
            "name": competition.title,
            "type": competition.slug,
            "split": row.split,
            "revision": revision,
        },
        "metrics": metrics,
    }
    if source_url:
        result["source"] = {"name": "Heldout", "url": source_url}
    return result
