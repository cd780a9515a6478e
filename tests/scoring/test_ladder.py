"""The parameter-free Ladder (scoring.ladder) on known inputs, and the boosting attack of
Blum & Hardt (2015, section 6) replayed on a plain board and under the Ladder."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from scoring.ladder import (
    LadderEntry,
    ladder_replay,
    ladder_step,
    round_to_noise,
    standard_error,
)


def _entry(key: int, values: Sequence[float]) -> LadderEntry:
    array = np.array(values, dtype=np.float32)
    return LadderEntry(key=key, score=float(array.mean()), values=array)


def test_the_standard_error_is_the_sample_deviation_over_the_root_of_n() -> None:
    values = np.array([1.0, 0.0, 1.0, 1.0])  # mean 0.75, sample sd 0.5
    assert math.isclose(standard_error(values), 0.5 / 2)


def test_a_released_score_is_rounded_to_the_decimal_place_of_the_noise() -> None:
    assert round_to_noise(0.87345, 0.0134) == 0.87
    assert round_to_noise(0.87345, 0.00134) == 0.873
    assert round_to_noise(0.87345, 0.0) == 0.87345


def test_the_first_score_is_released_rounded_to_its_own_standard_error() -> None:
    first = _entry(1, [1, 1, 1, 0] * 25)  # 0.75 over 100 rows, se 0.0435
    step = ladder_step(first, None, shown=None, higher_is_better=True)
    assert step.released
    assert step.shown == 0.75
    assert math.isclose(step.noise or 0, 0.0435194, rel_tol=1e-5)
    rough = LadderEntry(key=2, score=0.746, values=np.array([1, 1, 1, 0] * 25, np.float32))
    assert ladder_step(rough, None, shown=None, higher_is_better=True).shown == 0.75


def test_a_gain_within_the_noise_repeats_the_old_score() -> None:
    best = _entry(1, [1, 0] * 50)  # 0.50
    new = _entry(2, [1, 0] * 45 + [1, 1] * 3 + [0, 0] * 2)  # 0.51: 3 rows right, 2 wrong
    # Paired differences: three +1, two -1 in 100 rows: mean 0.01, sd 0.22451, se 0.022451.
    step = ladder_step(new, best, shown=0.5, higher_is_better=True)
    assert math.isclose(step.noise or 0, 0.0224508, rel_tol=1e-5)
    assert not step.released
    assert step.shown == 0.5
    better = _entry(3, [1, 0] * 45 + [1, 1] * 5)  # 0.55: mean 0.05 > se 0.0219
    step = ladder_step(better, best, shown=0.5, higher_is_better=True)
    assert step.released
    assert step.shown == 0.55


def test_a_lower_is_better_metric_is_released_when_the_loss_drops_beyond_the_noise() -> None:
    best = _entry(1, [1.0, 2.0] * 50)  # MSE 1.5
    new = _entry(2, [0.5, 1.0] * 50)  # MSE 0.75, every row better
    step = ladder_step(new, best, shown=1.5, higher_is_better=False)
    assert step.released
    assert step.shown == 0.75
    worse = _entry(3, [1.0, 2.0] * 49 + [0.0, 0.0])
    assert not ladder_step(worse, new, shown=0.75, higher_is_better=False).released


def test_a_submission_without_per_row_values_tells_nothing_new() -> None:
    best = _entry(1, [1, 0] * 50)
    blind = LadderEntry(key=2, score=0.99, values=None)
    step = ladder_step(blind, best, shown=0.5, higher_is_better=True)
    assert not step.released
    assert step.shown == 0.5


def test_the_replay_keeps_the_entry_behind_the_last_released_score() -> None:
    entries = [
        _entry(1, [1, 0] * 50),
        _entry(2, [1, 0] * 45 + [1, 1] * 3 + [0, 0] * 2),  # within the noise of 1
        _entry(3, [1, 0] * 40 + [1, 1] * 10),  # 0.60: released
        _entry(4, [1, 0] * 45 + [1, 1] * 5),  # 0.55: worse than 3
    ]
    steps, best = ladder_replay(entries, higher_is_better=True)
    assert best == 3
    assert [steps[k].shown for k in (1, 2, 3, 4)] == [0.5, 0.5, 0.6, 0.6]
    assert [steps[k].released for k in (1, 2, 3, 4)] == [True, False, True, False]


# The boosting attack: random label vectors, keep the ones whose feedback "improved", submit
# their majority vote. The labels are coin flips, so every submission's true accuracy is 1/2.
ROWS, ATTEMPTS, SEED = 4000, 700, 20151


def _attack(*, ladder: bool, seed: int = SEED) -> tuple[float, float, int, float | None]:
    """What the board finally shows for the attacker, the private accuracy of the submission
    behind it, how many of the random submissions the attacker kept, and the noise level: the
    median of the Ladder's thresholds (s / sqrt(n) of the paired differences) over the run."""
    rng = np.random.default_rng(seed)
    public_truth, private_truth = rng.integers(0, 2, ROWS), rng.integers(0, 2, ROWS)
    guesses = rng.integers(0, 2, (ATTEMPTS, 2 * ROWS))
    kept: list[np.ndarray] = []
    board: list[tuple[LadderEntry, np.ndarray]] = []  # what the team submitted, in order
    state: dict[str, LadderEntry | float | None] = {"best": None, "shown": None}
    noises: list[float] = []

    def submit(guess: np.ndarray) -> float:
        """The feedback the board gives for this submission (the Ladder's steps, in order)."""
        correct = (guess[:ROWS] == public_truth).astype(np.float32)
        entry = LadderEntry(len(board), float(correct.mean()), correct)
        board.append((entry, guess))
        if not ladder:
            return entry.score
        best, shown = state["best"], state["shown"]
        step = ladder_step(entry, best, shown=shown, higher_is_better=True)  # type: ignore[arg-type]
        noises.append(step.noise or 0.0)
        if step.released:
            state["best"], state["shown"] = entry, step.shown
        return step.shown or 0.0

    last = submit(guesses[0])
    for guess in guesses[1:]:
        feedback = submit(guess)
        if feedback > max(last, 0.5) if ladder else feedback > 0.5:
            kept.append(guess)
        last = max(last, feedback)
    shown = submit((np.mean(kept, axis=0) > 0.5).astype(int) if kept else guesses[0])
    if ladder:
        best = state["best"].key  # type: ignore[union-attr]
    else:  # a plain board shows the team's best public score
        best = max(range(len(board)), key=lambda k: board[k][0].score)
        shown = board[best][0].score
    behind = board[best][1]
    private = float((behind[ROWS:] == private_truth).mean())
    noise = float(np.median(noises)) if noises else None
    return shown, private, len(kept), noise


ATTACKS = 10  # seeds: one attack's gap is itself a draw, so compare averages


def test_the_boosting_attack_climbs_a_plain_board_but_not_the_ladder() -> None:
    """The noise level is the Ladder's threshold s / sqrt(n); here it is also the standard
    deviation of the public - private gap of one honest submission (two independent splits of
    4,000 coin flips), so |gap| < 2 noise levels is what row sampling alone gives 95 % of the
    time. The Ladder cannot be perfect: picking the best of 700 attempts leaks a little
    (Blum & Hardt bound it by a term growing with log k), which is why it is an average."""
    gaps: dict[str, list[float]] = {"plain": [], "ladder": []}
    noises = []
    for seed in range(SEED, SEED + ATTACKS):
        for name, on_ladder in (("plain", False), ("ladder", True)):
            public, private, _, noise = _attack(ladder=on_ladder, seed=seed)
            gaps[name].append(public - private)
            if noise is not None:
                noises.append(noise)
    noise = float(np.median(noises))
    plain, ladder = float(np.mean(gaps["plain"])), float(np.mean(gaps["ladder"]))
    print(  # noqa: T201 (the figures are the test's output: pytest -rP shows them)
        f"\n{ATTACKS} attacks, each {ROWS} public and {ROWS} private rows and {ATTEMPTS} random "
        f"submissions; noise level {noise:.4f}\n"
        f"plain board: mean gap {plain:+.4f} ({plain / noise:+.1f} noise levels), "
        f"largest {max(gaps['plain']):+.4f}\n"
        f"Ladder:      mean gap {ladder:+.4f} ({ladder / noise:+.1f} noise levels), "
        f"largest {max(gaps['ladder']):+.4f}"
    )
    assert plain > 5 * noise, f"a plain board should climb: {gaps}, noise {noise}"
    assert abs(ladder) < 2 * noise, f"the Ladder should not: {gaps}, noise {noise}"
    assert ladder < plain / 4
