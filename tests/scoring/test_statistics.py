"""The leaderboard's statistics (scoring.statistics, scoring.influence) against known values."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats as scipy_stats

from scoring.influence import auc_placements, row_influence
from scoring.metrics import compute_metric
from scoring.spec import TaskSpec
from scoring.statistics import (
    BootstrapPlan,
    bootstrap_interval,
    delong_test,
    mcnemar_exact,
    paired_difference,
    permutation_test,
    rank_intervals,
    tied_with_leader,
    transformed,
)

BINARY = TaskSpec(
    id_column="id", target_columns=("y",), task_type="binary", primary_metric="accuracy"
)
MULTI = TaskSpec(
    id_column="id",
    target_columns=("y",),
    task_type="multiclass",
    primary_metric="accuracy",
    classes=("a", "b", "c"),
)
PROBS = TaskSpec(
    id_column="id",
    target_columns=("a", "b", "c"),
    task_type="probabilities",
    primary_metric="roc_auc",
)
REGRESSION = TaskSpec(
    id_column="id", target_columns=("y",), task_type="regression", primary_metric="rmse"
)
TWO_OUTPUTS = TaskSpec(
    id_column="id", target_columns=("y", "z"), task_type="regression", primary_metric="rmse"
)


def _binary(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = (rng.random(n) < 0.4).astype(float)
    return y, np.clip(0.35 * y + 0.65 * rng.random(n), 0, 1)


def _cases(rng: np.random.Generator):
    n = 300
    y, p = _binary(rng, n)
    for name in ("accuracy", "balanced_accuracy", "f1", "f1_macro", "log_loss", "roc_auc"):
        yield name, BINARY, y, p
    yield "average_precision", BINARY, y, p
    labels = np.array(["a", "b", "c"])
    truth = labels[rng.integers(0, 3, n)]
    guess = np.where(rng.random(n) < 0.6, truth, labels[rng.integers(0, 3, n)])
    for name in ("accuracy", "balanced_accuracy", "f1_macro"):
        yield name, MULTI, truth.astype(object), guess.astype(object)
    onehot = np.eye(3)[rng.integers(0, 3, n)]
    probs = 0.5 * onehot + rng.random((n, 3))
    probs /= probs.sum(axis=1, keepdims=True)
    for name in ("log_loss", "roc_auc", "accuracy"):
        yield name, PROBS, onehot, probs
    t = rng.normal(size=n)
    for name in ("rmse", "mse", "mae", "r2"):
        yield name, REGRESSION, t, t + 0.5 * rng.normal(size=n)
    t2 = rng.normal(size=(n, 2))
    for name in ("rmse", "r2", "mae"):
        yield name, TWO_OUTPUTS, t2, t2 + rng.normal(size=(n, 2)) * [0.3, 0.8]


@pytest.mark.parametrize("case", range(20))
def test_the_mean_of_the_pseudo_values_is_the_metric_and_follows_it_row_by_row(case):
    rng = np.random.default_rng(7)
    name, spec, y, p = list(_cases(rng))[case]
    theta = compute_metric(name, y_true=y, y_pred=p, spec=spec)
    found = row_influence(name, y, p, spec)
    assert found is not None
    assert theta is not None
    mean = float(transformed(np.array([found.values.mean(dtype=np.float64)]), found.transform)[0])
    assert mean == pytest.approx(theta, rel=1e-5)
    # Leaving a row out moves the metric by -(phi_i - theta) / (n - 1), to first order.
    n = len(y)
    for i in (0, 5, 17):
        left_out = compute_metric(
            name, y_true=np.delete(y, i, 0), y_pred=np.delete(p, i, 0), spec=spec
        )
        values = found.values.astype(np.float64)
        if found.transform == "sqrt":
            predicted = np.sqrt(values.mean() - (values[i] - values.mean()) / (n - 1))
        else:
            predicted = theta - (values[i] - theta) / (n - 1)
        assert left_out == pytest.approx(predicted, abs=2e-4 * max(1.0, abs(theta)))


def test_a_metric_undefined_on_the_rows_has_no_pseudo_values():
    y = np.ones(10)
    assert row_influence("roc_auc", y, np.linspace(0, 1, 10), BINARY) is None
    assert row_influence("r2", np.ones(5), np.arange(5.0), REGRESSION) is None


def test_the_auc_of_hanley_and_mcneils_ct_ratings_is_their_published_0_893():
    """Hanley & McNeil (1982), "The meaning and use of the area under a receiver operating
    characteristic (ROC) curve", Radiology 143:29-36, Table 1: CT ratings (1 = definitely
    normal .. 5 = definitely abnormal) of 58 normal and 51 abnormal patients; the published
    area is 0.893 with standard error 0.032 (their approximation of the same variance that
    DeLong et al. estimate without assumptions)."""
    normal, abnormal = [33, 6, 6, 11, 2], [3, 2, 2, 11, 33]
    ratings = np.arange(1.0, 6.0)
    scores = np.concatenate([np.repeat(ratings, normal), np.repeat(ratings, abnormal)])
    positive = np.arange(len(scores)) >= sum(normal)
    found = auc_placements(positive, scores)
    assert found is not None
    theta, placements = found
    assert round(theta, 3) == 0.893
    se = np.sqrt(
        placements[positive].var(ddof=1) / positive.sum()
        + placements[~positive].var(ddof=1) / (~positive).sum()
    )
    assert se == pytest.approx(0.032, abs=0.002)


def _placements_by_counting(positive: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Each row's placement counted with binary searches over the sorted scores of each
    class (how scoring.influence computed them before it grouped ties after one sort)."""
    pos, neg = np.sort(scores[positive]), np.sort(scores[~positive])
    below = np.searchsorted(neg, scores, "left")
    tied = np.searchsorted(neg, scores, "right") - below
    above = len(pos) - np.searchsorted(pos, scores, "right")
    tied_pos = np.searchsorted(pos, scores, "right") - np.searchsorted(pos, scores, "left")
    return np.where(positive, (below + 0.5 * tied) / len(neg), (above + 0.5 * tied_pos) / len(pos))


@pytest.mark.parametrize("decimals", [0, 1, 2, 6])
def test_auc_placements_are_bit_for_bit_the_counted_ones_whatever_the_ties(decimals):
    # Stored pseudo-values must not change with the way they are computed.
    rng = np.random.default_rng(decimals)
    scores = np.round(rng.random(5000), decimals)
    scores[rng.random(5000) < 0.05] = np.nan  # NaNs tie with each other, as sorted
    scores[:3] = -0.0
    positive = rng.random(5000) < 0.3

    found = auc_placements(positive, scores)

    assert found is not None
    expected = _placements_by_counting(positive, scores)
    assert found[1].tobytes() == expected.tobytes()
    assert found[0] == float(expected[positive].mean())


def _delong_by_definition(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """DeLong, DeLong & Clarke-Pearson (1988), Biometrics 44:837-845, section 2, written
    out with explicit loops: V10 and V01 structural components, S10 and S01 their
    covariance matrices, var(A - B) = L (S10/m + S01/n) L' with L = (1, -1)."""
    xs, ys = np.flatnonzero(y == 1), np.flatnonzero(y == 0)

    def psi(x: float, v: float) -> float:
        return 1.0 if x > v else 0.5 if x == v else 0.0

    v10 = np.array([[np.mean([psi(s[i], s[j]) for j in ys]) for i in xs] for s in (a, b)])
    v01 = np.array([[np.mean([psi(s[i], s[j]) for i in xs]) for j in ys] for s in (a, b)])
    s10, s01 = np.cov(v10), np.cov(v01)
    cov = s10 / len(xs) + s01 / len(ys)
    theta = v10.mean(axis=1)
    return float((theta[0] - theta[1]) / np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]))


def test_delong_from_pseudo_values_matches_the_papers_formulas_and_its_p_value():
    rng = np.random.default_rng(3)
    y = (rng.random(120) < 0.45).astype(float)
    a = np.round(0.8 * y + rng.normal(size=120), 1)  # rounded: ties count half
    b = np.round(0.4 * y + rng.normal(size=120), 1)
    phi_a = row_influence("roc_auc", y, a, BINARY)
    phi_b = row_influence("roc_auc", y, b, BINARY)
    assert phi_a is not None
    assert phi_b is not None
    assert phi_a.strata is not None
    result = delong_test(phi_a.values, phi_b.values, phi_a.strata)
    z = _delong_by_definition(y, a, b)
    assert result.statistic == pytest.approx(z, rel=1e-4)
    assert result.p_value == pytest.approx(2 * scipy_stats.norm.sf(abs(z)), rel=1e-4)


def test_mcnemar_is_scipys_exact_binomial_test_on_the_discordant_rows():
    rng = np.random.default_rng(5)
    for n, p_a, p_b in [(40, 0.7, 0.6), (500, 0.8, 0.78), (3, 1.0, 0.0), (10, 0.5, 0.5)]:
        a, b = rng.random(n) < p_a, rng.random(n) < p_b
        only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
        expected = scipy_stats.binomtest(only_a, only_a + only_b).pvalue if only_a + only_b else 1.0
        assert mcnemar_exact(a, b).p_value == pytest.approx(expected, rel=1e-9)


def test_the_permutation_test_agrees_with_scipys_exact_enumeration():
    rng = np.random.default_rng(11)
    a, b = rng.normal(0.5, 1, 12), rng.normal(0, 1, 12)
    exact = scipy_stats.permutation_test(
        (a, b),
        lambda x, y: np.mean(x) - np.mean(y),
        permutation_type="samples",
        n_resamples=np.inf,
    ).pvalue
    assert permutation_test(a, b, permutations=20_000).p_value == pytest.approx(exact, abs=0.01)


def test_a_95_percent_interval_covers_the_true_accuracy_in_93_to_97_percent_of_1000_simulations():
    rng = np.random.default_rng(2024)
    sims, n, truth = 1_000, 400, 0.8
    plan = BootstrapPlan(rows=n, seed=99)
    rows = (rng.random((n, sims)) < truth).astype(np.float32)
    low, high = np.percentile(plan.means(rows), [2.5, 97.5], axis=0)
    coverage = float(np.mean((low <= truth) & (truth <= high)))
    assert 0.93 <= coverage <= 0.97, f"coverage of the true accuracy: {coverage:.3f}"


def test_a_95_percent_interval_covers_the_true_auc_in_93_to_97_percent_of_1000_simulations():
    """Scores N(0,1) for negatives and N(1,1) for positives: true AUC = Phi(1/sqrt 2)."""
    rng = np.random.default_rng(7)
    sims, n = 1_000, 300
    truth = float(scipy_stats.norm.cdf(1 / np.sqrt(2)))
    plan = BootstrapPlan(rows=n, seed=5)
    phis = np.empty((n, sims), dtype=np.float32)
    for s in range(sims):
        y = (rng.random(n) < 0.5).astype(float)
        found = row_influence("roc_auc", y, rng.normal(size=n) + y, BINARY)
        assert found is not None
        phis[:, s] = found.values
    low, high = np.percentile(plan.means(phis), [2.5, 97.5], axis=0)
    coverage = float(np.mean((low <= truth) & (truth <= high)))
    assert 0.93 <= coverage <= 0.97, f"coverage of the true ROC AUC: {coverage:.3f}"


def test_the_grouped_bootstrap_of_a_large_split_has_the_row_bootstraps_spread():
    rng = np.random.default_rng(1)
    values = (rng.random(200_000) < 0.3).astype(np.float32)
    low, high = bootstrap_interval(values, BootstrapPlan(rows=len(values), seed=1))
    half_width = 1.96 * np.sqrt(0.3 * 0.7 / len(values))
    assert high - low == pytest.approx(2 * half_width, rel=0.1)
    assert low < values.mean() < high


def test_the_same_seed_gives_the_same_resamples_and_intervals():
    values = np.random.default_rng(0).random(500).astype(np.float32)
    one = bootstrap_interval(values, BootstrapPlan(rows=500, seed=42))
    assert one == bootstrap_interval(values, BootstrapPlan(rows=500, seed=42))
    assert one != bootstrap_interval(values, BootstrapPlan(rows=500, seed=43))


def test_an_interval_never_leaves_the_metrics_attainable_values():
    from scoring.influence import row_influence
    from scoring.metrics import RANGE
    from scoring.spec import TaskSpec

    # Six rows, ROC AUC 8/9: DeLong's pseudo-values of so few rows have resamples whose mean
    # lies past 1 (the upper bound drawn from them was 1.11).
    y_true = np.array([0, 0, 0, 1, 1, 1], dtype=float)
    y_pred = np.array([0.1, 0.2, 0.9, 0.8, 0.85, 0.95])
    spec = TaskSpec(
        id_column="id", target_columns=("label",), task_type="binary", primary_metric="roc_auc"
    )
    found = row_influence("roc_auc", y_true, y_pred, spec)
    assert found is not None
    plan = BootstrapPlan(rows=6, seed=7)
    _, unclipped = bootstrap_interval(found.values, plan)
    assert unclipped > 1.0
    low, high = bootstrap_interval(found.values, plan, within=RANGE["roc_auc"])
    assert (low, high) == (bootstrap_interval(found.values, plan)[0], 1.0)
    assert 0.0 <= low <= float(found.values.mean()) <= high == 1.0


def test_rank_intervals_follow_chatbot_arenas_rule():
    lower = np.array([0.90, 0.85, 0.70, 0.50])
    upper = np.array([0.95, 0.92, 0.80, 0.88])
    best, worst = rank_intervals(lower, upper, higher_is_better=True)
    assert best.tolist() == [1, 1, 3, 2]
    assert worst.tolist() == [2, 3, 4, 4]
    assert tied_with_leader(best).tolist() == [True, True, False, False]
    # Lower is better (a loss): the same board upside down.
    best, worst = rank_intervals(-upper, -lower, higher_is_better=False)
    assert best.tolist() == [1, 1, 3, 2]


def test_rank_intervals_match_counting_pair_by_pair():
    rng = np.random.default_rng(4)
    centre = rng.random(300)
    lower, upper = centre - rng.random(300) * 0.05, centre + rng.random(300) * 0.05
    best, worst = rank_intervals(lower, upper, higher_is_better=True)
    for i, j in itertools.islice(itertools.product(range(300), repeat=2), 0, None, 997):
        assert best[i] == 1 + int(np.sum(lower > upper[i]))
        assert worst[j] == 300 - int(np.sum(upper < lower[j]))


def test_the_paired_difference_sees_what_two_separate_intervals_cannot():
    """Two entries that differ on a few rows only: their intervals overlap, but every
    resample (the same rows for both) has A ahead."""
    rng = np.random.default_rng(8)
    b = (rng.random(2_000) < 0.7).astype(np.float32)
    a = b.copy()
    a[np.flatnonzero(b == 0)[:30]] = 1
    plan = BootstrapPlan(rows=2_000)
    low_a, _ = bootstrap_interval(a, plan)
    _, high_b = bootstrap_interval(b, plan)
    assert low_a < high_b
    diff = paired_difference(a, b, plan, higher_is_better=True)
    assert diff.low > 0
    assert diff.p_a_better == 1.0
    assert diff.estimate == pytest.approx(30 / 2_000)
    assert paired_difference(b, a, plan, higher_is_better=True).p_a_better == 0.0
