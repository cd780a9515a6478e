"""The parameter-free Ladder (Blum & Hardt, 2015): what a public board may tell a team.

Contract: `ladder_step(new, best, ...)` decides one submission. The board tells the team a
new public score only when it beats the score last released to the team by more than the
noise of the comparison, the standard error s / sqrt(n) of the paired per-row differences
between the new submission and the one behind the last released score (s their sample
standard deviation, n the rows). A released score is rounded to that precision (the
decimal place of the standard error), so its digits say no more than the data can; a score
that is not released leaves the old one on the board. `ladder_replay` runs the steps over a
team's submissions in the order they were made. The per-row values are the primary
metric's pseudo-values (scoring.influence), whose mean is the metric; for RMSE they are
squared errors, compared as such. Pure numpy: no Django.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LadderEntry:
    """One submission as the Ladder sees it: its score and per-row values (None: not stored)."""

    key: int
    score: float
    values: np.ndarray | None
    transform: str = "identity"


@dataclass(frozen=True)
class LadderStep:
    released: bool
    shown: float | None  # what the board tells the team after this submission
    noise: float | None  # s / sqrt(n) of the comparison, in the score's units


def standard_error(values: np.ndarray) -> float:
    """s / sqrt(n) of a vector of per-row values (0 for fewer than two rows)."""
    n = len(values)
    if n < 2:
        return 0.0
    return float(np.std(values.astype(np.float64), ddof=1) / math.sqrt(n))


def round_to_noise(score: float, noise: float) -> float:
    """The score rounded to the decimal place of the noise (0.0134 -> two decimals)."""
    if not noise > 0 or not math.isfinite(noise):
        return score
    digits = max(0, -math.floor(math.log10(noise)))
    return round(score, digits)


def _in_score_units(noise: float, mean: float, transform: str) -> float:
    """A difference of `noise` in the per-row values' mean, as a difference in the score."""
    if transform == "sqrt":  # score = sqrt(mean): the delta method
        return noise / (2 * math.sqrt(mean)) if mean > 0 else math.sqrt(noise)
    return noise


def ladder_step(
    new: LadderEntry, best: LadderEntry | None, *, shown: float | None, higher_is_better: bool
) -> LadderStep:
    """The Ladder's answer to `new`, given the entry behind the score `shown` so far."""
    if best is None or shown is None:  # the first score is always told, rounded
        if new.values is None:
            return LadderStep(True, new.score, None)
        own = _in_score_units(standard_error(new.values), float(np.mean(new.values)), new.transform)
        return LadderStep(True, round_to_noise(new.score, own), own)
    if new.values is None or best.values is None or len(new.values) != len(best.values):
        return LadderStep(False, shown, None)  # no paired comparison: nothing new is told
    diff = new.values.astype(np.float64) - best.values.astype(np.float64)
    noise = standard_error(diff)
    gain = float(np.mean(diff)) if higher_is_better else -float(np.mean(diff))
    noise_score = _in_score_units(noise, float(np.mean(new.values)), new.transform)
    if gain > noise:
        return LadderStep(True, round_to_noise(new.score, noise_score), noise_score)
    return LadderStep(False, shown, noise_score)


def ladder_replay(
    entries: Sequence[LadderEntry], *, higher_is_better: bool
) -> tuple[dict[int, LadderStep], int | None]:
    """Each entry's step, in the given order (the order the team submitted), and the key of
    the entry behind the score the board finally shows (None: no entry)."""
    steps: dict[int, LadderStep] = {}
    best: LadderEntry | None = None
    shown: float | None = None
    for entry in entries:
        step = ladder_step(entry, best, shown=shown, higher_is_better=higher_is_better)
        steps[entry.key] = step
        if step.released:
            best, shown = entry, step.shown
    return steps, (best.key if best is not None else None)
