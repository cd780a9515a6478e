"""A real Celery worker process, a real broker and the test database: nothing eager."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from competitions.models import Submission
from tests import factories

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


@pytest.fixture
def worker(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": _database_url(),
        "HELDOUT_DATA_DIR": str(settings.DATA_DIR),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config.celery_app", "worker",
             "-Q", "cpu", "--pool", "solo", "--without-heartbeat", "--without-mingle",
             "--without-gossip", "-l", "INFO"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    yield proc, log
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def _wait_for_status(submission_id: int, wanted: set[str], proc, log: Path, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = Submission.objects.values_list("status", flat=True).get(pk=submission_id)
        if status in wanted:
            return status
        if proc.poll() is not None:
            pytest.fail(f"the worker exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    pytest.fail(f"submission still {status} after {timeout}s; worker log:\n{log.read_text()[-3000:]}")


def test_a_submission_posted_to_the_api_is_scored_by_the_worker_and_ranked(
    worker, organizer, participant, api
):
    proc, log = worker
    competition = factories.make_competition(organizers=[organizer])
    api(participant).post(f"/api/v1/competitions/{competition.slug}/join/", {"accept_rules": True})
    response = api(participant).post(
        f"/api/v1/competitions/{competition.slug}/submissions/",
        {"file": factories.upload(factories.perfect_predictions()), "method_name": "oracle"},
        format="multipart",
    )
    assert response.status_code == 202, response.content
    submission_id = response.json()["id"]

    assert _wait_for_status(submission_id, {"scored", "failed"}, proc, log) == "scored"
    detail = api(participant).get(f"/api/v1/submissions/{submission_id}/").json()
    assert detail["scores"] == {"public": {"roc_auc": 1.0, "accuracy": 1.0}}
    board = api(None).get(f"/api/v1/competitions/{competition.slug}/leaderboard/").json()
    assert [(r["rank"], r["team"], r["score"]) for r in board["results"]] == [(1, "alice", 1.0)]


def test_a_bad_file_fails_with_its_problems_listed(worker, organizer, participant, api):
    proc, log = worker
    competition = factories.make_competition(organizers=[organizer])
    api(participant).post(f"/api/v1/competitions/{competition.slug}/join/", {"accept_rules": True})
    bad = b"id,label\nid0,0.1\nid0,0.2\nid1,banana\n"
    response = api(participant).post(
        f"/api/v1/competitions/{competition.slug}/submissions/",
        {"file": factories.upload(bad)},
        format="multipart",
    )
    submission_id = response.json()["id"]
    assert _wait_for_status(submission_id, {"scored", "failed"}, proc, log) == "failed"
    detail = api(participant).get(f"/api/v1/submissions/{submission_id}/").json()
    assert detail["failure"] == "invalid"
    codes = {p["code"] for p in detail["problems"]}
    assert {"duplicate_id", "not_numeric", "missing_id"} <= codes
    assert detail["scores"] == {}
