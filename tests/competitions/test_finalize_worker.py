"""The freeze with a real Celery worker: a submission accepted before finalize is still
scored (nothing accepted is lost), but its score does not move the final board until an
organizer reopens the competition."""

import pytest

from competitions.models import ShakeupEntry
from competitions.services.shakeup import shakeup_compute
from tests import factories
from tests.conftest import api_submit
from tests.worker_process import wait_for_status, worker_process

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


def _boards(api, slug: str) -> list[bytes]:
    url = f"/api/v1/competitions/{slug}/leaderboard/"
    return [
        api(None).get(url, {"split": split, **fmt}).content
        for split in ("public", "private")
        for fmt in ({}, {"format": "csv"})
    ]


def test_a_submission_queued_before_finalize_and_scored_after_it_leaves_the_final_board_alone(
    tmp_path, api, competition, organizer, participant, other_participant
):
    slug = competition.slug
    log = tmp_path / "worker.log"
    with worker_process(log) as proc:
        alice = api_submit(api(participant), slug, factories.perfect_predictions())
        bob = api_submit(api(other_participant), slug, factories.predictions_csv(default=0.5))
        for pk in (alice, bob):
            assert wait_for_status(pk, {"scored", "failed"}, proc, log) == "scored"
    # Accepted while no worker runs, so it is still queued when the competition is finalized.
    late_best = api_submit(api(other_participant), slug, factories.perfect_predictions())
    finalized = api(organizer).post(f"/api/v1/competitions/{slug}/finalize/")
    assert finalized.status_code == 200
    # The shake-up report, as the worker computes it from finalize's message: the board is
    # final with it, and the worker's duplicate below writes the same rows.
    assert shakeup_compute(competition_id=competition.pk) == 2
    final = _boards(api, slug)
    private = api(None).get(f"/api/v1/competitions/{slug}/leaderboard/", {"split": "private"})
    assert [(r["rank"], r["team"]) for r in private.json()["results"]] == [(1, "alice"), (2, "bob")]

    with worker_process(tmp_path / "worker2.log") as proc:
        status = wait_for_status(late_best, {"scored", "failed"}, proc, tmp_path / "worker2.log")
    assert status == "scored"
    detail = api(other_participant).get(f"/api/v1/submissions/{late_best}/").json()

    assert detail["status"] == "scored"
    assert detail["scores"]["private"]["roc_auc"] == 1.0
    assert _boards(api, slug) == final
    assert ShakeupEntry.objects.filter(competition=competition).count() == 2
    # Reopened, the score recorded during the freeze counts: Bob ties Alice.
    reopened = api(organizer).post(f"/api/v1/competitions/{slug}/reopen/", {"reason": "recount"})
    assert reopened.status_code == 200
    private = api(None).get(f"/api/v1/competitions/{slug}/leaderboard/", {"split": "private"})
    assert private.status_code == 403  # no longer final: the private board is hidden again
    board = api(organizer).get(f"/api/v1/competitions/{slug}/leaderboard/", {"split": "private"})
    assert [(r["rank"], r["team"]) for r in board.json()["results"]] == [(1, "alice"), (1, "bob")]
