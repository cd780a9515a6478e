"""The `heldout` command's exit codes, configuration and downloads against a live site (no
worker: submission states are set in the database)."""

from __future__ import annotations

import hashlib
import re
import stat
import tomllib
from datetime import timedelta

import pytest
from django.utils import timezone

from competitions.models import Phase, Submission, Upload
from tests import factories
from tests.client.conftest import explain, token_of

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def env(site, participant):
    return {"HELDOUT_URL": site, "HELDOUT_TOKEN": token_of(participant)}


def _row(competition, username: str, **fields) -> Submission:
    team = competition.teams.get(members__username=username)
    submission = factories.submission_row(team, **fields)
    submission.save()
    return submission


def test_status_exits_3_for_a_scoring_error_and_4_while_queued(heldout, env, competition):
    failed = _row(competition, "alice", status="failed", failure="error", error_message="boom")
    queued = _row(competition, "alice", status="queued")

    error = heldout("status", str(failed.pk), env=env)
    assert error.code == 3, explain(error)
    assert "failure: error" in error.out
    assert "boom" in error.out

    pending = heldout("status", str(queued.pk), env=env)
    assert pending.code == 4, explain(pending)
    assert f"Submission {queued.pk}: queued" in pending.out

    timed_out = heldout("status", str(queued.pk), "--wait", "--timeout", "1", env=env)
    assert timed_out.code == 4, explain(timed_out)
    assert "still queued" in timed_out.err


def test_another_teams_submission_is_an_error_with_the_servers_message(heldout, env, competition):
    theirs = _row(competition, "bob", status="scored")
    result = heldout("status", str(theirs.pk), env=env)
    assert result.code == 1, explain(result)
    assert "(404 not_found)" in result.err


def test_a_usage_error_exits_64_so_that_2_only_means_invalid(heldout, env):
    result = heldout("status", "not-a-number", env=env)
    assert result.code == 64, explain(result)
    assert heldout("submit", "tiny", env=env).code == 64


def test_a_wrong_token_is_refused_at_login_and_nothing_is_saved(heldout, site, home):
    result = heldout("login", "--url", site, "--token", "0" * 40)
    assert result.code == 1, explain(result)
    assert "401" in result.err
    assert not (home / ".config" / "heldout" / "config.toml").exists()


def test_login_with_a_password_saves_the_token_in_a_0600_profile_beside_the_others(
    heldout, site, home, participant, organizer
):
    first = heldout("login", "--url", site, "--token", token_of(organizer))
    assert first.code == 0, explain(first)
    second = heldout(
        "--profile", "alice", "login", "--url", site, "--username", "alice", input="pw-alice\n"
    )
    assert second.code == 0, explain(second)

    config = home / ".config" / "heldout" / "config.toml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    profiles = tomllib.loads(config.read_text())["profiles"]
    assert profiles["default"]["token"] == token_of(organizer)
    assert profiles["alice"] == {"url": site, "token": token_of(participant), "username": "alice"}
    whoami = heldout("--profile", "alice", "whoami")
    assert whoami.code == 0, explain(whoami)
    assert "user: alice" in whoami.out
    assert "profile: alice" in whoami.out


def test_heldout_url_and_token_override_the_profile(
    heldout, site, home, competition, participant, outsider
):
    assert heldout("login", "--url", site, "--token", token_of(outsider)).code == 0
    env = {"HELDOUT_TOKEN": token_of(participant)}
    assert heldout("team", "tiny", env=env).out.strip().startswith("team: alice")
    assert heldout("team", "tiny").code == 1  # the outsider, from the profile, has no team
    unreachable = heldout("team", "tiny", env={**env, "HELDOUT_URL": "http://127.0.0.1:9"})
    assert unreachable.code == 1
    assert "Cannot reach http://127.0.0.1:9" in unreachable.err


def test_download_resumes_a_partial_file_and_replaces_a_corrupted_one(
    heldout, env, home, competition
):
    sample = competition.task.files.get()
    content = sample.file.open("rb").read()
    sample.sha256 = hashlib.sha256(content).hexdigest()
    sample.save(update_fields=["sha256"])
    data = home / "data"
    data.mkdir()
    (data / "sample_submission.csv.part").write_bytes(content[:40])

    resumed = heldout("download", "tiny", "sample_submission.csv", "-o", "data", env=env)
    assert resumed.code == 0, explain(resumed)
    assert "resumed data/sample_submission.csv" in resumed.out
    assert (data / "sample_submission.csv").read_bytes() == content
    assert not (data / "sample_submission.csv.part").exists()

    (data / "sample_submission.csv").write_bytes(b"id,label\ntampered\n")
    replaced = heldout("download", "tiny", "-o", "data", env=env)
    assert replaced.code == 0, explain(replaced)
    assert "downloaded data/sample_submission.csv" in replaced.out
    assert (data / "sample_submission.csv").read_bytes() == content

    unknown = heldout("download", "tiny", "nope.csv", "-o", "data", env=env)
    assert unknown.code == 1
    assert "No file named nope.csv in tiny" in unknown.err


def test_a_used_up_quota_answers_at_once_with_the_servers_message(
    heldout, env, home, organizer, participant
):
    competition = factories.make_competition(slug="once", organizers=[organizer], daily_limit=1)
    from competitions.services.teams import competition_join

    team = competition_join(competition=competition, user=participant, accept_rules=True).team
    factories.submission_row(team, status="scored").save()
    predictions = home / "p.csv"
    predictions.write_bytes(factories.perfect_predictions())

    refused = heldout("submit", "once", str(predictions), env=env)
    # Refused before a byte is sent: no upload was even created.
    assert refused.code == 1, explain(refused)
    assert "no submissions left in phase Main; today's allowance resets at" in refused.err
    assert "(429 quota_exceeded)" in refused.err
    assert not Upload.objects.exists()
    quota = heldout("quota", "once", env=env)
    assert "remaining: 0" in quota.out


def test_an_upload_the_server_refuses_to_submit_is_deleted(
    heldout, env, home, competition, tmp_path
):
    Phase.objects.filter(competition=competition).update(
        end_at=timezone.now() - timedelta(hours=1), late_submissions_scored=False
    )
    predictions = home / "p.csv"
    predictions.write_bytes(factories.perfect_predictions())

    refused = heldout("submit", "tiny", str(predictions), env=env)

    assert refused.code == 1, explain(refused)
    assert "403" in refused.err
    assert not Upload.objects.exists()
    assert not Submission.objects.exists()
    access = (tmp_path / "gunicorn.log").read_text()  # the site fixture's log
    assert re.search(r'"POST /api/v1/uploads/ HTTP/1.1" 201', access), access
    assert re.search(r'"DELETE /api/v1/uploads/[0-9a-f-]+/ HTTP/1.1" 204', access), access


def test_join_shows_the_rules_and_joins_only_once_they_are_accepted(
    heldout, site, competition, outsider
):
    env = {"HELDOUT_URL": site, "HELDOUT_TOKEN": token_of(outsider)}
    declined = heldout("join", "tiny", env=env, input="n\n")
    assert declined.code == 1, explain(declined)
    assert "Be nice." in declined.out
    assert not competition.teams.filter(members=outsider).exists()

    accepted = heldout("join", "tiny", env=env, input="y\n")
    assert accepted.code == 0, explain(accepted)
    assert "Joined tiny as team charlie" in accepted.out
    assert competition.teams.filter(members=outsider).exists()
