"""The matrix's stored cells as the engine's arrays (suites/selectors.py computes the
matrix from them).

Contract: `cells_read` returns the suite's stored cells, each with whether its values are
fresh (computed for the submission the cell shows, on its task's board split, under its
ranked version, as suites.cells.cell_is_fresh says); with `since`, only the cells written
after the suite's matrix version `since` (SuiteCell.revision: a cell written in the
transaction that counted the version up to V carries V). A `Grid` holds the fresh cells'
values, methods x the tasks that can be aggregated; `put` applies rows, later ones
replacing earlier ones, so a grid plus the rows written since equals a grid of every row.
`stale_cells` gives the stale cells' values from their submissions, without an interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.db import connection

from competitions.models import Submission
from scoring import suites as engine
from suites.cells import primary_scores
from suites.models import SuiteTask

CellKey = tuple[int, int]  # (method id, suite task id)

# Each stored cell: the submission it shows and its computed values, with whether these are
# fresh. One statement; `since` adds "AND c.revision > %s" (index suitecell_since).
CELLS_SQL = """
SELECT c.method_id, c.suite_task_id, c.latest_id,
    COALESCE(c.submission_id = c.latest_id AND c.task_version = t.version
        AND c.split = CASE WHEN comp.finalized_at IS NULL THEN 'public' ELSE 'private' END,
        false),
    c.status, c.score, c.ci_low, c.ci_high
FROM suites_suitecell c
JOIN suites_suitetask st ON st.id = c.suite_task_id
JOIN competitions_competition comp ON comp.id = st.competition_id
JOIN competitions_task t ON t.competition_id = st.competition_id
WHERE st.suite_id = %s
"""
SINCE = "AND c.revision > %s"


def cells_read(*, suite_id: int, since: int | None = None) -> list[tuple]:
    """CELLS_SQL's rows: (method id, task id, submission, fresh, status, score, low, high)."""
    with connection.cursor() as cursor:
        if since is None:
            cursor.execute(CELLS_SQL, [suite_id])
        else:
            cursor.execute(CELLS_SQL + SINCE, [suite_id, since])
        return cursor.fetchall()


@dataclass
class Grid:
    """The engine's arrays, methods (by id, in order) x the tasks that can be aggregated."""

    rows: dict[int, int]  # method id -> row
    columns: dict[int, int]  # task id -> column
    scores: np.ndarray
    status: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def empty(cls, method_ids: list[int], task_ids: list[int]) -> Grid:
        shape = (len(method_ids), len(task_ids))
        return cls(
            rows={m: i for i, m in enumerate(method_ids)},
            columns={t: j for j, t in enumerate(task_ids)},
            scores=np.zeros(shape),
            status=np.full(shape, "missing", dtype=object),
            low=np.full(shape, np.nan),
            high=np.full(shape, np.nan),
        )

    def copy(self) -> Grid:
        """A copy to change (a kept matrix's grid may be read by other threads)."""
        return Grid(
            rows=self.rows,  # never changed
            columns=self.columns,
            scores=self.scores.copy(),
            status=self.status.copy(),
            low=self.low.copy(),
            high=self.high.copy(),
        )

    def put(self, cells: list[tuple]) -> None:
        """cells_read's fresh rows on the grid's methods and tasks (the stale are `set`)."""
        fresh = [c for c in cells if c[3] and c[0] in self.rows and c[1] in self.columns]
        if not fresh:
            return
        methods, tasks, _submissions, _fresh, status, score, low, high = zip(*fresh, strict=True)
        at = (
            np.fromiter(map(self.rows.__getitem__, methods), dtype=np.intp, count=len(fresh)),
            np.fromiter(map(self.columns.__getitem__, tasks), dtype=np.intp, count=len(fresh)),
        )
        # A cell twice (rows read twice over): numpy keeps the last, as a later row should.
        self.status[at] = status
        self.scores[at] = np.array(score, dtype=float)
        self.low[at] = np.array(low, dtype=float)
        self.high[at] = np.array(high, dtype=float)

    def set(self, method_id: int, task_id: int, cell: engine.Cell) -> None:
        i, j = self.rows[method_id], self.columns[task_id]
        failed = "failed" if cell.failed else "missing"
        self.status[i, j] = "scored" if cell.score is not None and not cell.failed else failed
        self.scores[i, j] = np.nan if cell.score is None else cell.score
        self.low[i, j] = self.high[i, j] = np.nan


def stale_cells(
    stale: dict[CellKey, int],
    task_by_id: dict[int, SuiteTask],
    constants: dict[int, float],
) -> dict[CellKey, engine.Cell]:
    """Stale cells as their submissions say, without the interval a worker will add: a
    failure, the score on the board's split and version, or missing (none, or not
    finished: being scored again). Two queries."""
    statuses = dict(Submission.objects.filter(pk__in=stale.values()).values_list("pk", "status"))
    scores = primary_scores(
        {key: (submission, statuses.get(submission, "")) for key, submission in stale.items()},
        task_by_id,
    )
    cells = {}
    for (method_id, task_id), submission in stale.items():
        if task_id not in constants:
            continue
        status = statuses.get(submission)
        score = scores.get(submission) if status == Submission.Status.SCORED else None
        cells[(method_id, task_id)] = engine.Cell(
            score=score, failed=status == Submission.Status.FAILED
        )
    return cells
