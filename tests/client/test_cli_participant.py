"""A participant's whole flow with the `heldout` command against a live site and a real
worker: login, find, join, download (twice: the second skips), submit and wait, the
leaderboard, the quota; an invalid file exits 2 with its problems by line."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import stat

import pytest

from competitions.models import Submission
from tests import factories
from tests.client.conftest import explain, token_of

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def dana(db):
    """Signed up, not yet in any competition."""
    return factories.make_user("dana")


def _with_sha256(task_file):
    """The file's SHA-256 recorded, as a bundle import does (the factory leaves it blank)."""
    with task_file.file.open("rb") as f:
        task_file.sha256 = hashlib.sha256(f.read()).hexdigest()
    task_file.save(update_fields=["sha256"])
    return task_file


def _submission_id(output: str) -> int:
    found = re.search(r"Submitted (\d+) ", output)
    assert found, output
    return int(found.group(1))


def test_a_participant_goes_from_login_to_the_leaderboard_in_a_few_commands(
    live, heldout, home, organizer, dana
):
    competition = factories.make_competition(organizers=[organizer])
    sample = _with_sha256(competition.task.files.get())

    login = heldout("login", "--url", live.url, "--token", token_of(dana))
    assert login.code == 0, explain(login)
    config = home / ".config" / "heldout" / "config.toml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert token_of(dana) in config.read_text()

    whoami = heldout("whoami")
    assert whoami.code == 0, explain(whoami)
    assert f"url: {live.url}" in whoami.out

    listed = heldout("competitions", "list")
    assert listed.code == 0, explain(listed)
    assert "tiny" in listed.out
    assert "Competition tiny" in listed.out

    shown = heldout("competitions", "show", "tiny")
    assert shown.code == 0, explain(shown)
    assert "metric: roc_auc" in shown.out
    assert "team: (not joined: heldout join tiny)" in shown.out

    joined = heldout("join", "tiny", "--accept-rules")
    assert joined.code == 0, explain(joined)
    assert "as team dana" in joined.out

    assert "team: dana" in heldout("competitions", "show", "tiny").out

    files = heldout("files", "tiny")
    assert files.code == 0, explain(files)
    assert "sample_submission.csv" in files.out
    assert sample.sha256 in files.out

    first = heldout("download", "tiny", "-o", "data")
    assert first.code == 0, explain(first)
    downloaded = home / "data" / "sample_submission.csv"
    assert f"downloaded data/sample_submission.csv (89 B, sha256 {sample.sha256})" in first.out
    assert hashlib.sha256(downloaded.read_bytes()).hexdigest() == sample.sha256
    again = heldout("download", "tiny", "-o", "data")
    assert again.code == 0, explain(again)
    assert "skipped data/sample_submission.csv" in again.out

    predictions = home / "predictions.csv"
    predictions.write_bytes(factories.perfect_predictions())
    submitted = heldout("submit", "tiny", str(predictions), "-m", "perfect recall", "--wait")
    assert submitted.code == 0, explain(submitted) + live.worker_log.read_text()[-3000:]
    submission_id = _submission_id(submitted.out)
    assert f"Submission {submission_id}: scored" in submitted.out
    assert "public roc_auc: 1.0" in submitted.out
    stored = Submission.objects.get(pk=submission_id)
    assert stored.description == "perfect recall"
    assert stored.file.read() == factories.perfect_predictions()

    status = heldout("status", str(submission_id))
    assert status.code == 0, explain(status)
    assert "public accuracy: 1.0" in status.out

    mine = heldout("submissions", "tiny")
    assert mine.code == 0, explain(mine)
    assert str(submission_id) in mine.out
    assert "perfect recall" in mine.out
    assert "roc_auc=1.0" in mine.out

    board = heldout("leaderboard", "tiny")
    assert board.code == 0, explain(board)
    first_row = next(line for line in board.out.splitlines() if line.lstrip().startswith("1 "))
    assert first_row.split()[:3] == ["1", "dana", "1.0"]

    as_csv = heldout("leaderboard", "tiny", "--csv")
    assert as_csv.code == 0, explain(as_csv)
    rows = list(csv.reader(io.StringIO(as_csv.out)))
    assert rows[0][:3] == ["rank", "team", "roc_auc"]
    assert rows[1][:3] == ["1", "dana", "1.0"]

    quota = heldout("quota", "tiny")
    assert quota.code == 0, explain(quota)
    assert "remaining: 4" in quota.out
    assert "today: 1 of 5" in quota.out

    team = heldout("team", "tiny")
    assert (team.code, team.out.strip()) == (0, f"team: dana (id {stored.team_id})")

    selected = heldout("select", str(submission_id))
    assert selected.code == 0, explain(selected)
    assert Submission.objects.get(pk=submission_id).is_selected


def test_an_invalid_file_exits_2_and_prints_its_problems_with_their_lines(
    live, heldout, home, organizer, dana
):
    factories.make_competition(organizers=[organizer])
    env = {"HELDOUT_URL": live.url, "HELDOUT_TOKEN": token_of(dana)}
    assert heldout("join", "tiny", "-y", env=env).code == 0
    bad = home / "bad.csv"
    bad.write_bytes(b"id,label\nid0,0.1\nid0,0.2\nid1,banana\n")

    submitted = heldout("submit", "tiny", str(bad), "--wait", env=env)
    assert submitted.code == 2, explain(submitted)
    assert "failure: invalid" in submitted.out
    assert re.search(r"line 3.*duplicate_id", submitted.out), submitted.out
    assert re.search(r"line 4 \[label\]: not_numeric", submitted.out), submitted.out

    status = heldout("status", str(_submission_id(submitted.out)), env=env)
    assert status.code == 2, explain(status)
    assert re.search(r"line 3.*duplicate_id", status.out), status.out
    # The invalid file used the invalid-file allowance, not the quota.
    quota = heldout("quota", "tiny", env=env)
    assert "today: 0 of 5" in quota.out
    assert "invalid files today: 1 of" in quota.out
