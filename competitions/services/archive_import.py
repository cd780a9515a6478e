"""Importing a competition archive (see competitions/services/archive.py for what it holds):
everything is recreated in one transaction and the boards are recomputed, which must come
out as exported; people are not carried over unless asked (see _users)."""

from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from django.contrib.auth.models import User
from django.core.files import File
from django.db import transaction
from django.db.models.fields.files import FieldFile
from django.utils.dateparse import parse_datetime

from competitions.bundles import BUNDLE_YAML
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
    Task,
    TaskVersion,
    Team,
)
from competitions.selectors import leaderboard_page
from competitions.services.archive_format import (
    FORMAT,
    SUBMISSION_FIELDS,
    TASK_FIELDS,
    VERSION,
    ArchiveInvalid,
    legacy_attempt,
)
from competitions.services.bundles import bundle_import
from competitions.services.leaderboard import leaderboard_rebuild


def competition_archive_import(
    *, source: Path, organizer: User | None, slug: str = "", keep_users: bool = False
) -> Competition:
    """Recreate an exported competition with its history; `organizer` organizes it.

    `slug` renames it (the source's slug may be taken). Without `keep_users` each person
    becomes an inactive account "<username>@<slug>", so nobody here gets another's
    access; with it, accounts with the same usernames are used (a restore). Raises
    ArchiveInvalid (or BundleInvalid for the bundle inside); no row is left then.
    """
    try:
        zf = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveInvalid(f"{Path(source).name} is not a readable zip: {exc}") from None
    with zf, tempfile.TemporaryDirectory(prefix="heldout-archive-") as tmp:
        meta = _get(zf, "archive.json")
        if meta.get("format") != FORMAT or meta.get("version") != VERSION:
            raise ArchiveInvalid(f"Not a {FORMAT} of version {VERSION}.")
        bundle = _bundle(zf, Path(tmp), slug)
        stored: list[FieldFile] = []
        try:
            with transaction.atomic():
                competition = bundle_import(source=bundle, organizer=organizer)
                _restore(zf, competition, stored, keep_users=keep_users)
        except KeyError as exc:  # a file or a name the archive's own lists promise
            for field_file in stored:
                field_file.delete(save=False)
            raise ArchiveInvalid(f"The archive is inconsistent: {exc} is missing.") from None
        except BaseException:
            for field_file in stored:
                field_file.delete(save=False)
            raise
    return competition


def _bundle(zf: zipfile.ZipFile, tmp: Path, slug: str) -> Path:
    """The archive's bundle zip, renamed to `slug` if given. Its scorer image is restored
    from competition.json: an archive from another site may name an image this site's
    bundle check does not know."""
    path = tmp / "bundle.zip"
    path.write_bytes(_read(zf, "bundle.zip"))
    renamed = tmp / "renamed.zip"
    with zipfile.ZipFile(path) as old, zipfile.ZipFile(renamed, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            data = old.read(info)
            if info.filename == BUNDLE_YAML:
                document = yaml.safe_load(data)
                document["slug"] = slug or document.get("slug")
                if isinstance(document.get("task"), dict):
                    document["task"].pop("scorer_image", None)
                data = yaml.safe_dump(document, sort_keys=False, allow_unicode=True).encode()
            new.writestr(info, data)
    return renamed


def _restore(
    zf: zipfile.ZipFile, competition: Competition, stored: list[FieldFile], *, keep_users: bool
) -> None:
    data = _get(zf, "competition.json")
    _restore_settings(zf, competition, data, stored)
    _restore_versions(zf, competition.task, _get(zf, "versions.json"), stored)
    users = _users(zf, competition, keep_users=keep_users)
    teams = _restore_teams(competition, _get(zf, "teams.json"), users)
    submissions = _get(zf, "submissions.json")
    ids = _restore_submissions(zf, competition, submissions, teams, users, stored)
    history = _get(zf, "history.json")
    _restore_history(zf, history, ids, submissions, stored)
    leaderboard_rebuild(competition=competition)
    _check_boards(competition, _get(zf, "leaderboards.json"), ids)
    _restore_lifecycle(competition, data, history.get("claims", []), ids, keep_users=keep_users)
    competition.refresh_from_db()


def _restore_lifecycle(
    competition: Competition,
    data: dict,
    claims: list[dict],
    ids: dict[int, int],
    *,
    keep_users: bool,
) -> None:
    """The freeze, the reopens and the claims. Archives made before these were kept lack
    them: they import without. An event's author is kept only with `keep_users`."""
    lifecycle = {k: data[k] for k in ("finalized_at", "created_at")}
    lifecycle |= {
        "reopened_at": data.get("reopened_at"),
        "reopen_reason": data.get("reopen_reason", ""),
    }
    Competition.objects.filter(pk=competition.pk).update(
        **{k: _value(Competition, k, v) for k, v in lifecycle.items()}
    )
    authors = {}
    if keep_users:
        names = {e["by"] for e in data.get("events", []) if e.get("by")}
        authors = {u.get_username(): u for u in User.objects.filter(username__in=names)}
    CompetitionEvent.objects.bulk_create(
        CompetitionEvent(
            competition=competition,
            by=authors.get(event.get("by") or ""),
            **_values(CompetitionEvent, event, exclude={"by"}),
        )
        for event in data.get("events", [])
    )
    ClaimRecord.objects.bulk_create(
        (
            ClaimRecord(
                submission_id=ids[c["submission"]],
                **_values(ClaimRecord, c, exclude={"submission"}),
            )
            for c in claims
        ),
        ignore_conflicts=True,  # the rebuild may have remembered a row already
    )


def _restore_settings(
    zf: zipfile.ZipFile, competition: Competition, data: dict, stored: list[FieldFile]
) -> None:
    for key in ("labels_published", "replicate_top_n", "max_team_size"):
        setattr(competition, key, data[key])
    competition.public_board = data.get("public_board", "plain")  # older archives: plain
    competition.save()
    task = competition.task
    for key in TASK_FIELDS:
        setattr(task, key, data["task"][key])
    if data["task"]["scorer_program"] and not task.scorer_program:  # older bundles lack it
        name = data["task"]["scorer_program"]
        task.scorer_program.save(
            f"{competition.slug}/{PurePosixPath(name).name}", File(zf.open(name)), save=False
        )
        stored.append(task.scorer_program)
    task.save()
    for phase_data in data["phases"]:
        competition.phases.filter(name=phase_data["name"]).update(
            submission_kind=phase_data["submission_kind"],
            allow_build_context=phase_data["allow_build_context"],
        )


def _restore_versions(
    zf: zipfile.ZipFile, task: Task, versions: list[dict], stored: list[FieldFile]
) -> None:
    """Every version with its own ground truth; the task then ranks the one it ranked."""
    ranked = _get(zf, "competition.json")["task"]["version"]
    task.versions.all().delete()  # the import's version 1 was a stand-in
    for data in versions:
        version = TaskVersion(task=task, number=data["number"])
        for key in (
            "ground_truth_sha256",
            "split_sha256",
            "scorer_program_sha256",
            "scorer_image_digest",
            "note",
        ):
            setattr(version, key, data[key])
        version.created_at = _value(TaskVersion, "created_at", data["created_at"])
        name = f"{task.competition.slug}/v{data['number']}/{PurePosixPath(data['file']).name}"
        version.ground_truth.save(name, File(zf.open(data["file"])), save=False)
        stored.append(version.ground_truth)
        version.save()
        if version.number == ranked:
            task.ground_truth.delete(save=False)  # the bundle's copy
            Task.objects.filter(pk=task.pk).update(
                version=ranked,
                ground_truth=version.ground_truth.name,
                ground_truth_sha256=version.ground_truth_sha256,
            )
    task.refresh_from_db()


def _users(zf: zipfile.ZipFile, competition: Competition, *, keep_users: bool) -> dict[str, User]:
    names = {m["username"] for team in _get(zf, "teams.json") for m in team["members"]}
    names |= {s["submitter"] for s in _get(zf, "submissions.json")}
    users = {}
    for name in sorted(names):
        if keep_users and (user := User.objects.filter(username=name).first()):
            users[name] = user
            continue
        user, created = User.objects.get_or_create(
            username=f"{name}@{competition.slug}"[:150], defaults={"is_active": False}
        )
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        users[name] = user
    return users


def _restore_teams(
    competition: Competition, teams: list[dict], users: dict[str, User]
) -> dict[str, Team]:
    made = {}
    for data in teams:
        team = Team.objects.create(
            competition=competition,
            **{
                k: _value(Team, k, data[k])
                for k in ("name", "is_banned", "banned_reason", "created_at")
            },
        )
        for member in data["members"]:
            Membership.objects.create(
                competition=competition,
                team=team,
                user=users[member["username"]],
                accepted_rules_at=_value(
                    Membership, "accepted_rules_at", member["accepted_rules_at"]
                ),
                joined_at=_value(Membership, "joined_at", member["joined_at"]),
            )
        made[team.name] = team
    return made


def _restore_submissions(
    zf: zipfile.ZipFile,
    competition: Competition,
    submissions: list[dict],
    teams: dict[str, Team],
    users: dict[str, User],
    stored: list[FieldFile],
) -> dict[int, int]:
    phases = {p.name: p for p in competition.phases.all()}
    ids = {}
    for data in submissions:
        submission = Submission(
            competition=competition,
            team=teams[data["team"]],
            phase=phases[data["phase"]],
            submitter=users[data["submitter"]],
            **{k: _value(Submission, k, data[k]) for k in SUBMISSION_FIELDS},
        )
        for field in ("file", "predictions", "influence"):
            if data.get(field):  # an older archive has no "influence"
                target: FieldFile = getattr(submission, field)
                target.save(PurePosixPath(data[field]).name, File(zf.open(data[field])), save=False)
                stored.append(target)
        submission.save()
        ids[data["id"]] = submission.pk
    return ids


def _restore_history(
    zf: zipfile.ZipFile,
    history: dict[str, list[dict]],
    ids: dict[int, int],
    submissions: list[dict],
    stored: list[FieldFile],
) -> None:
    Score.objects.bulk_create(
        Score(submission_id=ids[s["submission"]], **_values(Score, s, exclude={"submission"}))
        for s in history["scores"]
    )
    runs = {}
    for data in history["scoring_runs"]:
        run = ScoringRun.objects.create(
            submission_id=ids[data["submission"]],
            **_values(ScoringRun, data, exclude={"submission", "id"}),
        )
        runs[data["id"]] = run.pk
    SandboxRun.objects.bulk_create(
        SandboxRun(
            submission_id=ids[r["submission"]], **_values(SandboxRun, r, exclude={"submission"})
        )
        for r in history["sandbox_runs"]
    )
    # An older archive has no attempts: each submission's latest is on the submission.
    attempts = history.get("attempts")
    if attempts is None:
        attempts = [a for data in submissions if (a := legacy_attempt(data)) is not None]
    Attempt.objects.bulk_create(_attempt(zf, a, ids, stored) for a in attempts)
    for data in history["replications"]:
        Replication.objects.create(
            submission_id=ids[data["submission"]],
            original_run_id=runs.get(data["original_run"]),
            new_run_id=runs.get(data["new_run"]),
            **_values(Replication, data, exclude={"submission", "original_run", "new_run"}),
        )


def _attempt(
    zf: zipfile.ZipFile, data: dict, ids: dict[int, int], stored: list[FieldFile]
) -> Attempt:
    fields = _values(Attempt, data, exclude={"submission", "row_values"})
    attempt = Attempt(submission_id=ids[data["submission"]], **fields)
    if data.get("row_values"):
        target: FieldFile = attempt.row_values
        target.save(
            PurePosixPath(data["row_values"]).name, File(zf.open(data["row_values"])), save=False
        )
        stored.append(target)
    return attempt


def _check_boards(competition: Competition, expected: dict[str, list[dict]], ids: dict) -> None:
    """The recomputed boards must be the exported ones: same teams, ranks and scores."""
    for split, rows in expected.items():
        page = leaderboard_page(competition=competition, split=split, limit=None)
        got = [(r.rank, r.team, r.submission_id, r.score) for r in page.rows]
        want = [(r["rank"], r["team"], ids[r["submission"]], r["score"]) for r in rows]
        if got != want:
            raise ArchiveInvalid(
                f"The {split} leaderboard did not come out as exported: {want} became {got}."
            )


# --- Helpers -------------------------------------------------------------------------------


def _value(model: type, name: str, raw: Any) -> Any:
    """A JSON value back as the model field's Python value (datetimes are ISO strings)."""
    if raw is not None and model._meta.get_field(name).get_internal_type() == "DateTimeField":  # type: ignore[attr-defined]
        return parse_datetime(raw)
    return raw


def _values(model: type, data: dict, *, exclude: set[str]) -> dict[str, Any]:
    return {k: _value(model, k, v) for k, v in data.items() if k not in exclude}


def _read(zf: zipfile.ZipFile, name: str) -> bytes:
    try:
        return zf.read(name)
    except KeyError:
        raise ArchiveInvalid(f"The archive has no {name}.") from None


def _get(zf: zipfile.ZipFile, name: str) -> Any:
    try:
        return json.loads(_read(zf, name))
    except ValueError as exc:
        raise ArchiveInvalid(f"{name} is not valid JSON: {exc}") from None
