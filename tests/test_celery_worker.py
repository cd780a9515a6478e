"""A real Celery worker process, a real broker and the test database: nothing eager. On
SQLite with the file-system broker too (`sqlite_too`): what `make demo` runs."""

import time

import pytest

from competitions.management.commands.demo_setup import demo_bundle_build
from competitions.models import ReferenceResult
from competitions.services.bundles import bundle_import
from tests import factories
from tests.worker_process import wait_for_status as _wait_for_status
from tests.worker_process import worker_process

pytestmark = [
    pytest.mark.celery_worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.sqlite_too,
]


@pytest.fixture
def worker(tmp_path):
    log = tmp_path / "worker.log"
    with worker_process(log) as proc:
        yield proc, log


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


def test_publishing_a_competition_has_the_worker_score_its_reference_rows(
    worker, organizer, api, tmp_path
):
    proc, log = worker
    bundle = demo_bundle_build(tmp_path / "bundle")  # a training file and test inputs

    competition = bundle_import(source=bundle, organizer=organizer)

    results = ReferenceResult.objects.filter(competition=competition)
    deadline = time.monotonic() + 120
    while results.count() < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
    assert sorted(results.values_list("kind", "status")) == [
        ("constant", "scored"),
        ("model", "scored"),
    ], log.read_text()[-3000:]
    board = api(None).get(f"/api/v1/competitions/{competition.slug}/leaderboard/").json()
    assert board["results"] == []
    assert [r["kind"] for r in board["references"]] == ["model", "constant"]
    assert all(r["ci_low"] is not None for r in board["references"])
