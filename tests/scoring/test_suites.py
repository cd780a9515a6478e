"""A suite's methods x tasks board (scoring.suites): ranks, normalized scores, imputed
cells, aggregates and the pivot by component tag."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from scoring.metrics import METRICS
from scoring.rank_tests import friedman
from scoring.suites import (
    BEST_POSSIBLE,
    Cell,
    Components,
    SuiteTask,
    methods_with,
    pivot,
    suite_board,
    suite_statistics,
)
from tests.scoring.demsar import DEMSAR_RANKED

AUC = SuiteTask(key="churn", metric="roc_auc", constant=0.5)
RMSE = SuiteTask(key="prices", metric="rmse", constant=10.0)
ACC = SuiteTask(key="digits", metric="accuracy", constant=0.1)


def cells(table: Mapping[str, Mapping[str, float | Cell]]) -> dict[tuple[str, str], Cell]:
    out = {}
    for method, row in table.items():
        for task, value in row.items():
            out[method, task] = value if isinstance(value, Cell) else Cell(score=value)
    return out


def row_of(board, method):
    return next(r for r in board.rows if r.method == method)


def test_it_ranks_each_task_in_its_metrics_direction():
    board = suite_board(
        ["a", "b", "c"],
        [AUC, RMSE],
        cells(
            {"a": {"churn": 0.9, "prices": 5.0}, "b": {"churn": 0.8, "prices": 2.0}}
            | {"c": {"churn": 0.7, "prices": 3.0}}
        ),
    )

    assert [c.rank for c in row_of(board, "a").cells] == [1.0, 3.0]  # best AUC, worst RMSE
    assert [c.rank for c in row_of(board, "b").cells] == [2.0, 1.0]
    assert [c.rank for c in row_of(board, "c").cells] == [3.0, 2.0]


def test_it_averages_the_ranks_of_tied_methods():
    board = suite_board(
        ["a", "b", "c", "d"],
        [AUC],
        cells({"a": {"churn": 0.8}, "b": {"churn": 0.9}, "c": {"churn": 0.8}, "d": {"churn": 0.8}}),
    )

    assert {r.method: r.cells[0].rank for r in board.rows} == {"b": 1, "a": 3, "c": 3, "d": 3}


def test_its_rows_are_sorted_by_mean_rank_then_normalized_score():
    board = suite_board(
        ["a", "b", "c"],
        [AUC, RMSE],
        cells(
            {"a": {"churn": 0.9, "prices": 5.0}, "b": {"churn": 0.8, "prices": 2.0}}
            | {"c": {"churn": 0.7, "prices": 3.0}}
        ),
    )

    assert [(r.method, r.mean_rank) for r in board.rows] == [("b", 1.5), ("a", 2.0), ("c", 2.5)]


def test_its_normalized_score_is_zero_for_the_constant_predictor_and_one_for_the_best():
    board = suite_board(
        ["perfect", "constant", "good", "bad"],
        [AUC, RMSE],
        cells(
            {
                "perfect": {"churn": 1.0, "prices": 0.0},
                "constant": {"churn": 0.5, "prices": 10.0},
                "good": {"churn": 0.75, "prices": 2.0},
                "bad": {"churn": 0.4, "prices": 15.0},
            }
        ),
    )

    normalized = {r.method: [c.normalized for c in r.cells] for r in board.rows}
    assert normalized["perfect"] == [1.0, 1.0]
    assert normalized["constant"] == [0.0, 0.0]
    assert normalized["good"] == pytest.approx([0.5, 0.8])  # lower RMSE is better
    assert normalized["bad"] == pytest.approx([-0.2, -0.5])  # worse than constant: negative
    assert row_of(board, "good").mean_normalized == pytest.approx(0.65)


def test_a_task_can_name_the_score_counted_as_best():
    task = SuiteTask(key="prices", metric="rmse", constant=10.0, best=5.0)

    board = suite_board(["a"], [task], cells({"a": {"prices": 5.0}}))

    assert board.rows[0].cells[0].normalized == 1.0


def test_its_normalized_interval_runs_low_to_high_for_a_lower_is_better_metric():
    board = suite_board(["a"], [RMSE], {("a", "prices"): Cell(score=2.0, low=1.0, high=4.0)})

    cell = board.rows[0].cells[0]
    assert (cell.low, cell.high) == (1.0, 4.0)
    assert (cell.normalized_low, cell.normalized_high) == pytest.approx((0.6, 0.9))


def test_it_counts_a_failed_cell_as_the_constant_predictor_and_marks_it():
    board = suite_board(
        ["a", "b"],
        [AUC, ACC],
        {
            ("a", "churn"): Cell(failed=True, low=0.1, high=0.2),
            ("a", "digits"): Cell(score=0.9),
            ("b", "churn"): Cell(score=0.6),
            ("b", "digits"): Cell(score=0.8),
        },
    )

    failed = row_of(board, "a").cells[0]
    assert (failed.score, failed.status, failed.imputed, failed.normalized) == (
        0.5,
        "failed",
        True,
        0.0,
    )
    assert (failed.low, failed.high) == (None, None)  # the failure has no interval
    assert failed.rank == 2.0
    assert row_of(board, "a").complete  # a failure is a result
    assert row_of(board, "a").imputed == 1


def test_it_imputes_a_missing_cell_marks_it_and_calls_the_row_incomplete():
    board = suite_board(
        ["a", "b"],
        [AUC, ACC],
        cells({"a": {"churn": 0.9}, "b": {"churn": 0.6, "digits": 0.8}})
        | {("a", "digits"): Cell(score=None)},
    )

    missing = row_of(board, "a").cells[1]
    assert (missing.score, missing.status, missing.rank) == (0.1, "missing", 2.0)
    assert not row_of(board, "a").complete
    assert row_of(board, "b").complete


def test_it_can_leave_incomplete_rows_out_before_ranking():
    board = suite_board(
        ["a", "b", "c"],
        [AUC, ACC],
        cells({"a": {"churn": 0.9}, "b": {"churn": 0.6, "digits": 0.8}})
        | cells({"c": {"churn": 0.7, "digits": 0.5}}),
        drop_incomplete=True,
    )

    assert board.methods == ("b", "c")
    assert [c.rank for c in row_of(board, "c").cells] == [1.0, 2.0]


def test_a_win_is_a_best_score_shared_or_not_but_never_an_imputed_one():
    board = suite_board(
        ["a", "b", "c"],
        [AUC, ACC, RMSE],
        {
            ("a", "churn"): Cell(score=0.9),
            ("b", "churn"): Cell(score=0.9),  # shared best: a win for both
            ("c", "churn"): Cell(score=0.6),
            ("a", "digits"): Cell(failed=True),  # every method at the constant: no winner
            ("b", "digits"): Cell(score=0.1),  # scored, tied with the imputed: its win
            ("c", "digits"): Cell(failed=True),
            ("c", "prices"): Cell(score=1.0),
            ("a", "prices"): Cell(score=3.0),
            ("b", "prices"): Cell(score=2.0),
        },
    )

    assert {r.method: r.wins for r in board.rows} == {"a": 1, "b": 2, "c": 1}
    assert [c.win for c in row_of(board, "a").cells] == [True, False, False]


def test_its_matrices_feed_the_rank_tests_in_the_rows_order():
    rng = np.random.default_rng(7)
    scores = rng.random((6, 4))  # tasks x methods
    tasks = [SuiteTask(key=f"t{j}", metric="accuracy", constant=0.0) for j in range(6)]
    methods = ["m0", "m1", "m2", "m3"]
    board = suite_board(
        methods,
        tasks,
        {
            (m, t.key): Cell(score=scores[j, i])
            for i, m in enumerate(methods)
            for j, t in enumerate(tasks)
        },
    )

    order = [methods.index(m) for m in board.methods]
    assert board.ranks.shape == (6, 4)
    assert board.normalized == pytest.approx(scores[:, order])
    result = friedman(board.ranks)
    assert result.chi2 == pytest.approx(scipy_stats.friedmanchisquare(*scores.T).statistic)
    assert list(result.mean_ranks) == [r.mean_rank for r in board.rows]


@settings(max_examples=50, deadline=None)
@given(
    st.integers(2, 6).flatmap(
        lambda k: st.lists(
            st.lists(st.integers(0, 4), min_size=k, max_size=k), min_size=1, max_size=5
        )
    ),
    st.booleans(),
)
def test_ranks_sum_per_task_and_flip_with_the_metrics_direction(table, lower_is_better):
    k = len(table[0])
    methods = [f"m{i}" for i in range(k)]
    metric = "mae" if lower_is_better else "r2"
    tasks = [SuiteTask(key=f"t{j}", metric=metric, constant=-1.0) for j in range(len(table))]
    given_cells = {
        (m, t.key): Cell(score=float(row[i]))
        for t, row in zip(tasks, table, strict=True)
        for i, m in enumerate(methods)
    }
    flipped = [
        SuiteTask(key=t.key, metric="r2" if lower_is_better else "mae", constant=-1.0)
        for t in tasks
    ]
    mirrored = {key: Cell(score=-c.score) for key, c in given_cells.items() if c.score is not None}

    board = suite_board(methods, tasks, given_cells)
    other = suite_board(methods, flipped, mirrored)

    assert board.ranks.sum(axis=1) == pytest.approx([k * (k + 1) / 2] * len(tasks))
    ranks = {r.method: [c.rank for c in r.cells] for r in board.rows}
    assert ranks == {r.method: [c.rank for c in r.cells] for r in other.rows}


def test_every_metric_has_a_best_possible_value():
    assert set(BEST_POSSIBLE) == set(METRICS)
    for name, best in BEST_POSSIBLE.items():
        worse = best - 0.1 if METRICS[name].higher_is_better else best + 0.1
        assert SuiteTask(key="t", metric=name, constant=worse).normalized(best) == 1.0


@pytest.mark.parametrize(
    ("task", "error"),
    [
        (lambda: SuiteTask(key="t", metric="roc_auc", constant=1.0), ValueError),
        (lambda: SuiteTask(key="t", metric="nope", constant=0.5), KeyError),
        (lambda: SuiteTask(key="t", metric="rmse", constant=float("nan")), ValueError),
    ],
)
def test_it_refuses_a_task_it_cannot_normalize(task, error):
    with pytest.raises(error):
        task()


def test_it_refuses_cells_of_unknown_methods_or_tasks_and_non_finite_scores():
    with pytest.raises(ValueError, match="unknown"):
        suite_board(["a"], [AUC], cells({"a": {"churn": 0.9}, "z": {"churn": 0.9}}))
    with pytest.raises(ValueError, match="unknown"):
        suite_board(["a"], [AUC], cells({"a": {"churn": 0.9, "other": 0.9}}))
    with pytest.raises(ValueError, match="finite"):
        suite_board(["a"], [AUC], cells({"a": {"churn": float("inf")}}))
    with pytest.raises(ValueError, match="unique"):
        suite_board(["a", "a"], [AUC], {})


COMPONENTS: Components = {
    "xgb": {"model": "gradient boosting", "features": ["scaling", "target encoding"]},
    "lgbm": {"model": "gradient boosting", "features": "scaling"},
    "rf": {"model": "random forest"},
    "new": {},
}


def pivot_board():
    return suite_board(
        ["xgb", "lgbm", "rf", "new"],
        [AUC, ACC],
        cells(
            {
                "xgb": {"churn": 0.95, "digits": 0.8},
                "lgbm": {"churn": 0.85, "digits": 0.9},
                "rf": {"churn": 0.8, "digits": 0.7},
                "new": {"churn": 0.6, "digits": 0.6},
            }
        ),
    )


def test_it_lists_the_methods_with_a_component():
    methods = ["xgb", "lgbm", "rf", "new"]

    assert methods_with(methods, COMPONENTS, "model", "gradient boosting") == ["xgb", "lgbm"]
    assert methods_with(methods, COMPONENTS, "features", "target encoding") == ["xgb"]
    assert methods_with(methods, COMPONENTS, "model", "svm") == []


def test_it_pivots_the_board_by_a_component_tag():
    groups = pivot(pivot_board(), COMPONENTS, "model")

    assert [(g.value, g.methods, g.mean_rank, g.wins, g.best) for g in groups] == [
        ("gradient boosting", ("xgb", "lgbm"), 1.5, 2, "xgb"),
        ("random forest", ("rf",), 3.0, 0, "rf"),
        (None, ("new",), 4.0, 0, "new"),
    ]
    assert groups[0].mean_normalized == pytest.approx(((0.9 + 7 / 9) + (0.7 + 8 / 9)) / 4)


def test_a_method_with_several_values_of_a_tag_is_in_each_of_their_groups():
    groups = {g.value: g.methods for g in pivot(pivot_board(), COMPONENTS, "features")}

    assert groups == {"scaling": ("xgb", "lgbm"), "target encoding": ("xgb",), None: ("rf", "new")}


def test_its_statistics_are_the_rank_tests_on_its_methods():
    # Demšar's Table 6 as a suite: four C4.5 variants, 14 AUC tasks.
    names = ["C4.5", "C4.5+m", "C4.5+cf", "C4.5+m+cf"]
    tasks = [SuiteTask(key=f"d{j}", metric="roc_auc", constant=0.5) for j in range(14)]
    board = suite_board(
        names,
        tasks,
        {
            (name, task.key): Cell(score=float(DEMSAR_RANKED[j, i]))
            for i, name in enumerate(names)
            for j, task in enumerate(tasks)
        },
    )

    result = suite_statistics(board, alpha=0.10)

    assert board.methods == ("C4.5+m+cf", "C4.5+m", "C4.5+cf", "C4.5")
    assert [round(r, 3) for r in result.friedman.mean_ranks] == [1.964, 2.0, 2.893, 3.143]
    assert round(result.cd, 2) == 1.12
    assert result.groups == (("C4.5+m+cf", "C4.5+m", "C4.5+cf"), ("C4.5+cf", "C4.5"))
    assert suite_statistics(board).groups == (tuple(board.methods),)
