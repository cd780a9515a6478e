"""The shake-up between a competition's public and private boards, as pure functions.

Contract: a board is given as one `BoardRow` per team (its sort key, higher is better, and
its 95 % bootstrap interval in the metric's own units, or None when none was computed).
`placings` turns a board into each team's rank (equal scores share a rank: 1 + the number
of teams strictly better) and plausible rank range (scoring.statistics.rank_intervals).
`shakeup` pairs the two boards' placings into one `Move` per team.

A move is "beyond sampling" when the team's plausible rank ranges on the two boards do not
overlap: no single rank is consistent with both boards' row sampling, so the test rows
alone do not explain the change (the public board was overfitted, or the two splits differ).
When either range is unknown the answer is None, never a guess. No Django here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from scoring.statistics import rank_intervals


@dataclass(frozen=True)
class BoardRow:
    team_id: int
    sort_key: float  # the score, negated when lower is better: higher is better
    ci_low: float | None = None  # the interval, in the metric's units
    ci_high: float | None = None


@dataclass(frozen=True)
class Placing:
    rank: int
    best: int | None = None  # plausible rank range, when the team has an interval
    worst: int | None = None


@dataclass(frozen=True)
class Move:
    team_id: int
    public: Placing | None
    private: Placing | None

    @property
    def change(self) -> int | None:
        """Places gained from the public to the private board (negative: places lost)."""
        if self.public is None or self.private is None:
            return None
        return self.public.rank - self.private.rank

    @property
    def beyond_sampling(self) -> bool | None:
        return beyond_sampling(self.public, self.private)


def beyond_sampling(public: Placing | None, private: Placing | None) -> bool | None:
    """Whether the two plausible rank ranges are disjoint (None when one is unknown)."""
    if public is None or private is None:
        return None
    if public.best is None or public.worst is None:
        return None
    if private.best is None or private.worst is None:
        return None
    return private.worst < public.best or private.best > public.worst


def placings(rows: Sequence[BoardRow], *, higher_is_better: bool) -> dict[int, Placing]:
    """Each team's rank and plausible rank range on one board (see the module docstring).
    The plausible ranks are among the teams that have an interval."""
    if not rows:
        return {}
    keys = np.array([r.sort_key for r in rows], dtype=np.float64)
    ordered = np.sort(keys)
    ranks = 1 + len(keys) - np.searchsorted(ordered, keys, "right")  # 1 + strictly better
    known = [i for i, r in enumerate(rows) if r.ci_low is not None and r.ci_high is not None]
    best: dict[int, int] = {}
    worst: dict[int, int] = {}
    if known:
        low = np.array([rows[i].ci_low for i in known], dtype=np.float64)
        high = np.array([rows[i].ci_high for i in known], dtype=np.float64)
        b, w = rank_intervals(low, high, higher_is_better=higher_is_better)
        best = {known[k]: int(b[k]) for k in range(len(known))}
        worst = {known[k]: int(w[k]) for k in range(len(known))}
    return {
        r.team_id: Placing(rank=int(ranks[i]), best=best.get(i), worst=worst.get(i))
        for i, r in enumerate(rows)
    }


def shakeup(public: Mapping[int, Placing], private: Mapping[int, Placing]) -> list[Move]:
    """One move per team on either board, in private rank order (teams only on the public
    board last, in public rank order)."""
    teams = set(public) | set(private)

    def order(team_id: int) -> tuple[int, int, int]:
        mine, theirs = private.get(team_id), public.get(team_id)
        if mine is not None:
            return (0, mine.rank, theirs.rank if theirs else 0)
        return (1, theirs.rank if theirs else 0, team_id)

    return [Move(t, public.get(t), private.get(t)) for t in sorted(teams, key=order)]


def change_label(change: int | None) -> str:
    """ "↑3", "↓2" or "=" (empty when the team is on one board only)."""
    if change is None:
        return ""
    if change == 0:
        return "="
    return f"↑{change}" if change > 0 else f"↓{-change}"
