"""Pairwise comparison of two entries of one board (its split, its ranked task version).

Contract: `entries_compare` takes two submissions that are rows of the board (what anyone who
may see the board sees) and returns the paired-bootstrap interval of the difference of their
scores (A minus B, on the board's resamples: the same rows for both), the probability that A
beats B across those resamples, and the exact test that fits the metric: McNemar's for
accuracy, DeLong's for binary ROC AUC, a paired permutation test otherwise. The caller checks
that the user may see the board and the split; the public split of a Ladder board is never
compared (WithheldByLadder). Computed from the two stored per-row files on
request (two entries among n make n² pairs: too many to precompute), then cached.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from django.core.cache import cache

from competitions.models import Competition, LeaderboardEntry
from competitions.selectors import board_statistics_read, plausible_ranks
from competitions.services.intervals import bootstrap_plan, submission_influence
from scoring.influence import RowInfluence
from scoring.metrics import metric_get
from scoring.statistics import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    LEVEL,
    Difference,
    TestResult,
    delong_test,
    mcnemar_exact,
    paired_difference,
    permutation_test,
)

CACHE_S = 3600
TEST_NAMES = {
    "mcnemar": "McNemar's exact test (rows exactly one of the two got right)",
    "delong": "DeLong's test for two correlated ROC AUCs",
    "permutation": "Paired permutation test (10,000 random swaps of A and B per row)",
}


class NotOnBoard(Exception):
    """One of the submissions is not a row of this board."""


class NotComparable(Exception):
    """The rows have no stored per-row values to compare (e.g. scored by an older image)."""


class WithheldByLadder(Exception):
    """The public split of a Ladder board: the exact difference of two public scores would
    give back what the Ladder rounds or holds back (docs/leaderboard.md)."""

    message = (
        "This competition's public leaderboard uses the Ladder, which shows a public score only "
        "when it beats the noise: its entries are not compared on the public split."
    )


@dataclass(frozen=True)
class Side:
    submission_id: int
    team: str
    score: float
    rank_best: int | None
    rank_worst: int | None


@dataclass(frozen=True)
class Comparison:
    split: str
    metric: str
    metric_label: str
    higher_is_better: bool
    a: Side
    b: Side
    difference: Difference
    test: TestResult
    test_label: str
    rows: int
    seed: int
    resamples: int
    level: float


def board_leader(*, competition: Competition, split: str) -> int | None:
    """The submission of the board's first row (ties: the earlier submission, as listed)."""
    return (
        LeaderboardEntry.objects.filter(
            competition=competition, split=split, task_version=competition.task.version
        )
        .order_by("-sort_key", "submitted_at", "team_id")
        .values_list("submission_id", flat=True)
        .first()
    )


def entries_compare(
    *, competition: Competition, split: str, a_submission_id: int, b_submission_id: int
) -> Comparison:
    if split == "public" and competition.public_board == Competition.PublicBoard.LADDER:
        raise WithheldByLadder
    entries = {
        e.submission_id: e
        for e in LeaderboardEntry.objects.filter(
            competition=competition,
            split=split,
            task_version=competition.task.version,
            submission_id__in=[a_submission_id, b_submission_id],
        ).select_related("team", "submission__competition__task")
    }
    if a_submission_id not in entries or b_submission_id not in entries:
        raise NotOnBoard
    stats = board_statistics_read(competition=competition, split=split)
    params = (
        (stats["seed"], stats["resamples"], stats["level"])
        if stats
        else (DEFAULT_SEED, DEFAULT_RESAMPLES, LEVEL)  # the defaults until a first interval
    )
    key = f"compare:{competition.pk}:{split}:{competition.task.version}:" + ":".join(
        str(v) for v in (a_submission_id, b_submission_id, *params)
    )
    a, b = entries[a_submission_id], entries[b_submission_id]
    found = cache.get(key)
    if found is None:
        found = _compute(competition, split, a, b, params)
        cache.set(key, found, CACHE_S)
    # The plausible ranks move with the board: read now, not cached.
    higher = found.higher_is_better
    return replace(found, a=_side(a, stats, higher), b=_side(b, stats, higher))


def _compute(
    competition: Competition,
    split: str,
    a: LeaderboardEntry,
    b: LeaderboardEntry,
    params: tuple[int, int, float],
) -> Comparison:
    metric = metric_get(competition.task.primary_metric)
    seed, resamples, level = params
    rows_a = submission_influence(a.submission, split)
    rows_b = submission_influence(b.submission, split)
    if rows_a is None or rows_b is None or len(rows_a.values) != len(rows_b.values):
        raise NotComparable
    plan = bootstrap_plan(len(rows_a.values), seed, resamples)
    difference = paired_difference(
        rows_a.values,
        rows_b.values,
        plan,
        higher_is_better=metric.higher_is_better,
        transform=rows_a.transform,
        level=level,
    )
    test = _test(metric.name, rows_a, rows_b, seed=seed)
    return Comparison(
        split=split,
        metric=metric.name,
        metric_label=metric.label,
        higher_is_better=metric.higher_is_better,
        a=_side(a, None, metric.higher_is_better),
        b=_side(b, None, metric.higher_is_better),
        difference=difference,
        test=test,
        test_label=TEST_NAMES[test.name],
        rows=len(rows_a.values),
        seed=seed,
        resamples=resamples,
        level=level,
    )


def _test(metric: str, a: RowInfluence, b: RowInfluence, *, seed: int) -> TestResult:
    if metric == "accuracy":  # accuracy's per-row values are the rows' correctness
        return mcnemar_exact(a.values, b.values)
    if metric == "roc_auc" and a.strata is not None:
        return delong_test(a.values, b.values, a.strata)
    return permutation_test(a.values, b.values, seed=seed, transform=a.transform)


def _side(entry: LeaderboardEntry, stats: Mapping[str, Any] | None, higher: bool) -> Side:
    current = entry.interval_submission_id == entry.submission_id
    interval = (entry.ci_low, entry.ci_high) if current else (None, None)
    best, worst, _tied = plausible_ranks(stats, higher, [interval])[0]
    return Side(
        submission_id=entry.submission_id,
        team=entry.team.name,
        score=entry.score,
        rank_best=best,
        rank_worst=worst,
    )
