"""The leaderboard's rows built in Python (competitions/views/board_rows.py), the bounds a
process keeps between reads (selectors.board_statistics_read) and the JSON rows' one-pass
serializer: what they give is what the template, a fresh read and DRF's own loop gave."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest
from django.template.defaultfilters import floatformat
from rest_framework import serializers

from competitions.api.competitions import LeaderboardRowOutput
from competitions.models import BoardStatistics, LeaderboardEntry
from competitions.selectors import (
    LeaderboardRow,
    ReferenceRow,
    board_statistics,
    board_statistics_read,
)
from competitions.services.intervals import board_ranks_refresh
from competitions.views.board_rows import fixed3, fixed5, rows_html
from tests import factories

TRICKY = [0.0, -0.0, 1.0, 3, -2, 0.123455, 0.1234549, 2.675, 1.000005, -0.000004, -0.000005]
TRICKY += [0.5, 1e-9, -1e-9, 123456.789012345, 0.999995, 99999.999995]


@pytest.mark.parametrize("value", TRICKY)
def test_fixed5_formats_a_number_as_floatformat_5_does(value):
    assert fixed5(value) == floatformat(value, 5)


def test_fixed5_agrees_with_floatformat_5_on_many_random_scores():
    rng = random.Random(5)
    values = [rng.random() * rng.choice([1, 100, 1e-3]) * rng.choice([1, -1]) for _ in range(5000)]
    values += [round(rng.random(), rng.randrange(1, 8)) for _ in range(5000)]
    assert [fixed5(v) for v in values] == [floatformat(v, 5) for v in values]


@pytest.mark.parametrize("value", [None, float("nan"), float("inf"), float("-inf"), 1e20])
def test_fixed5_leaves_what_is_not_an_ordinary_number_to_floatformat(value):
    assert fixed5(value) == ("" if value is None else floatformat(value, 5))


def test_fixed3_agrees_with_floatformat_3_on_normalized_scores():
    rng = random.Random(3)
    values = [rng.uniform(-2, 1) for _ in range(3000)] + [None, 0.0, -0.0, 1.0, 0.0005, -0.0005]
    values += [round(rng.random(), rng.randrange(1, 6)) for _ in range(3000)]
    assert [fixed3(v) for v in values] == ["" if v is None else floatformat(v, 3) for v in values]


def _row(**fields) -> LeaderboardRow:
    when = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    defaults: dict[str, Any] = {
        "rank": 2,
        "team_id": 7,
        "team": "ann",
        "submission_id": 41,
        "score": 0.8,
        "scores": {},
        "secondary": [],
        "submitted_at": when,
        "entries": 3,
        "last_submission_at": when,
    }
    return LeaderboardRow(**(defaults | fields))


def _html(rows, **options) -> str:
    given = {
        "slug": "s",
        "split": "public",
        "my_team_id": None,
        "show_since_public": False,
        "compare_url": "/c/s/leaderboard/compare/",
    }
    return str(rows_html(rows, **(given | options)))


def test_a_row_escapes_the_name_a_team_gave_itself():
    html = _html([_row(team='<script>alert("x")</script>&')])

    assert "<script>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in html


def test_a_row_shows_its_rank_tie_interval_plausible_ranks_and_links():
    row = _row(ci_low=0.7, ci_high=0.9, rank_best=1, rank_worst=3, tied_with_leader=True)
    row.tied = True  # type: ignore[attr-defined]

    html = _html([row], my_team_id=7)

    assert '<tr class="mine">' in html
    assert '<span class="tie" title="Tied: shares rank 2">=</span>2</td>' in html
    assert '<a href="/c/s/entries/41/">ann</a><span class="you">your team</span>' in html
    assert '<td class="num interval">0.70000 \u2013 0.90000</td>' in html
    assert '1\u20133 <span class="badge leader-tie"' in html
    assert 'href="/c/s/leaderboard/compare/?split=public&amp;a=41"' in html
    assert "<td>2026-03-04 05:06</td>" in html


def test_a_row_shows_its_normalized_score_between_the_interval_and_the_plausible_ranks():
    html = _html([_row(ci_low=0.7, ci_high=0.9, normalized_score=0.6)])
    unknown = _html([_row(normalized_score=None)])

    assert (
        '<td class="num interval">0.70000 \u2013 0.90000</td>\n'
        '  <td class="num normalized">0.600</td>\n'
        '  <td class="num plausible-rank">'
    ) in html
    assert '<td class="num normalized"></td>' in unknown


def test_without_a_compare_url_a_row_links_no_comparison():
    html = _html([_row(rank_best=1, rank_worst=2)], compare_url=None)

    assert "compare" not in html
    assert '<td class="num plausible-rank">1\u20132</td>' in html


def _reference(**fields) -> ReferenceRow:
    defaults: dict[str, Any] = {
        "kind": "constant",
        "label": "Constant predictor (<prior>)",
        "score": 0.5,
        "scores": {},
        "secondary": [0.25],
        "ci_low": 0.45,
        "ci_high": 0.55,
        "normalized_score": 0.0,
        "reason": "",
    }
    return ReferenceRow(**(defaults | fields))


@pytest.mark.parametrize("since_public", [False, True])
def test_a_reference_row_is_unranked_not_a_team_and_has_the_team_rows_cells(since_public):
    team = _row(secondary=[0.3], public_rank=1, rank_change=0)
    html = _html([team, _reference()], show_since_public=since_public)
    team_row, reference_row = html.split("</tr>")[:2]
    since = '<td class="num since-public"></td>' if since_public else ""

    assert reference_row == (
        '\n\n<tr class="reference">\n'
        '  <td class="num"><span class="visually-hidden">Not ranked</span></td>\n'
        '  <td><span class="badge reference" title="Made by the platform: never ranked, not a '
        'team">Reference</span> Constant predictor (&lt;prior&gt;)</td>\n'
        '  <td class="num">0.50000</td>\n'
        '  <td class="num interval">0.45000 \u2013 0.55000</td>\n'
        '  <td class="num normalized">0.000</td>\n'
        '  <td class="num plausible-rank"><span class="muted">not ranked</span></td>\n'
        f"  {since}\n"
        '  <td class="num">0.25000</td>\n'
        '  <td class="num"></td>\n'
        "  <td></td>\n"
    )
    assert team_row.count("<td") == reference_row.count("<td")
    assert "entries" not in reference_row  # no entry of its own to link to


def test_a_reference_row_without_an_interval_nor_a_normalized_score_leaves_them_empty():
    html = _html([_reference(ci_low=None, ci_high=None, normalized_score=None)])

    assert '<td class="num interval"></td>' in html
    assert '<td class="num normalized"></td>' in html


def test_a_row_without_an_interval_says_it_is_pending_and_shows_no_ranks():
    html = _html([_row(secondary=[None, 0.25])])

    assert ">pending</span></td>" in html
    assert '<td class="num plausible-rank"> <a class="compare"' in html
    assert '<td class="num"></td><td class="num">0.25000</td>' in html
    assert "<tr>" in html
    assert "since-public" not in html


@pytest.mark.parametrize(
    ("outcome", "label"),
    [
        ("reproduced", "Reproduced"),
        ("within_tolerance", "Reproduced within tolerance"),
        ("diverged", "Diverged"),
    ],
)
def test_a_replicated_row_carries_its_badge(outcome, label):
    html = _html([_row(replication=outcome)])

    assert f'<span class="badge replication {outcome}" title="Replicated:' in html
    assert f">{label}</span></td>" in html


def test_the_private_board_after_finalize_shows_the_change_since_public():
    html = _html([_row(public_rank=5, rank_change=3, beyond_sampling=True)], show_since_public=True)

    assert '<td class="num since-public"><span title="Public rank 5">\u21913</span>' in html
    assert '<span class="badge beyond-sampling"' in html


# --- The bounds a process keeps ---------------------------------------------------------


def _bounds_read(competition) -> bytes:
    stats = board_statistics_read(competition=competition, split="public")
    assert stats is not None
    return stats["bounds"]


@pytest.mark.django_db
def test_the_bounds_are_kept_while_the_board_version_stays_and_read_again_when_it_moves(
    competition, participant
):
    team = participant.teams.get(competition=competition)
    metric = competition.task.primary_metric
    submission = factories.scored_submission(
        team, {"public": {metric: 0.6}}, created_at=datetime.now(UTC)
    )
    LeaderboardEntry.objects.filter(team=team).update(
        ci_low=0.5, ci_high=0.7, interval_submission_id=submission.pk
    )
    board_ranks_refresh(competition=competition, split="public")
    stored = bytes(BoardStatistics.objects.get(competition=competition, split="public").bounds)
    assert _bounds_read(competition) == stored

    # Kept: a planted copy is what the next read gives while the version stays.
    key = (competition.pk, "public")
    pk, version, _bounds = board_statistics._BOUNDS[key]
    board_statistics._BOUNDS[key] = (pk, version, b"planted")
    assert _bounds_read(competition) == b"planted"

    # The board moves: the next read has the new bounds, whatever was kept.
    LeaderboardEntry.objects.filter(team=team).update(ci_low=0.4, ci_high=0.8)
    board_ranks_refresh(competition=competition, split="public")
    moved = bytes(BoardStatistics.objects.get(competition=competition, split="public").bounds)
    assert moved != stored
    assert _bounds_read(competition) == moved


# --- The JSON rows ----------------------------------------------------------------------


@pytest.mark.parametrize("nulls", [False, True])
def test_a_json_row_is_what_the_serializers_own_loop_gives(nulls):
    when = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
    row = {
        "rank": 3,
        "team": "ann <x>",
        "team_id": 7,
        "submission_id": 41,
        "score": 0.5,
        "scores": {"roc_auc": 0.5, "accuracy": None},
        "submitted_at": when,
        "entries": 2,
        "last_submission_at": when,
        "replication": None if nulls else "reproduced",
        "entry_url": "http://testserver/c/s/entries/41/",
        "ci_low": None if nulls else 0.4,
        "ci_high": None if nulls else 0.6,
        "rank_best": None if nulls else 1,
        "rank_worst": None if nulls else 4,
        "tied_with_leader": not nulls,
        "public_rank": None if nulls else 2,
        "rank_change": None if nulls else -1,
        "beyond_sampling": None if nulls else False,
    }
    serializer = LeaderboardRowOutput()

    fast = serializer.to_representation(row)

    assert fast == serializers.Serializer.to_representation(serializer, row)
    assert list(fast) == list(serializer.fields)
    assert fast["submitted_at"] == "2026-03-04T05:06:07.123456Z"
