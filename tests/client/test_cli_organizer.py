"""Organizer commands of `heldout` against a live site and a real worker: scorer upload with
its dry run, rescore as a job, bundle export, finalize; and the same commands refused to a
participant and to another competition's organizer."""

from __future__ import annotations

import re
import zipfile

import pytest

from competitions.models import Competition
from tests import factories
from tests.client.conftest import explain, token_of

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

# A scoring program that gives everyone 0.25 (docs/scorers.md: /output/scores.json).
CONSTANT_SCORER = b"""import json
scores = {"roc_auc": 0.25, "accuracy": 0.25}
with open("/output/scores.json", "w") as f:
    json.dump({"public": scores, "private": scores}, f)
"""


def test_an_organizer_replaces_the_scorer_rescores_exports_and_finalizes(
    live, heldout, home, competition, organizer, participant, other_organizer
):
    as_participant = {"HELDOUT_URL": live.url, "HELDOUT_TOKEN": token_of(participant)}
    as_organizer = {"HELDOUT_URL": live.url, "HELDOUT_TOKEN": token_of(organizer)}
    as_other = {"HELDOUT_URL": live.url, "HELDOUT_TOKEN": token_of(other_organizer)}
    predictions = home / "p.csv"
    predictions.write_bytes(factories.perfect_predictions())
    submitted = heldout("submit", "tiny", str(predictions), "--wait", env=as_participant)
    assert submitted.code == 0, explain(submitted) + live.worker_log.read_text()[-3000:]
    submission_id = re.search(r"Submitted (\d+) ", submitted.out).group(1)  # type: ignore[union-attr]

    for outsider in (as_participant, as_other):
        for command in (["rescore", "tiny"], ["finalize", "tiny", "-y"]):
            refused = heldout(*command, env=outsider)
            assert refused.code == 1, explain(refused)
            assert re.search(r"\((403|404) ", refused.err), refused.err
        export = heldout("bundle", "export", "tiny", "-o", "stolen.zip", env=outsider)
        assert export.code == 1, explain(export)
        assert not (home / "stolen.zip").exists()
    private = heldout("leaderboard", "tiny", "--private", env=as_participant)
    assert (private.code, "(403 not_finalized)" in private.err) == (1, True), explain(private)

    score_py = home / "score.py"
    score_py.write_bytes(CONSTANT_SCORER)
    uploaded = heldout("scorer", "upload", "tiny", str(score_py), "--wait", env=as_organizer)
    assert uploaded.code == 0, explain(uploaded) + live.worker_log.read_text()[-3000:]
    assert re.search(r"job \d+ \(dry_run\): done", uploaded.out), uploaded.out

    rescored = heldout("rescore", "tiny", "--wait", env=as_organizer)
    assert rescored.code == 0, explain(rescored) + live.worker_log.read_text()[-3000:]
    assert re.search(r"job \d+ \(rescore_all\): done", rescored.out), rescored.out
    status = heldout("status", submission_id, "--wait", "--timeout", "120", env=as_participant)
    assert status.code == 0, explain(status)
    assert "public roc_auc: 0.25" in status.out

    exported = heldout("bundle", "export", "tiny", "-o", "tiny.zip", env=as_organizer)
    assert exported.code == 0, explain(exported)
    with zipfile.ZipFile(home / "tiny.zip") as bundle:
        assert "competition.yaml" in bundle.namelist()

    finalized = heldout("finalize", "tiny", "-y", env=as_organizer)
    assert finalized.code == 0, explain(finalized)
    assert Competition.objects.get(slug="tiny").finalized_at is not None
    private = heldout("leaderboard", "tiny", "--private", env=as_participant)
    assert private.code == 0, explain(private)
    assert re.search(r"^\s*1\s+alice\s+0\.25\s", private.out, re.M), private.out
