"""A whole competition exported as one archive and imported again with its history."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command

from competitions.models import (
    Attempt,
    ClaimRecord,
    Competition,
    CompetitionEvent,
    Membership,
    Replication,
    Score,
    ScoringRun,
    Submission,
)
from competitions.selectors import leaderboard_page
from competitions.services.archive import (
    ArchiveInvalid,
    competition_archive_export,
    competition_archive_import,
)
from competitions.services.lifecycle import competition_finalize, competition_reopen
from competitions.services.submissions import (
    submission_create,
    submission_set_selected,
    submissions_rescore_all,
)
from competitions.services.versions import task_version_activate, task_version_create
from judging.services import submission_score
from scoring.scorers import InProcessScorer
from tests import factories

pytestmark = pytest.mark.django_db

TRUTH_V2 = factories.truth_csv().replace("id0,0,", "id0,1,").replace("id9,1,", "id9,0,")


def _scored(competition, user, probabilities: dict[str, float], **fields) -> Submission:
    submission = submission_create(
        competition=competition,
        user=user,
        uploaded_file=factories.upload(factories.predictions_csv(probabilities)),
        **fields,
    )
    submission_score(submission_id=submission.pk, scorer=InProcessScorer())
    submission.refresh_from_db()
    return submission


@pytest.fixture
def history(
    competition, participant, other_participant, organizer, django_capture_on_commit_callbacks
):
    """Two teams, three submissions scored under version 1, a selection, version 2
    activated and everything rescored under it, a replication, and the reveal."""
    competition.refresh_from_db()  # plain strings where the factory set enums
    good = {f"id{i}": 0.9 if i >= 5 else 0.2 for i in range(10)} | {"id3": 0.6}
    _scored(competition, participant, good, method_name="GBM", hardware_declared="1 GPU")
    best = _scored(competition, participant, {f"id{i}": 0.9 if i >= 5 else 0.1 for i in range(10)})
    _scored(competition, other_participant, {f"id{i}": i / 10 for i in range(10)})
    submission_set_selected(submission=best, selected=True)
    task = competition.task
    task_version_create(
        task=task, ground_truth=ContentFile(TRUTH_V2.encode(), name="truth.csv"), note="fix"
    )
    with django_capture_on_commit_callbacks(execute=False):
        task_version_activate(task=task, number=2)
        submissions_rescore_all(competition=competition)
    for submission in Submission.objects.filter(competition=competition):
        submission_score(submission_id=submission.pk, scorer=InProcessScorer())
    Replication.objects.create(
        submission=best,
        status=Replication.Status.DONE,
        outcome=Replication.Outcome.REPRODUCED,
        original_run=ScoringRun.objects.filter(submission=best).last(),
        differences={"max_abs_difference": 0},
    )
    competition.labels_published = True
    competition.save()
    return competition_finalize(competition=competition).competition


def _board(competition: Competition, split: str) -> list[tuple]:
    page = leaderboard_page(competition=competition, split=split, limit=None)
    return [(r.rank, r.team, r.score, r.scores, r.entries) for r in page.rows]


def _scores(competition: Competition) -> set[tuple]:
    return set(
        Score.objects.filter(submission__competition=competition).values_list(
            "submission__team__name",
            "submission__created_at",
            "task_version",
            "split",
            "metric",
            "value",
        )
    )


def _file_hashes(competition: Competition) -> list[str]:
    hashes = []
    for submission in Submission.objects.filter(competition=competition).order_by("created_at"):
        hashes.append(hashlib.sha256(Path(submission.file.path).read_bytes()).hexdigest())
    return hashes


def test_an_archive_round_trip_keeps_the_boards_scores_versions_manifests_and_files(
    history, tmp_path, organizer, other_organizer
):
    source = history
    archive = competition_archive_export(competition=source, dest=tmp_path / "a.zip")

    copy = competition_archive_import(source=archive, organizer=other_organizer, slug="copy")

    assert copy.slug == "copy"
    assert copy.title == source.title
    assert copy.is_finalized
    assert copy.labels_published
    assert list(copy.organizers.all()) == [other_organizer]
    for split in ("public", "private"):
        assert _board(copy, split) == _board(source, split)
        assert _board(copy, split)  # not trivially empty
    assert _scores(copy) == _scores(source)
    assert {v for _, _, v, *_ in _scores(copy)} == {1, 2}  # both versions' scores
    versions = list(copy.task.versions.values_list("number", "ground_truth_sha256", "note"))
    assert versions == list(
        source.task.versions.values_list("number", "ground_truth_sha256", "note")
    )
    copy.task.refresh_from_db()
    assert copy.task.version == 2
    assert Path(copy.task.ground_truth.path).read_text() == TRUTH_V2
    manifests = lambda c: sorted(  # noqa: E731
        json.dumps(r.manifest, sort_keys=True)
        for r in ScoringRun.objects.filter(submission__competition=c)
    )
    assert manifests(copy) == manifests(source)
    assert len(manifests(copy)) == 6  # three submissions, two versions
    assert _file_hashes(copy) == _file_hashes(source)
    replication = Replication.objects.get(submission__competition=copy)
    assert replication.outcome == "reproduced"
    assert replication.original_run is not None
    assert replication.original_run.submission == replication.submission
    # Each scoring's attempt, with who scored it and when, and its per-row values.
    assert _attempts(copy) == _attempts(source)
    rows = lambda c: sorted(  # noqa: E731
        Path(a.row_values.path).read_bytes()
        for a in Attempt.objects.filter(submission__competition=c)
    )
    assert rows(copy) == rows(source)
    assert len(rows(copy)) == 6
    assert {(number, outcome) for _, _, number, outcome, *_ in _attempts(copy)} == {
        (1, "scored"),
        (2, "scored"),
    }
    card = Submission.objects.get(competition=copy, method_name="GBM")
    assert card.hardware_declared == "1 GPU"
    assert Submission.objects.filter(competition=copy, is_selected=True).count() == 1


def _attempts(competition: Competition) -> set[tuple]:
    return set(
        Attempt.objects.filter(submission__competition=competition).values_list(
            "submission__team__name",
            "submission__created_at",
            "number",
            "outcome",
            "worker",
            "started_at",
            "finished_at",
            "scorer_name",
        )
    )


def _events(competition: Competition) -> list[tuple]:
    events = CompetitionEvent.objects.filter(competition=competition).order_by("at", "pk")
    return [
        (e.kind, e.reason, e.ended_phases, e.at, e.by.username if e.by else None) for e in events
    ]


def _claims(competition: Competition) -> set[tuple]:
    return set(
        ClaimRecord.objects.filter(submission__competition=competition).values_list(
            "submission__team__name",
            "submission__created_at",
            "split",
            "task_version",
            "recorded_at",
        )
    )


def test_an_archive_round_trip_keeps_the_finalize_and_reopen_history_and_the_claims(
    history, tmp_path, organizer
):
    competition_reopen(competition=history, by=organizer, reason="A label was wrong")
    competition_finalize(competition=history, by=organizer)
    history.refresh_from_db()
    assert len(_events(history)) == 3
    assert _claims(history)  # version 1's public rows, remembered when version 2 was ranked
    archive = competition_archive_export(competition=history, dest=tmp_path / "a.zip")

    restored = competition_archive_import(
        source=archive, organizer=None, slug="restored", keep_users=True
    )
    copy = competition_archive_import(source=archive, organizer=None, slug="copy")

    for imported in (restored, copy):
        assert (imported.finalized_at, imported.reopened_at, imported.reopen_reason) == (
            history.finalized_at,
            history.reopened_at,
            "A label was wrong",
        )
        assert _claims(imported) == _claims(history)
    assert _events(restored) == _events(history)
    assert [e[-1] for e in _events(restored)] == [None, "orga", "orga"]
    # People are not carried over unless asked: the authors are unknown here.
    assert _events(copy) == [(*e[:-1], None) for e in _events(history)]


def test_an_archive_made_before_events_and_claims_were_kept_still_imports(history, tmp_path):
    archive = competition_archive_export(competition=history, dest=tmp_path / "a.zip")
    older = tmp_path / "older.zip"
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(older, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename in ("competition.json", "history.json"):
                document = json.loads(data)
                for key in ("events", "reopened_at", "reopen_reason", "claims"):
                    document.pop(key, None)
                data = json.dumps(document).encode()
            dst.writestr(info, data)

    copy = competition_archive_import(source=older, organizer=None, slug="older")

    assert copy.finalized_at == history.finalized_at
    assert (copy.reopened_at, copy.reopen_reason) == (None, "")
    assert not CompetitionEvent.objects.filter(competition=copy).exists()
    assert _board(copy, "private") == _board(history, "private")


def test_an_archive_made_before_attempts_were_rows_keeps_each_submissions_latest_attempt(
    history, tmp_path
):
    archive = competition_archive_export(competition=history, dest=tmp_path / "a.zip")
    older = tmp_path / "older.zip"
    latest = {
        a.submission_id: a
        for a in Attempt.objects.filter(submission__competition=history).order_by("number")
    }
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(older, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "history.json":
                document = json.loads(data)
                del document["attempts"]
                data = json.dumps(document).encode()
            if info.filename == "submissions.json":
                document = json.loads(data)
                for row in document:  # the fields as they were on the submission
                    attempt = latest[row["id"]]
                    row |= {
                        "attempts": attempt.number,
                        "interruptions": 0,
                        "worker": attempt.worker,
                        "started_at": _iso(attempt.started_at),
                        "finished_at": _iso(attempt.finished_at),
                        "duration_s": attempt.duration_s,
                        "scorer_name": attempt.scorer_name,
                        "scorer_image": attempt.scorer_image,
                        "peak_memory_bytes": attempt.peak_memory_bytes,
                        "scorer_log": attempt.scorer_log,
                    }
                data = json.dumps(document).encode()
            dst.writestr(info, data)

    copy = competition_archive_import(source=older, organizer=None, slug="older")

    assert _attempts(copy) == {a for a in _attempts(history) if a[2] == 2}
    assert _board(copy, "private") == _board(history, "private")


def _iso(when) -> str:
    return when.isoformat()


def test_people_become_inactive_accounts_unless_kept(history, tmp_path, participant):
    archive = competition_archive_export(competition=history, dest=tmp_path / "a.zip")

    copy = competition_archive_import(source=archive, organizer=None, slug="copy")
    restored = competition_archive_import(
        source=archive, organizer=None, slug="restored", keep_users=True
    )

    members = Membership.objects.filter(competition=copy).select_related("user")
    assert sorted(m.user.username for m in members) == ["alice@copy", "bob@copy"]
    assert not any(m.user.is_active or m.user.has_usable_password() for m in members)
    kept = Membership.objects.filter(competition=restored).select_related("user")
    assert participant in [m.user for m in kept]


def test_the_commands_export_and_import(history, tmp_path, organizer):
    out = tmp_path / "archive.zip"

    call_command("export_competition_archive", history.slug, str(out))
    call_command(
        "import_competition_archive", str(out), "--organizer", organizer.username, "--slug", "cmd"
    )

    copy = Competition.objects.get(slug="cmd")
    assert _board(copy, "private") == _board(history, "private")
    with pytest.raises(CommandError, match="already exists"):
        call_command("import_competition_archive", str(out), "--slug", "cmd")
    assert Competition.objects.filter(slug="cmd").count() == 1


def test_a_zip_that_is_not_an_archive_is_refused(tmp_path):
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive.json", json.dumps({"format": "something-else", "version": 1}))

    with pytest.raises(ArchiveInvalid, match="Not a heldout-competition-archive"):
        competition_archive_import(source=path, organizer=None)
    assert not Competition.objects.exists()
