"""The shake-up decision (scoring.shakeup): ranks, plausible ranges and "beyond sampling",
as pure functions on hand-made boards (no database)."""

from __future__ import annotations

from scoring.shakeup import (
    BoardRow,
    Move,
    Placing,
    beyond_sampling,
    change_label,
    placings,
    shakeup,
)


def test_equal_scores_share_a_rank_and_the_next_rank_skips():
    rows = [BoardRow(1, 0.9), BoardRow(2, 0.8), BoardRow(3, 0.9), BoardRow(4, 0.7)]
    ranks = {team: p.rank for team, p in placings(rows, higher_is_better=True).items()}
    assert ranks == {1: 1, 3: 1, 2: 3, 4: 4}


def test_plausible_ranks_follow_the_intervals_on_a_lower_is_better_metric():
    # RMSE: the sort key is the negated score; the intervals are in the metric's units.
    rows = [
        BoardRow(1, -0.10, 0.08, 0.12),
        BoardRow(2, -0.11, 0.09, 0.13),
        BoardRow(3, -0.50, 0.45, 0.55),
    ]
    found = placings(rows, higher_is_better=False)
    assert found[1] == Placing(rank=1, best=1, worst=2)
    assert found[2] == Placing(rank=2, best=1, worst=2)
    assert found[3] == Placing(rank=3, best=3, worst=3)


def test_a_team_without_an_interval_has_a_rank_but_no_plausible_range():
    rows = [BoardRow(1, 0.9, 0.85, 0.95), BoardRow(2, 0.5)]
    found = placings(rows, higher_is_better=True)
    assert found[2] == Placing(rank=2, best=None, worst=None)
    assert found[1] == Placing(rank=1, best=1, worst=1)


def test_a_change_within_overlapping_plausible_ranges_is_explained_by_sampling():
    assert beyond_sampling(Placing(1, 1, 3), Placing(3, 2, 4)) is False
    assert beyond_sampling(Placing(5, 5, 5), Placing(5, 5, 5)) is False


def test_a_change_between_disjoint_plausible_ranges_is_beyond_sampling():
    assert beyond_sampling(Placing(1, 1, 1), Placing(4, 3, 5)) is True  # fell
    assert beyond_sampling(Placing(6, 5, 7), Placing(2, 1, 4)) is True  # rose


def test_ranges_that_touch_at_one_rank_still_overlap():
    assert beyond_sampling(Placing(1, 1, 2), Placing(3, 2, 3)) is False


def test_beyond_sampling_is_unknown_without_both_ranges_or_both_boards():
    assert beyond_sampling(Placing(1), Placing(4, 3, 5)) is None
    assert beyond_sampling(Placing(1, 1, 1), Placing(4)) is None
    assert beyond_sampling(None, Placing(4, 3, 5)) is None


def test_the_shakeup_lists_every_team_in_private_rank_order_with_its_change():
    public = placings(
        [BoardRow(1, 1.0, 0.99, 1.0), BoardRow(2, 0.9, 0.86, 0.94), BoardRow(3, 0.6, 0.5, 0.7)],
        higher_is_better=True,
    )
    private = placings(
        [BoardRow(2, 0.9, 0.86, 0.94), BoardRow(1, 0.52, 0.45, 0.6), BoardRow(3, 0.55, 0.46, 0.64)],
        higher_is_better=True,
    )
    moves = shakeup(public, private)
    assert [(m.team_id, m.change, m.beyond_sampling) for m in moves] == [
        (2, 1, True),  # 2 -> 1: [2, 2] on public, [1, 1] on private
        (3, 1, False),  # 3 -> 2: [3, 3] and [2, 3] overlap
        (1, -2, True),  # 1 -> 3: [1, 1] and [2, 3] do not
    ]


def test_a_team_on_one_board_only_comes_last_with_no_change():
    public = {1: Placing(1), 2: Placing(2)}
    private = {1: Placing(1)}
    moves = shakeup(public, private)
    assert moves == [Move(1, Placing(1), Placing(1)), Move(2, Placing(2), None)]
    assert moves[1].change is None
    assert moves[1].beyond_sampling is None


def test_the_change_reads_as_an_arrow_and_a_number():
    assert [change_label(c) for c in (3, -2, 0, None)] == ["↑3", "↓2", "=", ""]


def test_an_empty_board_has_no_placings():
    assert placings([], higher_is_better=True) == {}
