"""A whole competition as one archive, with its history, for another Heldout instance.

The archive (docs/reproducibility.md) holds the competition bundle (docs/bundle.md), every
task version with its ground truth, the teams, every submission with its files, every
score under every version, every manifest, sandbox run and replication, the finalize and
reopen events, the claims once on a public board (ClaimRecord), and the boards as they
stood. Importing recreates all of it and recomputes the boards, which must come out
the same; people are not carried over unless asked (see _users in archive_import.py).
"""

from __future__ import annotations

import json
import tempfile
import time
import zipfile
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from django.db.models.fields.files import FieldFile
from django.utils import timezone

from competitions.models import (
    Attempt,
    ClaimRecord,
    Competition,
    CompetitionEvent,
    Membership,
    Replication,
    SandboxRun,
    Score,
    ScoringRun,
    Submission,
    Team,
)
from competitions.selectors import leaderboard_page
from competitions.services.archive_format import (
    ATTEMPT_FIELDS,
    FORMAT,
    REPLICATION_FIELDS,
    RUN_FIELDS,
    SUBMISSION_FIELDS,
    TASK_FIELDS,
    VERSION,
    ArchiveInvalid,
)
from competitions.services.archive_import import competition_archive_import
from competitions.services.bundles import bundle_export
from competitions.zips import zip_written_atomically
from scoring.manifest import platform_version

__all__ = ["ArchiveInvalid", "competition_archive_export", "competition_archive_import"]


# --- Export ------------------------------------------------------------------------------


def competition_archive_export(*, competition: Competition, dest: Path) -> Path:
    """Write the competition and its history to `dest` (a zip). It holds the ground truth
    and every submission: it is for the competition's organizers only."""
    competition = Competition.objects.select_related("task").get(pk=competition.pk)
    dest = Path(dest)
    with zip_written_atomically(dest, prefix=".archive-") as zf:
        _export(zf, competition, dest.parent)
    return dest


def _export(zf: zipfile.ZipFile, competition: Competition, scratch: Path) -> None:
    task = competition.task
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        zf.write(bundle_export(competition=competition, dest=Path(tmp) / "b.zip"), "bundle.zip")
    _put(
        zf,
        "archive.json",
        {
            "format": FORMAT,
            "version": VERSION,
            "slug": competition.slug,
            "exported_at": timezone.now().isoformat(),
            "platform_version": platform_version(),
        },
    )
    _put(zf, "competition.json", _competition_data(competition, zf))
    versions = []
    for version in task.versions.order_by("number"):
        name = f"versions/v{version.number}/{PurePosixPath(version.ground_truth.name or '').name}"
        _copy(zf, version.ground_truth, name)
        versions.append(
            _fields(
                version,
                [
                    "number",
                    "ground_truth_sha256",
                    "split_sha256",
                    "scorer_program_sha256",
                    "scorer_image_digest",
                    "note",
                    "created_at",
                ],
            )
            | {"file": name}
        )
    _put(zf, "versions.json", versions)
    teams = Team.objects.filter(competition=competition).order_by("pk")
    _put(zf, "teams.json", [_team_data(team) for team in teams])
    submissions = Submission.objects.filter(competition=competition).select_related(
        "team", "phase", "submitter"
    )
    _put(zf, "submissions.json", [_submission_data(zf, s) for s in submissions.order_by("pk")])
    _put(zf, "history.json", _history(competition, zf))
    _put(zf, "leaderboards.json", _boards(competition))


def _competition_data(competition: Competition, zf: zipfile.ZipFile) -> dict[str, Any]:
    task = competition.task
    program = None
    if task.scorer_program:
        program = f"scorer/{PurePosixPath(task.scorer_program.name or '').name}"
        _copy(zf, task.scorer_program, program)
    return {
        **_fields(
            competition,
            [
                "finalized_at",
                "reopened_at",
                "reopen_reason",
                "labels_published",
                "replicate_top_n",
                "max_team_size",
                "public_board",
                "created_at",
            ],
        ),
        "events": [_event_data(e) for e in competition.events.order_by("at", "pk")],
        "task": _fields(task, TASK_FIELDS) | {"version": task.version, "scorer_program": program},
        "phases": [
            _fields(phase, ["name", "submission_kind", "allow_build_context"])
            for phase in competition.phases.order_by("start_at")
        ],
    }


def _event_data(event: CompetitionEvent) -> dict[str, Any]:
    """A finalize or reopen; `by` is a username (the import maps it like the members)."""
    by = event.by.get_username() if event.by is not None else None
    return _fields(event, ["kind", "reason", "ended_phases", "at"]) | {"by": by}


def _team_data(team: Team) -> dict[str, Any]:
    members = Membership.objects.filter(team=team).select_related("user").order_by("pk")
    return _fields(team, ["name", "is_banned", "banned_reason", "created_at"]) | {
        "members": [
            {"username": m.user.get_username()} | _fields(m, ["accepted_rules_at", "joined_at"])
            for m in members
        ]
    }


def _submission_data(zf: zipfile.ZipFile, submission: Submission) -> dict[str, Any]:
    data = _fields(submission, SUBMISSION_FIELDS) | {
        "id": submission.pk,
        "team": submission.team.name,
        "phase": submission.phase.name,
        "submitter": submission.submitter.get_username(),
    }
    for field in ("file", "predictions", "influence"):
        value: FieldFile = getattr(submission, field)
        data[field] = None
        if value:
            name = f"submissions/{submission.pk}/{field}/{PurePosixPath(value.name or '').name}"
            _copy(zf, value, name)
            data[field] = name
    return data


def _history(competition: Competition, zf: zipfile.ZipFile) -> dict[str, list[dict[str, Any]]]:
    of = {"submission__competition": competition}
    return {
        "scores": [
            _fields(s, ["task_version", "split", "metric", "value", "created_at"])
            | {"submission": s.submission_id}
            for s in Score.objects.filter(**of).order_by("pk")
        ],
        "scoring_runs": [
            _fields(r, ["task_version", "manifest", "created_at"])
            | {"id": r.pk, "submission": r.submission_id}
            for r in ScoringRun.objects.filter(**of).order_by("pk")
        ],
        "attempts": [_attempt_data(zf, a) for a in Attempt.objects.filter(**of).order_by("pk")],
        "sandbox_runs": [
            _fields(r, RUN_FIELDS) | {"submission": r.submission_id}
            for r in SandboxRun.objects.filter(**of).order_by("pk")
        ],
        "replications": [
            _fields(r, REPLICATION_FIELDS)
            | {
                "submission": r.submission_id,
                "original_run": r.original_run_id,
                "new_run": r.new_run_id,
            }
            for r in Replication.objects.filter(**of).order_by("pk")
        ],
        # Rows once on a public board: their claim pages stay visible (services.claims).
        "claims": [
            _fields(c, ["split", "task_version", "recorded_at"]) | {"submission": c.submission_id}
            for c in ClaimRecord.objects.filter(**of).order_by("pk")
        ],
    }


def _attempt_data(zf: zipfile.ZipFile, attempt: Attempt) -> dict[str, Any]:
    data = _fields(attempt, ATTEMPT_FIELDS) | {"submission": attempt.submission_id}
    data["row_values"] = None
    if attempt.row_values:
        name = PurePosixPath(attempt.row_values.name or "").name
        data["row_values"] = f"attempts/{attempt.submission_id}/{attempt.number}/{name}"
        _copy(zf, attempt.row_values, data["row_values"])
    return data


def _boards(competition: Competition) -> dict[str, list[dict[str, Any]]]:
    """The boards as ranked now; an import must rank the same."""
    boards = {}
    for split in ("public", "private"):
        page = leaderboard_page(competition=competition, split=split, limit=None)
        boards[split] = [
            {
                "rank": r.rank,
                "team": r.team,
                "submission": r.submission_id,
                "score": r.score,
                "scores": r.scores,
            }
            for r in page.rows
        ]
    return boards


# --- Helpers -------------------------------------------------------------------------------


def _fields(obj: object, names: list[str]) -> dict[str, Any]:
    return {n: (v.isoformat() if isinstance(v := getattr(obj, n), datetime) else v) for n in names}


def _put(zf: zipfile.ZipFile, name: str, data: Any) -> None:
    zf.writestr(name, json.dumps(data, indent=1, sort_keys=True))


def _copy(zf: zipfile.ZipFile, field_file: FieldFile, name: str) -> None:
    info = zipfile.ZipInfo(name, date_time=time.gmtime()[:6])
    # Image archives and other large files are stored as they are: deflating gigabytes of
    # compressed layers costs minutes and saves little.
    info.compress_type = (
        zipfile.ZIP_STORED if field_file.size > (64 << 20) else zipfile.ZIP_DEFLATED
    )
    with field_file.open("rb") as source, zf.open(info, "w", force_zip64=True) as out:
        while chunk := source.read(1 << 20):
            out.write(chunk)
