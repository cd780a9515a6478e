"""Rank-based tests for many methods over many tasks (Demšar 2006), as pure functions.

Contract: the input is a matrix with one row per task (a block) and one column per method,
every cell filled (a suite board imputes failed and missing cells before it gets here).
`ranks` are the per-task ranks, 1 = best, ties sharing the average of the ranks they span;
`scores` (for Wilcoxon) are oriented so that higher is better and share one scale across
tasks (a suite's normalized scores), since the test ranks differences taken across tasks.

- `friedman`: are all methods equivalent? Friedman's chi-square on the mean ranks, corrected
  for ties by default (as scipy.stats.friedmanchisquare; Demšar's formula is the uncorrected
  one, `tie_correction=False`), and Iman and Davenport's F, less conservative, which
  Demšar recommends reading.
- `nemenyi_cd`: the critical difference: two methods whose mean ranks differ by at least it
  differ significantly (all pairs at once, family-wise level alpha).
- `cliques`: the maximal runs of methods, by mean rank, that do not differ: the bars of a
  critical-difference diagram.
- `holm` and `pairwise_wilcoxon`: the signed-rank test of every pair, zero differences split
  between the signs (Demšar's rule, without dropping one of an odd number: scipy's
  "zsplit"), p-values adjusted by Holm's step-down procedure.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats

ALPHA = 0.05


@dataclass(frozen=True)
class Friedman:
    tasks: int  # N
    methods: int  # k
    mean_ranks: tuple[float, ...]  # in the matrix's column order
    chi2: float
    chi2_p: float  # chi-square with k - 1 degrees of freedom
    f: float  # Iman-Davenport
    f_p: float  # F with (k - 1, (k - 1)(N - 1)) degrees of freedom
    df1: int
    df2: int


def _shape(matrix: np.ndarray) -> tuple[int, int]:
    if matrix.ndim != 2:
        raise ValueError("Expected a matrix: one row per task, one column per method.")
    n, k = matrix.shape
    if n < 2 or k < 2:
        raise ValueError("Rank tests need at least two tasks and two methods.")
    if not np.all(np.isfinite(matrix)):
        raise ValueError("Every cell needs a finite value (impute failed and missing cells).")
    return n, k


def tie_factor(ranks: np.ndarray) -> float:
    """1 - sum(t^3 - t) / (N k (k^2 - 1)) over every group of t tied ranks within a task:
    1 without ties, 0 when every task ties all its methods."""
    n, k = ranks.shape
    ties = sum(
        float(np.sum(counts**3 - counts))
        for counts in (np.unique(row, return_counts=True)[1] for row in ranks)
    )
    return 1.0 - ties / (n * k * (k * k - 1))


def friedman(ranks: np.ndarray, *, tie_correction: bool = True) -> Friedman:
    """Friedman's test and the Iman-Davenport F on a tasks x methods matrix of ranks."""
    ranks = np.asarray(ranks, dtype=np.float64)
    n, k = _shape(ranks)
    mean = ranks.mean(axis=0)
    chi2 = 12 * n / (k * (k + 1)) * (float(np.sum(mean**2)) - k * (k + 1) ** 2 / 4)
    if tie_correction:
        factor = tie_factor(ranks)
        # Every task a full tie: no evidence of any difference (0/0 otherwise).
        chi2 = chi2 / factor if factor > 0 else 0.0
    chi2 = max(chi2, 0.0)  # rounding can leave -1e-15 for equal mean ranks
    df1, df2 = k - 1, (k - 1) * (n - 1)
    room = n * (k - 1) - chi2
    # chi2 reaches N(k - 1) when every task ranks the methods alike: F is infinite.
    f = (n - 1) * chi2 / room if room > 1e-12 else math.inf
    return Friedman(
        tasks=n,
        methods=k,
        mean_ranks=tuple(float(r) for r in mean),
        chi2=chi2,
        chi2_p=float(stats.chi2.sf(chi2, df1)),
        f=f,
        f_p=0.0 if math.isinf(f) else float(stats.f.sf(f, df1, df2)),
        df1=df1,
        df2=df2,
    )


@lru_cache(maxsize=256)
def nemenyi_q(methods: int, alpha: float = ALPHA) -> float:
    """q_alpha: the Studentized range's upper alpha quantile for k groups and infinite
    degrees of freedom, divided by sqrt(2) (Demšar's Table 5a: 2.569 for k = 4)."""
    if methods < 2:
        raise ValueError("The Nemenyi test needs at least two methods.")
    return float(stats.studentized_range.ppf(1 - alpha, methods, np.inf)) / math.sqrt(2)


def nemenyi_cd(methods: int, tasks: int, alpha: float = ALPHA) -> float:
    """The critical difference q_alpha * sqrt(k (k + 1) / (6 N))."""
    if tasks < 1:
        raise ValueError("The critical difference needs at least one task.")
    return nemenyi_q(methods, alpha) * math.sqrt(methods * (methods + 1) / (6 * tasks))


def cliques(mean_ranks: Sequence[float], cd: float) -> list[tuple[int, ...]]:
    """Maximal groups of two or more methods whose mean ranks all lie within less than `cd`
    of each other, as column indices sorted by mean rank (best first); groups in order of
    their best member. A method in no group differs significantly from every other."""
    order = sorted(range(len(mean_ranks)), key=lambda i: (mean_ranks[i], i))
    spans: list[tuple[int, int]] = []
    end = 0
    for start in range(len(order)):
        end = max(end, start)
        while end + 1 < len(order) and (mean_ranks[order[end + 1]] - mean_ranks[order[start]] < cd):
            end += 1
        # A span inside the previous one (same end) adds nothing.
        if end > start and (not spans or end > spans[-1][1]):
            spans.append((start, end))
    return [tuple(order[i] for i in range(start, end + 1)) for start, end in spans]


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the given order: the i-th smallest of m is
    multiplied by m - i + 1, then made non-decreasing in that order and capped at 1. A
    hypothesis is rejected at level alpha when its adjusted p-value is at most alpha."""
    m = len(p_values)
    adjusted = [0.0] * m
    running = 0.0
    for position, index in enumerate(sorted(range(m), key=lambda i: p_values[i])):
        running = max(running, min(1.0, (m - position) * p_values[index]))
        adjusted[index] = running
    return adjusted


@dataclass(frozen=True)
class PairTest:
    a: int  # column indices
    b: int
    statistic: float  # Wilcoxon's T: the smaller of the positive and negative rank sums
    p_value: float  # two-sided, unadjusted
    p_holm: float
    significant: bool  # p_holm <= alpha
    a_better: bool | None  # a's differences outweigh b's (R+ > R-); None when R+ = R-


def pairwise_wilcoxon(scores: np.ndarray, *, alpha: float = ALPHA) -> list[PairTest]:
    """Wilcoxon's signed-rank test of every pair of columns (higher is better), over the
    tasks, with Holm's correction over the k (k - 1) / 2 pairs."""
    scores = np.asarray(scores, dtype=np.float64)
    _n, k = _shape(scores)
    pairs = list(itertools.combinations(range(k), 2))
    results = []
    for a, b in pairs:
        difference = scores[:, a] - scores[:, b]
        if not np.any(difference):  # scipy's answer is p = 1 too, with a warning
            results.append((a, b, 0.0, 1.0, 0.0))
            continue
        test = stats.wilcoxon(difference, zero_method="zsplit")
        results.append((a, b, float(test.statistic), float(test.pvalue), _lead(difference)))
    adjusted = holm([p for _a, _b, _t, p, _lead_ in results])
    return [
        PairTest(
            a=a,
            b=b,
            statistic=t,
            p_value=p,
            p_holm=q,
            significant=q <= alpha,
            a_better=None if lead == 0 else lead > 0,
        )
        for (a, b, t, p, lead), q in zip(results, adjusted, strict=True)
    ]


def _lead(difference: np.ndarray) -> float:
    """R+ - R-: the signed ranks' sum, zero differences split evenly (they cancel)."""
    ranks = stats.rankdata(np.abs(difference))
    return float(np.sum(ranks * np.sign(difference)))
