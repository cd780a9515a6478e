"""How sure a leaderboard can be: bootstrap intervals, rank intervals and paired tests.

Pure functions over numpy arrays (no Django, no project app). Every entry of a board is
represented by its per-row pseudo-values on the board's split (scoring.influence: the mean
over any resample of the rows is the metric on that resample), all in the same row order.

The bootstrap is paired: a `BootstrapPlan`, fixed by the number of rows, a seed and a number
of resamples, draws the same resampled row sets for every entry. Splits of up to
`EXACT_ROWS` rows are resampled row by row (the classic bootstrap). Larger splits are cut,
by a seeded shuffle, into `EXACT_ROWS` groups of nearly equal size and the groups are
resampled: each resample is still a set of rows, the same for every entry, and a mean's
spread is the row bootstrap's to first order, while the cost per entry is one pass over its
rows plus resamples x groups, whatever the split's size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

EXACT_ROWS = 10_000
DEFAULT_RESAMPLES = 1_000
DEFAULT_SEED = 20_151_124  # any fixed number; recorded with every interval
LEVEL = 0.95


@dataclass(frozen=True)
class BootstrapPlan:
    """The resamples shared by every entry of a board (see the module docstring)."""

    rows: int
    seed: int = DEFAULT_SEED
    resamples: int = DEFAULT_RESAMPLES
    groups: np.ndarray = field(init=False, repr=False)  # row -> group
    drawn: np.ndarray = field(init=False, repr=False)  # resamples x groups: the groups drawn
    sizes: np.ndarray = field(init=False, repr=False)  # rows per group
    weights: np.ndarray = field(init=False, repr=False)  # rows per resample

    def __post_init__(self) -> None:
        if self.rows < 1 or self.resamples < 1:
            raise ValueError("A bootstrap needs at least one row and one resample.")
        rng = np.random.default_rng(self.seed)
        n_groups = min(self.rows, EXACT_ROWS)
        if n_groups == self.rows:
            groups = np.arange(self.rows, dtype=np.int32)
        else:
            groups = (rng.permutation(self.rows) % n_groups).astype(np.int32)
        kind = np.int16 if n_groups <= np.iinfo(np.int16).max else np.int32
        drawn = rng.integers(0, n_groups, size=(self.resamples, n_groups), dtype=kind)
        sizes = np.bincount(groups, minlength=n_groups).astype(np.float64)
        object.__setattr__(self, "groups", groups)
        object.__setattr__(self, "drawn", drawn)
        object.__setattr__(self, "sizes", sizes)
        object.__setattr__(self, "weights", self._resampled(sizes))

    def _resampled(self, per_group: np.ndarray) -> np.ndarray:
        """Sum over each resample's drawn groups of a per-group quantity, in blocks of
        resamples to bound the gathered temporary."""
        block = max(1, (1 << 22) // len(self.sizes))
        return np.concatenate(
            [
                per_group[self.drawn[start : start + block]].sum(axis=1)
                for start in range(0, self.resamples, block)
            ]
        )

    def means(self, values: np.ndarray) -> np.ndarray:
        """The mean of `values` in every resample: values has one row per row of the split
        (and optionally one column per entry); the result one row per resample, float64."""
        if len(values) != self.rows:
            raise ValueError(f"Expected {self.rows} values, got {len(values)}.")
        # Centred first, so the sums lose precision on the deviations only.
        centre = np.mean(values, axis=0, dtype=np.float64)
        if values.ndim == 1:
            sums = np.bincount(self.groups, weights=values - centre, minlength=len(self.sizes))
            return centre + self._resampled(sums) / self.weights
        # Many entries at once (simulations): as counts of each group per resample.
        offsets = (np.arange(self.resamples) * len(self.sizes))[:, None]
        counts = np.bincount(
            (self.drawn + offsets).ravel(), minlength=self.resamples * len(self.sizes)
        ).reshape(self.resamples, len(self.sizes))
        grouped = np.zeros((len(self.sizes), values.shape[1]))
        np.add.at(grouped, self.groups, values - centre)
        return centre + (counts @ grouped) / self.weights[:, None]


def transformed(means: np.ndarray, transform: str) -> np.ndarray:
    if transform == "sqrt":
        return np.sqrt(np.maximum(means, 0))
    if transform != "identity":
        raise ValueError(f"Unknown transform {transform!r}.")
    return means


def percentile_interval(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The central `level` percentile interval of bootstrap samples."""
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_interval(
    values: np.ndarray,
    plan: BootstrapPlan,
    *,
    transform: str = "identity",
    level: float = LEVEL,
    within: tuple[float, float] | None = None,
) -> tuple[float, float]:
    """The percentile interval of an entry's metric over the plan's resamples, clipped to
    `within` (the metric's attainable values, scoring.metrics.RANGE): a resample's mean of
    linearized pseudo-values may lie past them, the metric itself never does."""
    low, high = percentile_interval(transformed(plan.means(values), transform), level)
    if within is not None:
        low, high = min(max(low, within[0]), within[1]), min(max(high, within[0]), within[1])
    return low, high


def rank_intervals(
    lower: np.ndarray, upper: np.ndarray, *, higher_is_better: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Best and worst plausible rank of every entry (Chatbot Arena's rule): best = 1 + the
    number of entries surely better (their whole interval beyond this one's), worst = the
    number of entries not surely worse. O(n log n)."""
    board = RankBounds.of(lower, upper, higher_is_better=higher_is_better)
    return board.ranks(lower, upper)


@dataclass(frozen=True)
class RankBounds:
    """A board's intervals, sorted, oriented so that higher is better: enough to give the
    plausible ranks of any of its entries in O(log n), and small enough (16 bytes an entry)
    to store as one value per board."""

    lower: np.ndarray  # sorted ascending
    upper: np.ndarray  # sorted ascending
    higher_is_better: bool

    @classmethod
    def of(cls, lower: np.ndarray, upper: np.ndarray, *, higher_is_better: bool) -> RankBounds:
        low, high = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
        if not higher_is_better:  # lower is better: flip, so "better" means "higher"
            low, high = -high, -low
        return cls(np.sort(low), np.sort(high), higher_is_better)

    def to_bytes(self) -> bytes:
        return np.concatenate([self.lower, self.upper]).astype("<f8").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, *, higher_is_better: bool) -> RankBounds:
        both = np.frombuffer(data, dtype="<f8")
        half = len(both) // 2
        return cls(both[:half], both[half:], higher_is_better)

    def ranks(self, lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best and worst plausible ranks of entries of this board with these intervals."""
        low, high = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
        if not self.higher_is_better:
            low, high = -high, -low
        n = len(self.lower)
        surely_better = n - np.searchsorted(self.lower, high, "right")
        surely_worse = np.searchsorted(self.upper, low, "left")
        return (1 + surely_better).astype(np.int64), (n - surely_worse).astype(np.int64)


def tied_with_leader(best_rank: np.ndarray) -> np.ndarray:
    """Entries that could be #1: nothing is surely better than them."""
    return np.asarray(best_rank) == 1


@dataclass(frozen=True)
class Difference:
    """A minus B over the plan's resamples, oriented so that positive means A is better."""

    estimate: float
    low: float
    high: float
    p_a_better: float  # share of resamples where A is better (ties count half)


def paired_difference(
    a: np.ndarray,
    b: np.ndarray,
    plan: BootstrapPlan,
    *,
    higher_is_better: bool,
    transform: str = "identity",
    level: float = LEVEL,
) -> Difference:
    """The paired bootstrap of A's metric minus B's: the same resampled rows for both."""
    sample_a = transformed(plan.means(a), transform)
    sample_b = transformed(plan.means(b), transform)
    diff = sample_a - sample_b
    better = diff if higher_is_better else -diff
    p = float(np.mean(better > 0) + 0.5 * np.mean(better == 0))
    estimate = float(transformed(np.array([np.mean(a, dtype=np.float64)]), transform)[0]) - float(
        transformed(np.array([np.mean(b, dtype=np.float64)]), transform)[0]
    )
    low, high = percentile_interval(diff, level)
    return Difference(estimate=estimate, low=low, high=high, p_a_better=p)


@dataclass(frozen=True)
class TestResult:
    name: str  # "mcnemar" | "delong" | "permutation"
    statistic: float
    p_value: float


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> TestResult:
    """McNemar's exact test: a two-sided binomial test on the rows exactly one of A and B got
    right (statistic: the smaller of the two discordant counts)."""
    a, b = np.asarray(correct_a) > 0.5, np.asarray(correct_b) > 0.5
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    return TestResult("mcnemar", float(min(only_a, only_b)), _binomial_two_sided(only_a, only_b))


def _binomial_two_sided(k: int, m: int) -> float:
    """P-value of k successes in k+m fair coin flips: twice the smaller tail, at most 1."""
    n = k + m
    if n == 0:
        return 1.0
    low = min(k, m)
    # log-space sum of C(n, i) / 2^n for i <= low, stable for large n.
    logs = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in range(low + 1)
    ]
    top = max(logs)
    tail = math.exp(top - n * math.log(2)) * sum(math.exp(x - top) for x in logs)
    return min(1.0, 2 * tail)


def delong_test(phi_a: np.ndarray, phi_b: np.ndarray, positive: np.ndarray) -> TestResult:
    """DeLong, DeLong & Clarke-Pearson (1988) test of two correlated ROC AUCs on the same
    rows, from the rows' pseudo-values (scoring.influence) and true classes: the placement
    values are recovered from the pseudo-values, then the structural components' covariance
    gives the variance of the difference. Two-sided normal p-value."""
    positive = np.asarray(positive).astype(bool)
    n, n1 = len(positive), int(positive.sum())
    n0 = n - n1
    if n1 < 2 or n0 < 2:
        return TestResult("delong", 0.0, 1.0)
    phis = np.vstack([phi_a, phi_b]).astype(np.float64)
    theta = phis.mean(axis=1, keepdims=True)
    share = np.where(positive, n1 / n, n0 / n)
    placements = theta + (phis - theta) * share
    s10 = np.cov(placements[:, positive])
    s01 = np.cov(placements[:, ~positive])
    cov = s10 / n1 + s01 / n0
    variance = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    diff = float(theta[0, 0] - theta[1, 0])
    if variance <= 0:
        return TestResult("delong", 0.0, 1.0 if diff == 0 else 0.0)
    z = diff / math.sqrt(variance)
    return TestResult("delong", z, math.erfc(abs(z) / math.sqrt(2)))


def permutation_test(
    a: np.ndarray,
    b: np.ndarray,
    *,
    seed: int = DEFAULT_SEED,
    permutations: int = 10_000,
    transform: str = "identity",
) -> TestResult:
    """Paired permutation test: under "A and B are exchangeable on every row", swapping them
    on a random subset of rows leaves the difference's distribution unchanged. Rows swap in
    the groups of a BootstrapPlan's partition (single rows up to EXACT_ROWS rows), a subgroup
    of all swaps, so the test stays exact. Two-sided, with the observed swap counted."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    n = len(a)
    rng = np.random.default_rng(seed)
    n_groups = min(n, EXACT_ROWS)
    groups = np.arange(n) if n_groups == n else rng.permutation(n) % n_groups
    d = np.bincount(groups, weights=a - b, minlength=n_groups)
    base_a = np.bincount(groups, weights=a, minlength=n_groups).sum()
    # A's total after swapping: base_a - (sum of d over swapped groups); in blocks, to
    # bound the memory of the random swaps.
    swapped = np.concatenate(
        [
            rng.integers(
                0, 2, size=(min(1_000, permutations - start), n_groups), dtype=np.int8
            ).astype(np.float32)
            @ d.astype(np.float32)
            for start in range(0, permutations, 1_000)
        ]
    ).astype(np.float64)
    perm_a, perm_b = (base_a - swapped) / n, (base_a - d.sum() + swapped) / n
    stats = transformed(perm_a, transform) - transformed(perm_b, transform)
    observed = float(transformed(np.array([np.mean(a, dtype=np.float64)]), transform)[0]) - float(
        transformed(np.array([np.mean(b, dtype=np.float64)]), transform)[0]
    )
    extreme = int(np.sum(np.abs(stats) >= abs(observed) - 1e-12))
    return TestResult("permutation", observed, (extreme + 1) / (permutations + 1))
