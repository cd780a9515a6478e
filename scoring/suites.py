"""A benchmark suite's board: many methods across many tasks, as pure functions.

Contract: `suite_board` (or `suite_board_arrays`, the same from arrays) takes the methods, the tasks (each with its metric, the constant
predictor's score on it and, optionally, the score counted as best) and the cells a method
has on a task (a score with its interval, or a failure); it returns the matrix and the
aggregates, rows sorted best first.

- A failed cell, and a missing one, counts as the constant predictor's score and is marked
  ("failed", "missing"). A row is complete when no cell is missing: a failure is a result.
- Ranks are per task, 1 = best in the metric's direction, ties sharing the average rank.
- The normalized score is (score - constant) / (best - constant): 0 is the constant
  predictor, 1 the best possible score (the metric's ideal, e.g. 1 for ROC AUC, 0 for
  RMSE, unless the task names another), negative worse than the constant predictor. It
  is oriented (higher is better) whatever the metric's direction, and so comparable
  across tasks.
- Aggregates per method: mean rank, mean normalized score, wins (tasks where it has the
  best score, shared ties included; an imputed cell never wins).
- `pivot` groups methods by a component tag ("model": "gradient boosting") and aggregates
  each group; `methods_with` lists the methods carrying one tag value.
- The board keeps its values as arrays: a row's cells (BoardCell) are made when first read,
  so that the aggregates and the statistics of a large board cost no object per cell.
- `suite_statistics`: the Friedman test, the Nemenyi critical difference and the groups of
  methods not significantly different, for the board's methods (scoring.cd_diagram draws
  them; scoring.rank_tests.pairwise_wilcoxon(board.normalized) tests every pair, its
  indices those of `board.methods`).

The constant predictor's score on a task comes from scoring.constant; the rank tests over
the board are in scoring.rank_tests (`board.ranks`, `board.normalized`). No Django here.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np
from scipy import stats

from scoring.metrics import BEST_POSSIBLE, metric_get
from scoring.rank_tests import ALPHA, Friedman, cliques, friedman, nemenyi_cd

Status = Literal["scored", "failed", "missing"]


@dataclass(frozen=True)
class SuiteTask:
    key: str
    metric: str  # a name in scoring.metrics.METRICS
    constant: float  # the constant predictor's score on the task
    best: float | None = None  # the score normalized to 1; None: the metric's best possible

    def __post_init__(self) -> None:
        metric_get(self.metric)  # unknown metric: KeyError naming the known ones
        if not math.isfinite(self.constant):
            raise ValueError(f"Task {self.key!r}: the constant predictor's score is not finite.")
        if self.best is None and self.metric not in BEST_POSSIBLE:
            raise ValueError(f"Task {self.key!r}: metric {self.metric!r} has no best value.")
        if self.top == self.constant:
            raise ValueError(f"Task {self.key!r}: the constant predictor scores the best score.")

    @property
    def higher_is_better(self) -> bool:
        return metric_get(self.metric).higher_is_better

    @property
    def top(self) -> float:
        return BEST_POSSIBLE[self.metric] if self.best is None else self.best

    def normalized(self, score: float) -> float:
        return (score - self.constant) / (self.top - self.constant)


@dataclass(frozen=True)
class Cell:
    """What a method has on a task: a score (its interval when known), or a failure."""

    score: float | None = None
    low: float | None = None
    high: float | None = None
    failed: bool = False


@dataclass(frozen=True)
class BoardCell:
    score: float  # the constant predictor's score unless status is "scored"
    status: Status
    rank: float  # 1 = best on the task
    normalized: float
    win: bool  # a scored cell with the task's best score (shared or not)
    low: float | None = None  # the interval, in the metric's units
    high: float | None = None
    normalized_low: float | None = None  # the interval, normalized (low <= high)
    normalized_high: float | None = None

    @property
    def imputed(self) -> bool:
        return self.status != "scored"


@dataclass(frozen=True, eq=False)
class _Columns:
    """The board's values per cell, methods (in the order given) x tasks: what a row's
    cells are made from when they are read."""

    scores: np.ndarray
    status: np.ndarray
    ranks: np.ndarray
    normalized: np.ndarray
    wins: np.ndarray
    low: np.ndarray
    high: np.ndarray
    normalized_low: np.ndarray
    normalized_high: np.ndarray

    def cells(self, i: int) -> tuple[BoardCell, ...]:
        values = (
            self.scores[i].tolist(),
            self.status[i].tolist(),
            self.ranks[i].tolist(),
            self.normalized[i].tolist(),
            self.wins[i].tolist(),
            self.low[i].tolist(),
            self.high[i].tolist(),
            self.normalized_low[i].tolist(),
            self.normalized_high[i].tolist(),
        )
        with gc_paused():  # a row of many new objects that make no cycles
            return tuple(map(_board_cell, *values))


@dataclass(frozen=True, eq=False)
class MethodRow:
    """A method's row: its aggregates, and its cells made when first read (the
    aggregates and the statistics need none: a board of 500 x 50 would make 25 000)."""

    method: str
    mean_rank: float
    mean_normalized: float
    wins: int
    _columns: _Columns = field(repr=False)
    _index: int = field(repr=False)

    @cached_property
    def cells(self) -> tuple[BoardCell, ...]:  # in the board's task order
        return self._columns.cells(self._index)

    @property
    def complete(self) -> bool:
        return not bool((self._columns.status[self._index] == "missing").any())

    @property
    def imputed(self) -> int:
        return int((self._columns.status[self._index] != "scored").sum())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MethodRow):
            return NotImplemented
        return (self.method, self.mean_rank, self.mean_normalized, self.wins, self.cells) == (
            other.method,
            other.mean_rank,
            other.mean_normalized,
            other.wins,
            other.cells,
        )

    __hash__ = object.__hash__

    def __getstate__(self) -> dict:
        # Pickled without its cells (kept matrices are pickled): they are made again.
        state = dict(self.__dict__)
        state.pop("cells", None)
        return state


@dataclass(frozen=True, eq=False)
class SuiteBoard:
    tasks: tuple[SuiteTask, ...]
    rows: tuple[MethodRow, ...]  # best first: mean rank, then mean normalized score, then name
    _columns: _Columns = field(repr=False)
    _order: np.ndarray = field(repr=False)  # the rows' indices in _columns

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(r.method for r in self.rows)

    @property
    def ranks(self) -> np.ndarray:
        """Tasks x methods (rows' order): the input of scoring.rank_tests.friedman."""
        return self._columns.ranks[self._order].T

    @property
    def normalized(self) -> np.ndarray:
        """Tasks x methods (rows' order), higher is better: for pairwise Wilcoxon tests."""
        return self._columns.normalized[self._order].T

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SuiteBoard):
            return NotImplemented
        return (self.tasks, self.rows) == (other.tasks, other.rows)

    __hash__ = object.__hash__


def _cells(
    methods: Sequence[str], tasks: Sequence[SuiteTask], cells: Mapping[tuple[str, str], Cell]
) -> tuple[np.ndarray, list[list[Cell | None]]]:
    """The scores (constant predictor's where imputed) and the given cells, methods x tasks."""
    known_methods, known_tasks = set(methods), {t.key for t in tasks}
    if len(known_methods) != len(methods) or len(known_tasks) != len(tasks):
        raise ValueError("Methods and tasks must be unique.")
    for method, task in cells:
        if method not in known_methods or task not in known_tasks:
            raise ValueError(f"Cell ({method!r}, {task!r}) names an unknown method or task.")
    grid = [[cells.get((m, t.key)) for t in tasks] for m in methods]
    scores = np.empty((len(methods), len(tasks)))
    for i, row in enumerate(grid):
        for j, cell in enumerate(row):
            if cell is not None and not cell.failed and cell.score is not None:
                if not math.isfinite(cell.score):
                    raise ValueError(f"Cell ({methods[i]!r}, {tasks[j].key!r}) is not finite.")
                scores[i, j] = cell.score
            else:
                scores[i, j] = tasks[j].constant
    return scores, grid


def _status(cell: Cell | None) -> Status:
    if cell is None or (cell.score is None and not cell.failed):
        return "missing"
    return "failed" if cell.failed else "scored"


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic collector off for a block that makes many objects that make no cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _intervals(grid: list[list[Cell | None]], scored: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The scored cells' interval bounds, methods x tasks (NaN where there is none)."""
    low = np.full(scored.shape, np.nan)
    high = np.full(scored.shape, np.nan)
    for i, j in zip(*np.nonzero(scored), strict=True):
        cell = grid[i][j]
        if cell is not None and cell.low is not None and cell.high is not None:
            low[i, j], high[i, j] = cell.low, cell.high
    return low, high


def _board_cell(
    score: float,
    status: Status,
    rank: float,
    normalized: float,
    win: bool,
    low: float,
    high: float,
    n_low: float,
    n_high: float,
) -> BoardCell:
    # Made without the frozen dataclass's __init__ (one object.__setattr__ per field): the
    # board has a cell per method and task, and making them is most of its cost.
    cell = object.__new__(BoardCell)
    known = low == low  # NaN: no interval
    cell.__dict__.update(
        score=score,
        status=status,
        rank=rank,
        normalized=normalized,
        win=win,
        low=low if known else None,
        high=high if known else None,
        normalized_low=n_low if known else None,
        normalized_high=n_high if known else None,
    )
    return cell


def suite_board(
    methods: Sequence[str],
    tasks: Sequence[SuiteTask],
    cells: Mapping[tuple[str, str], Cell],
    *,
    drop_incomplete: bool = False,
) -> SuiteBoard:
    """The board of `methods` x `tasks` from cells keyed (method, task key); see the module
    docstring. `drop_incomplete` leaves out, before ranking, the methods with a missing cell."""
    if not tasks:
        raise ValueError("A suite board needs at least one task.")
    scores, grid = _cells(methods, tasks, cells)
    status = np.array([[_status(c) for c in row] for row in grid], dtype=object).reshape(
        scores.shape
    )
    low, high = _intervals(grid, status == "scored")
    return _board(list(methods), tasks, scores, status, low, high, drop_incomplete)


def suite_board_arrays(
    methods: Sequence[str],
    tasks: Sequence[SuiteTask],
    scores: np.ndarray,
    status: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    *,
    drop_incomplete: bool = False,
) -> SuiteBoard:
    """`suite_board` from arrays, methods x tasks, without a Cell per cell (a board of
    500 x 50 is 25 000 of them): `status` holds "scored", "failed" or "missing"; `scores`
    the scored cells' scores (anything elsewhere); `low` and `high` their intervals (NaN
    where there is none). The same board as `suite_board` from the same cells."""
    if not tasks:
        raise ValueError("A suite board needs at least one task.")
    if len(set(methods)) != len(methods) or len({t.key for t in tasks}) != len(tasks):
        raise ValueError("Methods and tasks must be unique.")
    shape = (len(methods), len(tasks))
    if any(np.shape(a) != shape for a in (scores, status, low, high)):
        raise ValueError(f"Every array must be methods x tasks, {shape}.")
    scored = status == "scored"
    if not np.isfinite(scores[scored]).all():
        raise ValueError("A scored cell is not finite.")
    constant = np.broadcast_to(np.array([t.constant for t in tasks], dtype=float), shape)
    imputed = np.where(scored, scores, constant).astype(float)
    known = scored & ~np.isnan(low) & ~np.isnan(high)
    return _board(
        list(methods),
        tasks,
        imputed,
        np.asarray(status, dtype=object),
        np.where(known, low, np.nan),
        np.where(known, high, np.nan),
        drop_incomplete,
    )


def _board(
    methods: list[str],
    tasks: Sequence[SuiteTask],
    scores: np.ndarray,
    status: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    drop_incomplete: bool,
) -> SuiteBoard:
    """The board from its arrays, methods x tasks: `scores` imputed (the constant
    predictor's where not scored), the intervals NaN where none."""
    if drop_incomplete:
        keep = [i for i in range(len(methods)) if not (status[i] == "missing").any()]
        methods = [methods[i] for i in keep]
        scores, status, low, high = scores[keep], status[keep], low[keep], high[keep]
    # Oriented so that higher is better, then ranked per task: 1 = best, ties averaged.
    oriented = np.where([t.higher_is_better for t in tasks], scores, -scores)
    ranks = stats.rankdata(-oriented, axis=0) if len(methods) else oriented
    best = oriented.max(axis=0) if len(methods) else oriented
    constant = np.array([t.constant for t in tasks])
    span = np.array([t.top for t in tasks]) - constant
    normalized = (scores - constant) / span
    wins = (status == "scored") & (oriented == best)
    n_low, n_high = (low - constant) / span, (high - constant) / span
    columns = _Columns(
        scores=scores,
        status=status,
        ranks=ranks,
        normalized=normalized,
        wins=wins,
        low=low,
        high=high,
        normalized_low=np.fmin(n_low, n_high),
        normalized_high=np.fmax(n_low, n_high),
    )
    mean_rank = ranks.mean(axis=1).tolist()
    mean_normalized = normalized.mean(axis=1).tolist()
    won = wins.sum(axis=1).tolist()
    # Best first: mean rank, then mean normalized score, then name.
    order = sorted(
        range(len(methods)), key=lambda i: (mean_rank[i], -mean_normalized[i], methods[i])
    )
    rows = tuple(
        MethodRow(
            method=methods[i],
            mean_rank=mean_rank[i],
            mean_normalized=mean_normalized[i],
            wins=won[i],
            _columns=columns,
            _index=i,
        )
        for i in order
    )
    return SuiteBoard(
        tasks=tuple(tasks), rows=rows, _columns=columns, _order=np.array(order, dtype=np.intp)
    )


@dataclass(frozen=True)
class SuiteStatistics:
    friedman: Friedman
    alpha: float
    cd: float  # Nemenyi's critical difference at alpha
    groups: tuple[tuple[str, ...], ...]  # methods not significantly different, best first


def suite_statistics(board: SuiteBoard, *, alpha: float = ALPHA) -> SuiteStatistics:
    """The rank tests over the board (two tasks and two methods at least)."""
    test = friedman(board.ranks)
    names = board.methods
    cd = nemenyi_cd(test.methods, test.tasks, alpha)
    groups = tuple(tuple(names[i] for i in g) for g in cliques(test.mean_ranks, cd))
    return SuiteStatistics(friedman=test, alpha=alpha, cd=cd, groups=groups)


Components = Mapping[str, Mapping[str, str | Sequence[str]]]  # method -> tag -> value(s)


def _values(components: Components, method: str, tag: str) -> tuple[str, ...]:
    value = components.get(method, {}).get(tag)
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def methods_with(methods: Sequence[str], components: Components, tag: str, value: str) -> list[str]:
    """The methods, in the given order, whose `tag` component is (or includes) `value`."""
    return [m for m in methods if value in _values(components, m, tag)]


@dataclass(frozen=True)
class Group:
    value: str | None  # the tag's value; None for the methods without the tag
    methods: tuple[str, ...]  # best first
    mean_rank: float  # the mean of its methods' mean ranks
    mean_normalized: float  # the mean of its methods' mean normalized scores
    wins: int  # tasks won by at least one of its methods
    best: str  # its best method


def pivot(board: SuiteBoard, components: Components, tag: str) -> list[Group]:
    """The board's methods grouped by their `tag` component (a method with several values
    is in each of their groups), each group aggregated over its methods' rows on this
    board, groups best first (mean rank). Ranks stay those of the whole board."""
    members: dict[str | None, list[MethodRow]] = {}
    for row in board.rows:
        for value in _values(components, row.method, tag) or (None,):
            members.setdefault(value, []).append(row)
    groups = []
    for value, rows in members.items():
        won = {j for r in rows for j, c in enumerate(r.cells) if c.win}
        groups.append(
            Group(
                value=value,
                methods=tuple(r.method for r in rows),
                mean_rank=float(np.mean([r.mean_rank for r in rows])),
                mean_normalized=float(np.mean([r.mean_normalized for r in rows])),
                wins=len(won),
                best=rows[0].method,
            )
        )
    groups.sort(key=lambda g: (g.mean_rank, -g.mean_normalized, g.value is None, g.value or ""))
    return groups
