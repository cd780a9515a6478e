"""Leaderboards: the per-team refresh, the selector, the JSON/CSV API and the HTML page.

Scored submissions are made by inserting Submission and Score rows and refreshing the
team, as the scoring service does after a real run (tests/judging covers that path).
"""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from enum import Enum

import pytest
from django.utils import timezone

from competitions.models import LeaderboardEntry, Submission
from competitions.selectors import leaderboard_page
from judging.services import submission_score
from scoring.scorers import InProcessScorer
from tests import factories

pytestmark = pytest.mark.django_db


class Same(Enum):
    """The private score defaults to the public one."""

    SAME = "same"


SAME = Same.SAME
T0 = timezone.now() - timedelta(hours=6)


_team = factories.team_for


def _team_of(user, competition):
    return user.teams.get(competition=competition)


def _scored(
    team,
    public: float | None,
    private: float | Same | None = SAME,
    *,
    minutes: float = 0,
    accuracy: float | None = 0.5,
    **fields,
) -> Submission:
    """A scored submission made `minutes` after T0, with its scores, and the team refreshed."""
    values = {"public": public, "private": public if private is SAME else private}
    metric = team.competition.task.primary_metric
    return factories.scored_submission(
        team,
        {split: {metric: primary, "accuracy": accuracy} for split, primary in values.items()},
        created_at=T0 + timedelta(minutes=minutes),
        original_name="fake.csv",
        size=1,
        **fields,
    )


def _board(api, user, competition, **params) -> dict:
    response = api(user).get(f"/api/v1/competitions/{competition.slug}/leaderboard/", params)
    assert response.status_code == 200, response.content
    return response.json()


def _rows(board: dict) -> list[tuple]:
    return [(r["rank"], r["team"], r["score"]) for r in board["results"]]


# --- Ranking ----------------------------------------------------------------------------


def test_each_team_appears_once_with_its_best_score(
    api, competition, participant, other_participant
):
    alice = _team_of(participant, competition)
    bob = _team_of(other_participant, competition)
    _scored(alice, 0.7, minutes=1)
    best = _scored(alice, 0.9, 0.1, minutes=2, accuracy=0.8)
    _scored(alice, 0.8, minutes=3)
    _scored(bob, 0.85, minutes=4)

    board = _board(api, None, competition)

    assert board["split"] == "public"
    assert board["metric"] == "roc_auc"
    assert board["higher_is_better"] is True
    assert board["count"] == 2
    assert _rows(board) == [(1, "alice", 0.9), (2, "bob", 0.85)]
    top = board["results"][0]
    assert top["submission_id"] == best.pk
    assert top["entries"] == 3
    # The public board carries the public scores only, never the private ones.
    assert top["scores"] == {"roc_auc": 0.9, "accuracy": 0.8}


def test_a_lower_is_better_metric_sorts_ascending(api, organizer):
    competition = factories.make_competition(
        slug="ll", organizers=[organizer], primary_metric="log_loss"
    )
    ann, ben, cat = (_team(competition, n) for n in ("ann", "ben", "cat"))
    _scored(ann, 0.5, minutes=1)
    _scored(ann, 0.2, minutes=2)
    _scored(ben, 0.3, minutes=3)
    _scored(cat, 0.9, minutes=4)

    board = _board(api, None, competition)

    assert board["higher_is_better"] is False
    assert _rows(board) == [(1, "ann", 0.2), (2, "ben", 0.3), (3, "cat", 0.9)]


def test_equal_scores_share_a_rank_and_the_earlier_submission_is_listed_first(
    api, competition, participant, other_participant
):
    alice = _team_of(participant, competition)
    bob = _team_of(other_participant, competition)
    carol = _team(competition, "carol")
    dave = _team(competition, "dave")
    _scored(carol, 0.9, minutes=3)
    _scored(dave, 0.95, minutes=10)
    _scored(bob, 0.8, minutes=1)
    _scored(alice, 0.9, minutes=2)

    assert _rows(_board(api, None, competition)) == [
        (1, "dave", 0.95),
        (2, "alice", 0.9),
        (2, "carol", 0.9),
        (4, "bob", 0.8),
    ]


def test_a_teams_entry_is_its_earliest_submission_among_equal_best_scores(competition, participant):
    alice = _team_of(participant, competition)
    later = _scored(alice, 0.9, minutes=5)
    earlier = _scored(alice, 0.9, minutes=1)
    assert later.pk < earlier.pk  # so the id order cannot be what decides

    entry = LeaderboardEntry.objects.get(team=alice, split="public")

    assert entry.submission_id == earlier.pk
    assert entry.submitted_at == earlier.created_at


def test_ties_across_a_page_boundary_keep_their_shared_rank(api, competition):
    for i, name in enumerate(("ann", "ben", "cat")):
        _scored(_team(competition, name), 0.9, minutes=i)
    _scored(_team(competition, "dan"), 0.5, minutes=9)

    page2 = _board(api, None, competition, page=2, page_size=2)

    assert _rows(page2) == [(1, "cat", 0.9), (4, "dan", 0.5)]


@pytest.mark.parametrize(
    ("sort", "query"),
    [("rank", ""), ("team", ""), ("-team", ""), ("-entries", ""), ("last", ""), ("rank", "e")],
)
def test_a_later_page_shows_the_rows_the_whole_board_has_in_its_place(competition, sort, query):
    # Ties (0.9 three times, 0.5 twice) and names out of score order: each page past the
    # first is picked in a subquery (selectors.leaderboard._window), and must be the whole
    # board's slice.
    for i, (name, score) in enumerate(
        [("fen", 0.9), ("ada", 0.9), ("eve", 0.5), ("bea", 0.9), ("cal", 0.7), ("dee", 0.5)]
    ):
        _scored(_team(competition, name), score, minutes=i)

    def shown(offset: int, limit: int | None) -> list[tuple]:
        page = leaderboard_page(
            competition=competition,
            split="public",
            offset=offset,
            limit=limit,
            sort=sort,
            team_query=query,
        )
        return [(r.rank, r.team, r.score, r.tied) for r in page.rows]

    whole = shown(0, None)
    assert len(whole) == (6 if not query else 4)
    for offset in range(1, len(whole)):
        assert shown(offset, 2) == whole[offset : offset + 2]


def test_a_missing_or_nan_primary_score_never_ranks(api, competition, participant):
    # PostgreSQL stores NaN as NaN; SQLite stores it as NULL, the None case.
    alice = _team_of(participant, competition)
    _scored(alice, float("nan"), minutes=5)
    _scored(alice, 0.6, minutes=1)
    _scored(alice, None, minutes=6)
    _scored(_team(competition, "nanny"), float("nan"))
    _scored(_team(competition, "nobody"), None)

    for split in ("public", "private"):
        board = leaderboard_page(competition=competition, split=split)
        assert [(r.team, r.score) for r in board.rows] == [("alice", 0.6)]


def test_a_missing_secondary_score_leaves_its_cell_empty(api, competition, participant):
    _scored(_team_of(participant, competition), 0.8, accuracy=None)

    board = leaderboard_page(competition=competition, split="public")

    assert board.rows[0].secondary == [None]


# --- Taking rows off the board ----------------------------------------------------------


def test_a_disqualified_submission_drops_out_and_comes_back_when_undone(
    api, competition, organizer, participant, other_participant
):
    alice = _team_of(participant, competition)
    _scored(_team_of(other_participant, competition), 0.8)
    best = _scored(alice, 0.9, minutes=1)
    other = _scored(alice, 0.7, minutes=2)

    def disqualify(submission, flag: bool):
        response = api(organizer).post(
            f"/api/v1/submissions/{submission.pk}/disqualify/",
            {"disqualified": flag, "reason": "leak"},
        )
        assert response.status_code == 200, response.content

    disqualify(best, True)
    assert _rows(_board(api, None, competition)) == [(1, "bob", 0.8), (2, "alice", 0.7)]
    disqualify(other, True)
    assert _rows(_board(api, None, competition)) == [(1, "bob", 0.8)]
    assert not LeaderboardEntry.objects.filter(team=alice).exists()

    disqualify(best, False)
    assert _rows(_board(api, None, competition)) == [(1, "alice", 0.9), (2, "bob", 0.8)]


def test_a_banned_team_drops_out_of_both_boards_and_comes_back_when_unbanned(
    api, competition, organizer, participant, other_participant
):
    alice = _team_of(participant, competition)
    _scored(alice, 0.9)
    _scored(_team_of(other_participant, competition), 0.8)
    url = f"/api/v1/competitions/{competition.slug}/teams/{alice.pk}/ban/"

    assert api(organizer).post(url, {"banned": True, "reason": "two accounts"}).status_code == 200
    for split in ("public", "private"):
        rows = _rows(_board(api, organizer, competition, split=split))
        assert rows == [(1, "bob", 0.8)], split

    assert api(organizer).post(url, {"banned": False}).status_code == 200
    for split in ("public", "private"):
        rows = _rows(_board(api, organizer, competition, split=split))
        assert rows == [(1, "alice", 0.9), (2, "bob", 0.8)], split


def test_a_late_submission_never_ranks(api, competition, organizer, participant):
    alice = _team_of(participant, competition)
    _scored(alice, 0.6, minutes=1)
    _scored(alice, 0.99, minutes=2, is_late=True)
    _scored(_team(competition, "tardy"), 1.0, is_late=True)

    for split in ("public", "private"):
        assert _rows(_board(api, organizer, competition, split=split)) == [(1, "alice", 0.6)]


def test_a_cancelled_or_unscored_submission_never_ranks(competition, participant):
    alice = _team_of(participant, competition)
    _scored(alice, 0.6, minutes=1)
    _scored(alice, 0.9, minutes=2, status=Submission.Status.FAILED)
    _scored(alice, 0.95, minutes=3, status=Submission.Status.RUNNING)

    assert LeaderboardEntry.objects.get(team=alice, split="public").score == 0.6


# --- The private board ------------------------------------------------------------------


def test_the_private_board_is_hidden_until_finalized_except_from_organizers(
    api, client, competition, organizer, participant, outsider
):
    _scored(_team_of(participant, competition), 0.9, 0.4)

    assert _rows(_board(api, organizer, competition, split="private")) == [(1, "alice", 0.4)]
    for user in (None, participant, outsider):
        response = api(user).get(
            f"/api/v1/competitions/{competition.slug}/leaderboard/", {"split": "private"}
        )
        assert response.status_code == 403
        assert response.json()["code"] == "not_finalized"
    # The page falls back to the public board rather than leak the private one.
    client.force_login(participant)
    page = client.get(f"/c/{competition.slug}/leaderboard/?split=private").content.decode()
    assert "public leaderboard" in page
    assert "0.40000" not in page
    assert "0.90000" in page

    assert (
        api(participant).post(f"/api/v1/competitions/{competition.slug}/finalize/").status_code
        == 403
    )
    response = api(organizer).post(f"/api/v1/competitions/{competition.slug}/finalize/")
    assert response.status_code == 200
    assert response.json()["finalized_at"]

    for user in (None, participant, outsider):
        assert _rows(_board(api, user, competition, split="private")) == [(1, "alice", 0.4)]
    page = client.get(f"/c/{competition.slug}/leaderboard/?split=private").content.decode()
    assert "private leaderboard" in page
    assert "0.40000" in page


def _finalize(api, organizer, competition) -> None:
    response = api(organizer).post(f"/api/v1/competitions/{competition.slug}/finalize/")
    assert response.status_code == 200


@pytest.fixture
def public_best_is_not_private_best(competition, participant, other_participant):
    """Alice's two best public submissions are not her best private one (selection_limit 2)."""
    assert competition.selection_limit == 2
    alice = _team_of(participant, competition)
    subs = {
        "public_best": _scored(alice, 0.90, 0.50, minutes=1),
        "public_second": _scored(alice, 0.80, 0.60, minutes=2),
        "private_best": _scored(alice, 0.70, 0.95, minutes=3),
    }
    _scored(_team_of(other_participant, competition), 0.85, 0.70, minutes=4)
    return subs


def test_without_a_selection_the_private_board_uses_the_best_public_submissions(
    api, competition, organizer, participant, public_best_is_not_private_best
):
    subs = public_best_is_not_private_best
    _finalize(api, organizer, competition)

    private = _board(api, participant, competition, split="private")
    public = _board(api, participant, competition, split="public")

    assert _rows(private) == [(1, "bob", 0.70), (2, "alice", 0.60)]
    assert private["results"][1]["submission_id"] == subs["public_second"].pk
    assert _rows(public) == [(1, "alice", 0.90), (2, "bob", 0.85)]
    assert public["results"][0]["submission_id"] == subs["public_best"].pk


def test_selected_submissions_decide_the_private_board(
    api, competition, organizer, participant, public_best_is_not_private_best
):
    subs = public_best_is_not_private_best

    def select(key: str, selected: bool = True):
        response = api(participant).post(
            f"/api/v1/submissions/{subs[key].pk}/select/", {"selected": selected}
        )
        assert response.status_code == 200, response.content
        assert response.json()["is_selected"] is selected

    # Teams choose before the reveal; the organizer can watch the private board meanwhile.
    select("private_best")
    private = _board(api, organizer, competition, split="private")
    assert _rows(private) == [(1, "alice", 0.95), (2, "bob", 0.70)]
    assert private["results"][0]["submission_id"] == subs["private_best"].pk
    # Selecting changes nothing on the public board.
    assert _rows(_board(api, participant, competition)) == [(1, "alice", 0.90), (2, "bob", 0.85)]

    # Only the chosen submissions count, even when a better one was not chosen.
    select("private_best", False)
    select("public_best")
    _finalize(api, organizer, competition)
    assert _rows(_board(api, participant, competition, split="private")) == [
        (1, "bob", 0.70),
        (2, "alice", 0.50),
    ]


def test_a_team_cannot_select_more_than_the_selection_limit(
    api, competition, participant, public_best_is_not_private_best
):
    subs = public_best_is_not_private_best
    for key in ("public_best", "public_second"):
        url = f"/api/v1/submissions/{subs[key].pk}/select/"
        assert api(participant).post(url, {"selected": True}).status_code == 200

    response = api(participant).post(
        f"/api/v1/submissions/{subs['private_best'].pk}/select/", {"selected": True}
    )

    assert response.status_code == 409
    assert response.json()["code"] == "invalid_state"
    assert Submission.objects.filter(is_selected=True).count() == 2


# --- Formats ----------------------------------------------------------------------------


def test_the_csv_has_a_header_and_one_row_per_team(
    api, competition, participant, other_participant
):
    alice_best = _scored(_team_of(participant, competition), 0.9, minutes=1, accuracy=0.75)
    _scored(_team_of(participant, competition), 0.3, minutes=2)
    bob_best = _scored(_team_of(other_participant, competition), 0.8, minutes=3, accuracy=0.6)

    response = api(None).get(
        f"/api/v1/competitions/{competition.slug}/leaderboard/", {"format": "csv"}
    )

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == [
        "rank",
        "team",
        "roc_auc",
        "accuracy",
        "submission_id",
        "submitted_at",
        "entries",
        "ci_low",
        "ci_high",
        "rank_best",
        "rank_worst",
        "tied_with_leader",
        "normalized_score",
        "reference",
    ]
    # No interval yet: a worker computes them (tests/competitions/test_intervals.py); no
    # normalized score nor reference row before the worker made the references
    # (tests/competitions/test_references.py).
    assert [r[:5] + r[6:] for r in rows[1:]] == [
        ["1", "alice", "0.9", "0.75", str(alice_best.pk), "2", "", "", "", "", "False", "", ""],
        ["2", "bob", "0.8", "0.6", str(bob_best.pk), "1", "", "", "", "", "False", "", ""],
    ]
    assert rows[1][5] == alice_best.created_at.isoformat()


def test_the_json_board_is_paginated(api, competition):
    for i in range(5):
        _scored(_team(competition, f"t{i}"), 0.9 - i / 10, minutes=i)

    page2 = _board(api, None, competition, page=2, page_size=2)
    page3 = _board(api, None, competition, page=3, page_size=2)

    assert (page2["page"], page2["page_size"], page2["count"]) == (2, 2, 5)
    assert [(r["rank"], r["team"]) for r in page2["results"]] == [(3, "t2"), (4, "t3")]
    assert [(r["rank"], r["team"]) for r in page3["results"]] == [(5, "t4")]


def test_the_page_highlights_the_viewers_team(client, competition, participant, other_participant):
    _scored(_team_of(participant, competition), 0.9)
    _scored(_team_of(other_participant, competition), 0.8)

    client.force_login(other_participant)
    page = client.get(f"/c/{competition.slug}/leaderboard/").content.decode()

    mine = re.findall(r'<tr class="mine">(.*?)</tr>', page, flags=re.S)
    assert len(mine) == 1
    assert "bob" in mine[0]
    assert "alice" not in mine[0]
    assert page.count("<tr") == 3  # the header row and two teams

    client.logout()
    assert 'class="mine"' not in client.get(f"/c/{competition.slug}/leaderboard/").content.decode()


# --- Query count ------------------------------------------------------------------------


def _fill_board(competition, teams: int, per_team: int) -> None:
    for t in range(teams):
        team = _team(competition, f"team{t}")
        for s in range(per_team):
            _scored(team, (t * 7 + s * 3) % 11 / 10, (t + s) % 5 / 10, minutes=t * per_team + s)


@pytest.mark.parametrize(("teams", "per_team"), [(3, 1), (30, 5)])
@pytest.mark.parametrize("split", ["public", "private"])
def test_the_leaderboard_endpoint_runs_the_same_queries_whatever_its_size(
    api, competition, organizer, django_assert_num_queries, teams, per_team, split
):
    _fill_board(competition, teams, per_team)
    client = api(organizer)
    url = f"/api/v1/competitions/{competition.slug}/leaderboard/"

    # API token, competition (with its task and board version), organizer check (private
    # only), rows, counts, the board's statistics (intervals' bounds); a kept answer skips
    # the last three (tests/competitions/test_board_cache.py)
    with django_assert_num_queries(6 if split == "private" else 5):
        response = client.get(url, {"split": split})
    assert response.status_code == 200
    assert len(response.json()["results"]) == teams
    with django_assert_num_queries(6 if split == "private" else 5):
        response = client.get(url, {"split": split, "format": "csv"})
    assert response.content.decode().count("\n") == teams + 1


@pytest.mark.parametrize(("teams", "per_team"), [(3, 1), (30, 5)])
def test_the_leaderboard_page_runs_the_same_queries_whatever_its_size(
    client, competition, participant, django_assert_num_queries, teams, per_team
):
    _fill_board(competition, teams, per_team)
    client.force_login(participant)

    # with the board's statistics (intervals' bounds) and the header bell's unread count
    with django_assert_num_queries(9):
        response = client.get(f"/c/{competition.slug}/leaderboard/")
    assert response.status_code == 200
    assert response.content.decode().count("<tr") == teams + 1


def test_selections_are_frozen_once_the_private_board_is_revealed(
    api, competition, organizer, participant, public_best_is_not_private_best
):
    # After finalizing, every private score is visible; choosing then would pick the winner.
    subs = public_best_is_not_private_best
    _finalize(api, organizer, competition)
    before = _rows(_board(api, participant, competition, split="private"))

    for key, selected in (("private_best", True), ("public_best", False)):
        response = api(participant).post(
            f"/api/v1/submissions/{subs[key].pk}/select/", {"selected": selected}
        )
        assert response.status_code == 409, key
        assert response.json()["code"] == "finalized"

    assert not Submission.objects.filter(is_selected=True).exists()
    assert _rows(_board(api, participant, competition, split="private")) == before


def test_files_scored_for_real_rank_by_their_metric(
    api, competition, participant, other_participant
):
    url = f"/api/v1/competitions/{competition.slug}/submissions/"
    for user, content in (
        (other_participant, factories.predictions_csv(default=0.5)),
        (participant, factories.perfect_predictions()),
    ):
        response = api(user).post(url, {"file": factories.upload(content)}, format="multipart")
        assert response.status_code == 202
        assert submission_score(submission_id=response.json()["id"], scorer=InProcessScorer())

    board = _board(api, None, competition)

    assert _rows(board) == [(1, "alice", 1.0), (2, "bob", 0.5)]
    assert board["results"][1]["scores"] == {"roc_auc": 0.5, "accuracy": 0.5}
