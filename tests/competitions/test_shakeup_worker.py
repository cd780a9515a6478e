"""The shake-up report with a real Celery worker: finalize's message reaches the worker
through the outbox and the broker, and the worker writes the report the board then shows."""

import pytest

from competitions.models import ShakeupEntry
from tests import factories
from tests.conftest import api_submit
from tests.worker_process import until, wait_for_status, worker_process

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


def test_the_worker_writes_the_report_after_finalize_and_the_private_board_shows_it(
    tmp_path, api, competition, organizer, participant, other_participant
):
    slug = competition.slug
    log = tmp_path / "worker.log"
    with worker_process(log) as proc:
        alice = api_submit(api(participant), slug, factories.perfect_predictions())
        bob = api_submit(api(other_participant), slug, factories.predictions_csv(default=0.5))
        for pk in (alice, bob):
            assert wait_for_status(pk, {"scored", "failed"}, proc, log) == "scored"
        assert api(organizer).post(f"/api/v1/competitions/{slug}/finalize/").status_code == 200
        until(
            lambda: ShakeupEntry.objects.filter(competition=competition).count() == 2,
            "the worker's shake-up report",
            timeout=60,
            logs=[log],
        )
    board = api(None).get(f"/api/v1/competitions/{slug}/leaderboard/", {"split": "private"})
    rows = [(r["team"], r["public_rank"], r["rank_change"]) for r in board.json()["results"]]
    assert rows == [("alice", 1, 0), ("bob", 2, 0)]
