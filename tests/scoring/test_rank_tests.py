"""Rank tests over many tasks (scoring.rank_tests) against Demšar (2006) and scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats as scipy_stats

from scoring.rank_tests import (
    cliques,
    friedman,
    holm,
    nemenyi_cd,
    nemenyi_q,
    pairwise_wilcoxon,
    tie_factor,
)
from tests.scoring.demsar import DEMSAR_AUC, DEMSAR_RANKED


def ranks_of(scores: np.ndarray) -> np.ndarray:
    """Per-task ranks, higher score = better = rank 1, ties averaged."""
    return scipy_stats.rankdata(-scores, axis=1)


def test_it_reproduces_demsars_friedman_and_iman_davenport_figures():
    result = friedman(ranks_of(DEMSAR_RANKED), tie_correction=False)

    assert [round(r, 3) for r in result.mean_ranks] == [3.143, 2.000, 2.893, 1.964]
    assert result.chi2 == pytest.approx(9.28, abs=0.005)
    assert result.f == pytest.approx(3.69, abs=0.005)
    assert (result.df1, result.df2) == (3, 39)
    # The paper rejects the null hypothesis: F(3, 39) at alpha 0.05 is 2.85.
    assert scipy_stats.f.ppf(0.95, 3, 39) == pytest.approx(2.85, abs=0.005)
    assert result.f_p < 0.05
    assert result.chi2_p == pytest.approx(scipy_stats.chi2.sf(result.chi2, 3))


def test_its_tie_corrected_friedman_statistic_is_scipys():
    result = friedman(ranks_of(DEMSAR_AUC))

    expected = scipy_stats.friedmanchisquare(*DEMSAR_AUC.T)
    assert result.chi2 == pytest.approx(expected.statistic)
    assert result.chi2_p == pytest.approx(expected.pvalue)
    # The ties (mushroom, lung cancer, iris...) make the corrected statistic larger.
    assert result.chi2 > friedman(ranks_of(DEMSAR_AUC), tie_correction=False).chi2


@settings(max_examples=60, deadline=None)
@given(
    arrays(
        np.int8,
        st.tuples(st.integers(2, 12), st.integers(3, 6)),
        elements=st.integers(0, 3),
    )
)
def test_it_agrees_with_scipy_on_any_matrix_with_ties(scores):
    if tie_factor(ranks_of(scores)) == 0:  # every task one full tie: scipy divides 0 by 0
        assert friedman(ranks_of(scores)).chi2 == 0.0
        return
    result = friedman(ranks_of(scores))

    expected = scipy_stats.friedmanchisquare(*scores.T.astype(float))
    assert result.chi2 == pytest.approx(expected.statistic, abs=1e-9)
    assert result.chi2_p == pytest.approx(expected.pvalue, abs=1e-9)
    assert sum(result.mean_ranks) == pytest.approx(result.methods * (result.methods + 1) / 2)


def test_it_finds_no_difference_when_every_task_ties_every_method():
    result = friedman(np.full((5, 3), 2.0))

    assert (result.chi2, result.chi2_p, result.f, result.f_p) == (0.0, 1.0, 0.0, 1.0)


def test_its_iman_davenport_f_is_infinite_when_every_task_ranks_the_methods_alike():
    result = friedman(np.tile([1.0, 2.0, 3.0], (6, 1)))

    assert result.chi2 == pytest.approx(6 * 2)  # its maximum, N (k - 1)
    assert math.isinf(result.f)
    assert result.f_p == 0.0


@pytest.mark.parametrize(
    "matrix",
    [np.ones((1, 3)), np.ones((4, 1)), np.ones(4), np.array([[1.0, np.nan], [1.0, 2.0]])],
)
def test_it_refuses_a_matrix_it_cannot_test(matrix):
    with pytest.raises(ValueError, match=r"tasks|matrix|finite"):
        friedman(matrix)


# Demšar's Table 5a: the two-tailed Nemenyi q_0.05 for k = 2..10, to three decimals (the
# table cuts rather than rounds: 2.3437 is printed 2.343).
@pytest.mark.parametrize(
    ("k", "q"),
    [
        (2, 1.960),
        (3, 2.343),
        (4, 2.569),
        (5, 2.728),
        (6, 2.850),
        (7, 2.949),
        (8, 3.031),
        (9, 3.102),
        (10, 3.164),
    ],
)
def test_its_nemenyi_q_is_demsars_table(k, q):
    assert nemenyi_q(k) == pytest.approx(q, abs=0.001)


def test_it_gives_demsars_critical_difference_for_four_methods_on_fourteen_tasks():
    assert nemenyi_cd(4, 14) == pytest.approx(2.569 * math.sqrt(4 * 5 / (6 * 14)), abs=2e-4)
    assert round(nemenyi_cd(4, 14), 2) == 1.25
    # At alpha 0.10 (q = 2.291) the paper's CD is 1.12.
    assert round(nemenyi_cd(4, 14, alpha=0.10), 2) == 1.12


def test_its_groups_are_demsars_conclusions_at_both_levels():
    mean_ranks = friedman(ranks_of(DEMSAR_RANKED)).mean_ranks

    # At 0.05 no pair differs (3.143 - 1.964 < 1.25): one group of all four.
    assert cliques(mean_ranks, nemenyi_cd(4, 14)) == [(3, 1, 2, 0)]
    # At 0.10 C4.5 is worse than C4.5+m and C4.5+m+cf, and only those.
    assert cliques(mean_ranks, nemenyi_cd(4, 14, alpha=0.10)) == [(3, 1, 2), (2, 0)]


def test_a_difference_of_exactly_the_critical_difference_is_significant():
    assert cliques([1.0, 2.0, 3.0], 1.0) == []
    assert cliques([1.0, 2.0, 3.0], 1.0001) == [(0, 1), (1, 2)]
    assert cliques([1.0, 1.5, 1.7, 4.0], 1.0) == [(0, 1, 2)]


def test_its_holm_adjustment_matches_a_hand_computed_example():
    # Sorted: 0.005 x 4 = 0.02; 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04 -> 0.06.
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == [1.0, 1.0]  # capped at 1, never decreasing
    assert holm([]) == []


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=12))
def test_holms_adjusted_p_values_are_bounded_and_keep_the_order(p_values):
    adjusted = holm(p_values)

    m = len(p_values)
    for p, q in zip(p_values, adjusted, strict=True):
        assert p <= q <= 1.0
        assert q <= min(1.0, m * p) + 1e-12  # never beyond Bonferroni
    order = sorted(range(m), key=lambda i: p_values[i])
    assert [adjusted[i] for i in order] == sorted(adjusted)


def test_its_wilcoxon_on_demsars_pair_gives_t_of_12():
    # Section 3.1.3: C4.5+m against C4.5, zero differences split: T = 12, p < 0.05.
    tests = pairwise_wilcoxon(DEMSAR_AUC)

    first = next(t for t in tests if (t.a, t.b) == (0, 1))
    assert first.statistic == 12.0
    assert first.p_value < 0.05
    assert first.a_better is False  # C4.5+m is the better one


def test_its_pairwise_wilcoxon_is_scipys_with_holms_correction():
    tests = pairwise_wilcoxon(DEMSAR_AUC, alpha=0.10)

    assert [(t.a, t.b) for t in tests] == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    raw = [
        scipy_stats.wilcoxon(DEMSAR_AUC[:, t.a], DEMSAR_AUC[:, t.b], zero_method="zsplit")
        for t in tests
    ]
    assert [t.p_value for t in tests] == pytest.approx([r.pvalue for r in raw])
    assert [t.statistic for t in tests] == pytest.approx([r.statistic for r in raw])
    assert [t.p_holm for t in tests] == pytest.approx(holm([r.pvalue for r in raw]))
    assert [t.significant for t in tests] == [t.p_holm <= 0.10 for t in tests]
    # Six pairs: the smallest raw p (0.011) times six is no longer significant at 0.05.
    assert min(t.p_value for t in tests) < 0.05
    assert not any(t.significant for t in pairwise_wilcoxon(DEMSAR_AUC))


def test_a_pair_with_identical_scores_is_not_different():
    scores = np.array([[0.5, 0.5, 0.9], [0.6, 0.6, 0.1], [0.7, 0.7, 0.8]])

    same = pairwise_wilcoxon(scores)[0]

    assert (same.a, same.b, same.p_value, same.a_better) == (0, 1, 1.0, None)
