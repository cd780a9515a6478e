"""Reference rows (services/references.py, judging/references.py): made once per task version
by the worker's service, scored by the real in-process scorer, shown on the board, and never
a team."""

from __future__ import annotations

import csv
import io
import math
import os
import socket
import subprocess
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from competitions.admin import organizers_group_sync
from competitions.management.commands.demo_setup import demo_bundle_build
from competitions.models import (
    BoardStatistics,
    BoardVersion,
    Competition,
    OutboxMessage,
    ReferenceResult,
    Team,
)
from competitions.selectors import LeaderboardPage, ReferenceRow, leaderboard_page
from competitions.services.bundles import bundle_import
from competitions.services.intervals import leaderboard_intervals_refresh
from competitions.services.references import (
    REFERENCES_TASK,
    ReferenceOutcome,
    reference_record,
)
from competitions.services.versions import task_version_activate, task_version_create
from judging.cleanup import work_dirs_cleanup
from judging.references import references_compute
from scoring.scorers import InProcessScorer
from scoring.statistics import RankBounds
from tests import factories
from tests.competitions.test_intervals import board, submit

pytestmark = pytest.mark.django_db


def _compute(competition) -> int:
    return references_compute(competition_id=competition.pk, scorer=InProcessScorer())


@pytest.fixture
def demo(tmp_path, organizer):
    """The demo's bundle (a training file and test inputs), imported."""
    return bundle_import(source=demo_bundle_build(tmp_path / "bundle"), organizer=organizer)


def test_publishing_a_competition_asks_a_worker_for_its_references_once(demo):
    messages = OutboxMessage.objects.filter(task=REFERENCES_TASK)

    assert list(messages.values_list("args", flat=True)) == [[demo.pk]]
    assert messages.get().queue == demo.task.queue


def test_the_worker_scores_the_constant_and_the_model_once_per_version(demo):
    assert _compute(demo) == 2
    assert _compute(demo) == 0  # a redelivered task finds them recorded

    constant = ReferenceResult.objects.get(competition=demo, kind="constant")
    model = ReferenceResult.objects.get(competition=demo, kind="model")
    assert (constant.task_version, constant.status) == (1, "scored")
    assert constant.reason == "learnt from the training file"
    # A constant probability ranks nothing: its ROC AUC is one half on both splits.
    assert constant.scores["public"]["roc_auc"] == 0.5
    assert constant.scores["private"]["roc_auc"] == 0.5
    assert model.label == "Simple model (logistic regression)"
    assert model.scores["private"]["roc_auc"] > 0.95
    low, high = model.intervals["private"]
    assert low < model.scores["private"]["roc_auc"] <= high
    assert constant.row_values
    assert model.influence


def test_the_board_shows_the_references_unranked_with_their_intervals(demo):
    _compute(demo)

    page = leaderboard_page(competition=demo, split="public")

    assert page.count == 0
    assert page.rows == []
    assert [r.kind for r in page.references] == ["model", "constant"]
    model, constant = page.references
    assert model.ci_low is not None
    assert model.ci_high is not None
    assert model.ci_low <= model.score <= model.ci_high
    assert constant.normalized_score == 0.0
    assert model.normalized_score == pytest.approx((model.score - 0.5) / 0.5)
    assert [r.position for r in page.references] == [0, 0]


def test_a_reference_is_never_a_team_nor_a_competitor_for_ranks(demo):
    _compute(demo)
    team = factories.team_for(demo, "ann")
    factories.scored_submission(
        team,
        {"public": {"roc_auc": 0.75}, "private": {"roc_auc": 0.7}},
        created_at=timezone.now(),
    )

    page = leaderboard_page(competition=demo, split="public")

    assert Team.objects.filter(competition=demo).count() == 1
    assert page.count == 1
    assert [(r.rank, r.team) for r in page.rows] == [(1, "ann")]
    # The model is above the team, the constant below: the team is still #1.
    assert [r.position for r in page.references] == [0, 1]
    lines = page.with_references(page.rows, 0)
    assert [getattr(line, "kind", "team") for line in lines] == ["model", "team", "constant"]
    assert page.rows[0].normalized_score == pytest.approx(0.5)


def test_the_plausible_ranks_and_the_tie_with_the_leader_leave_references_out():
    competition, labels = board(slug="ranks")
    submit(competition, factories.team_for(competition, "ann"), labels, 0.3, 1)
    _compute(competition)
    leaderboard_intervals_refresh(competition_id=competition.pk)

    page = leaderboard_page(competition=competition, split="public")

    stats = BoardStatistics.objects.get(competition=competition, split="public")
    bounds = RankBounds.from_bytes(bytes(stats.bounds), higher_is_better=True)
    assert len(bounds.lower) == 1  # the team's interval only, not the reference's
    assert page.references[0].ci_low is not None
    row = page.rows[0]
    assert (row.rank, row.rank_best, row.rank_worst, row.tied_with_leader) == (1, 1, 1, True)


def test_a_new_ranked_version_gets_its_own_references_and_switching_back_shows_the_old(demo):
    _compute(demo)
    task = demo.task
    flipped = _flipped_truth(task)
    version = task_version_create(task=task, ground_truth=ContentFile(flipped, name="v2.csv"))

    task_version_activate(task=task, number=version.number)

    # Until the worker ran, the new version has no reference rows on the board.
    assert leaderboard_page(competition=demo, split="public").references == []
    assert OutboxMessage.objects.filter(task=REFERENCES_TASK).count() == 2
    assert _compute(demo) == 2
    page = leaderboard_page(competition=demo, split="public")
    assert {r.kind for r in page.references} == {"constant", "model"}
    model_v2 = next(r for r in page.references if r.kind == "model")
    # Every label flipped: the model trained on the (unflipped) training file is now wrong.
    assert model_v2.score < 0.1
    assert ReferenceResult.objects.filter(competition=demo).count() == 4

    task.refresh_from_db()
    task_version_activate(task=task, number=1)

    model_v1 = next(
        r
        for r in leaderboard_page(competition=demo, split="public").references
        if r.kind == "model"
    )
    assert model_v1.score > 0.9


def _flipped_truth(task) -> bytes:
    with task.ground_truth.open("rb") as handle:
        text = handle.read().decode()
    swap = {"benign": "malignant", "malignant": "benign"}
    lines = text.splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        cells = line.split(",")
        cells[1] = swap[cells[1]]
        out.append(",".join(cells))
    return ("\n".join(out) + "\n").encode()


def test_publishing_references_counts_the_board_version_up(demo):
    before = BoardVersion.objects.filter(competition_id=demo.pk).values_list("version", flat=True)
    start = before.first() or 0

    _compute(demo)

    assert (before.first() or 0) > start


def test_without_a_training_file_the_model_is_not_made_and_the_board_says_why():
    competition = factories.make_competition(slug="notrain")

    assert _compute(competition) == 2

    page = leaderboard_page(competition=competition, split="public")
    assert [r.label for r in page.references] == ["Constant predictor (class prior)"]
    assert [m.reason for m in page.references_missing] == ["the task has no public training file"]


def test_the_normalized_score_of_a_lower_is_better_metric():
    competition = factories.make_competition(
        slug="loss", primary_metric="log_loss", secondary_metrics=()
    )
    _compute(competition)  # the ground truth's prior: 5 positives in 10 rows, so p = 0.5
    team = factories.team_for(competition, "ann")
    factories.scored_submission(
        team, {"public": {"log_loss": 0.3}, "private": {"log_loss": 0.9}}, created_at=timezone.now()
    )

    page = leaderboard_page(competition=competition, split="public")

    constant = page.references[0]
    assert constant.score == pytest.approx(math.log(2))
    # (0.3 - ln 2) / (0 - ln 2): lower loss, higher normalized score.
    assert page.rows[0].normalized_score == pytest.approx(1 - 0.3 / math.log(2))
    private = leaderboard_page(competition=competition, split="private")
    # Worse than the constant: below 0.
    normalized = private.rows[0].normalized_score
    assert normalized is not None
    assert normalized == pytest.approx(1 - 0.9 / math.log(2))
    assert normalized < 0
    # Below the constant on the private board: the reference is listed above the team.
    assert private.references[0].position == 0


def test_the_api_lists_the_references_and_each_rows_normalized_score(api):
    competition, labels = board(slug="api-refs")
    submit(competition, factories.team_for(competition, "ann"), labels, 0.3, 1)
    _compute(competition)

    body = api(None).get(f"/api/v1/competitions/{competition.slug}/leaderboard/").json()

    assert [r["kind"] for r in body["references"]] == ["constant"]
    reference = body["references"][0]
    assert reference["name"] == "Constant predictor (class prior)"
    assert reference["score"] == 0.5
    assert reference["normalized_score"] == 0.0
    assert reference["ci_low"] == reference["ci_high"] == 0.5
    assert reference["position"] == 1
    row = body["results"][0]
    assert row["normalized_score"] == pytest.approx((row["score"] - 0.5) / 0.5)
    assert body["references_missing"] == [
        {
            "name": "Simple model (logistic regression)",
            "reason": "the task has no public training file",
        }
    ]


def test_the_csv_has_the_reference_rows_unranked_and_the_normalized_column(api):
    competition, labels = board(slug="csv-refs")
    submit(competition, factories.team_for(competition, "ann"), labels, 0.3, 1)
    _compute(competition)

    response = api(None).get(f"/api/v1/competitions/{competition.slug}/leaderboard/?format=csv")

    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["rank"], r["team"], r["reference"]) for r in rows] == [
        ("1", "ann", ""),
        ("", "Constant predictor (class prior)", "constant"),
    ]
    assert float(rows[1]["normalized_score"]) == 0.0
    assert rows[1]["submission_id"] == ""
    assert rows[1]["rank_best"] == ""
    assert float(rows[0]["normalized_score"]) > 0


def test_the_reference_rows_show_in_the_boards_own_order_not_on_a_sorted_or_searched_page(
    client,
):
    competition, labels = board(slug="order-refs")
    submit(competition, factories.team_for(competition, "ann"), labels, 0.3, 1)
    submit(competition, factories.team_for(competition, "bob"), labels, 0.5, 2)
    _compute(competition)
    url = reverse("leaderboard", args=[competition.slug])

    shown = {
        query: client.get(url + query).content.decode()
        for query in ("", "?sort=team", "?q=ann", "?sort=-entries&q=o")
    }

    reference = '<tr class="reference">'
    assert shown[""].count(reference) == 1
    assert shown[""].index(">bob</a>") < shown[""].index(">ann</a>") < shown[""].index(reference)
    for query in ("?sort=team", "?q=ann", "?sort=-entries&q=o"):
        assert reference not in shown[query]
        assert '<td class="num" id="team-' in shown[query]
    # Their places are counted whatever the order: the API's, and the note above the board.
    page = leaderboard_page(competition=competition, split="public", sort="team", team_query="b")
    assert [r.position for r in page.references] == [2]
    assert "Rows marked" in shown["?sort=team"]


def test_a_reference_folder_is_removed_once_its_process_is_gone(tmp_path, settings):
    settings.HELDOUT_WORK_DIR = tmp_path
    here = socket.gethostname()
    dead = subprocess.Popen(["true"])
    dead.wait()
    live = tmp_path / f"reference-7-1-abc123-{os.getpid()}@{here}"
    gone = tmp_path / f"reference-7-1-def456-{dead.pid}@{here}"
    for folder in (live, gone):
        folder.mkdir()

    assert work_dirs_cleanup() == 1

    assert [p.name for p in tmp_path.iterdir()] == [live.name]


def test_a_failed_reference_tells_the_board_little_and_its_organizers_why(
    organizer, other_organizer, outsider
):
    competition = factories.make_competition(slug="fails", organizers=[organizer])
    detail = "Its predictions did not validate: line 3 names the test id secret-42"
    outcome = ReferenceOutcome(kind="model", label="Simple model", status="failed", reason=detail)
    reference_record(competition=competition, task_version=1, outcome=outcome)
    for user in (organizer, other_organizer):
        user.groups.add(organizers_group_sync())
    url = reverse("admin:competitions_referenceresult_changelist")

    page = leaderboard_page(competition=competition, split="public")
    # The board: that it failed, not the scorer's words (they may name test ids).
    assert [(m.label, m.reason) for m in page.references_missing] == [
        ("Simple model", "it could not be scored")
    ]
    assert detail in _admin(organizer).get(url).content.decode()
    assert detail not in _admin(other_organizer).get(url).content.decode()
    assert _admin(outsider).get(url).status_code == 302  # not staff: to the log-in page


def _admin(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("position", "pages"),
    [
        (0, [["ref", 0, 1], [2, 3], [4]]),
        (2, [[0, 1], ["ref", 2, 3], [4]]),  # after the two teams at least as good
        (4, [[0, 1], [2, 3], ["ref", 4]]),
        (5, [[0, 1], [2, 3], [4, "ref"]]),  # below every team: on the last page
    ],
)
def test_each_reference_row_shows_on_exactly_one_page_at_its_place(position, pages):
    reference = ReferenceRow(
        kind="constant", label="Constant", score=0.5, scores={}, secondary=[],
        ci_low=None, ci_high=None, normalized_score=0.0, reason="", position=position,
    )  # fmt: skip
    board = LeaderboardPage(
        split="public", metric="roc_auc", metric_label="ROC AUC", higher_is_better=True,
        secondary_metrics=[], count=5, rows=[], references=[reference],
    )  # fmt: skip
    teams: list[Any] = list(range(5))  # stand-ins for the board's rows, in order

    shown = [
        [line if isinstance(line, int) else "ref" for line in board.with_references(page, offset)]
        for offset, page in ((0, teams[:2]), (2, teams[2:4]), (4, teams[4:]))
    ]

    assert shown == pages


def test_a_reference_recorded_for_a_version_no_longer_ranked_leaves_the_board_alone():
    competition = factories.make_competition(slug="stale")
    task = competition.task
    stale = Competition.objects.select_related("task").get(pk=competition.pk)  # version 1
    task_version_activate(task=task, number=task_version_create(task=task).number)
    assert _compute(competition) == 2  # version 2's, published
    outcome = ReferenceOutcome(
        kind="constant", label="Old constant", status="scored", scores={"public": {"roc_auc": 0.1}}
    )

    # A worker that started on version 1 finishes after the switch.
    reference_record(competition=stale, task_version=1, outcome=outcome)

    page = leaderboard_page(competition=competition, split="public")
    assert [r.label for r in page.references] == ["Constant predictor (class prior)"]
