"""The matrix (suites.selectors.suite_matrix) as plain data: the one shape the API's JSON,
its CSV and the matrix page all show, so they cannot disagree.

Rows are the board's (best first); a row's cells follow `tasks` (the aggregated tasks, in
the suite's order); a task whose constant predictor is not scored yet is listed in
`waiting` and has no column. An imputed cell (failed, missing) carries the constant
predictor's score and says so in `status`. `pivot` groups the rows by one component tag;
`wilcoxon` is every pair's signed-rank test, Holm-adjusted, on request only (it is the
costly part).
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

from scoring import cd_diagram
from scoring import suites as engine
from scoring.metrics import metric_get
from scoring.rank_tests import pairwise_wilcoxon
from suites.selectors import SuiteMatrix


def matrix_data(matrix: SuiteMatrix, *, pivot_tag: str = "", wilcoxon: bool = False) -> dict:
    board = matrix.board
    by_key = {t.key: t for t in matrix.tasks}
    tasks = []
    for t in board.tasks if board else ():
        task = by_key[t.key]
        tasks.append(
            {
                "key": t.key,
                "position": task.position,
                "competition": task.competition.slug,
                "metric": t.metric,
                "higher_is_better": metric_get(t.metric).higher_is_better,
                "constant": t.constant,
                "best": t.top,
            }
        )
    rows = [_row(matrix, r, board) for r in board.rows] if board else []
    return {
        "suite": matrix.suite.slug,
        "tasks": tasks,
        "waiting": [t.key for t in matrix.waiting],
        "rows": rows,
        "statistics": _statistics(matrix),
        "pivot": _pivot(matrix, pivot_tag) if pivot_tag and board else None,
        "wilcoxon": wilcoxon_pairs(matrix) if wilcoxon else None,
    }


def _row(matrix: SuiteMatrix, row: engine.MethodRow, board: engine.SuiteBoard) -> dict:
    method = matrix.methods[row.method]
    cells = []
    for task, cell in zip(board.tasks, row.cells, strict=True):
        cells.append(
            {
                "task": task.key,
                "score": cell.score,
                "status": cell.status,
                "rank": cell.rank,
                "normalized": cell.normalized,
                "win": cell.win,
                "low": cell.low,
                "high": cell.high,
                "normalized_low": cell.normalized_low,
                "normalized_high": cell.normalized_high,
                "submission_id": matrix.submissions.get((row.method, task.key)),
                "pending": matrix.pending.get((row.method, task.key), 0),
                # Shown from its scores, its interval not computed yet (suites/cells.py).
                "stale": (row.method, task.key) in matrix.stale,
            }
        )
    return {
        "method": row.method,
        "method_id": method.pk,
        "components": method.components,
        "cells": cells,
        "mean_rank": row.mean_rank,
        "mean_normalized": row.mean_normalized,
        "wins": row.wins,
        "complete": row.complete,
        "imputed": row.imputed,
    }


def _statistics(matrix: SuiteMatrix) -> dict | None:
    stats = matrix.statistics
    if stats is None:
        return None
    friedman = {
        name: _finite(value) if isinstance(value, float) else value
        for name, value in asdict(stats.friedman).items()
    }
    return {
        "friedman": friedman,
        "alpha": stats.alpha,
        "cd": stats.cd,
        "groups": [list(g) for g in stats.groups],
        "sentence": friedman_sentence(matrix),
    }


def _finite(value: float) -> float | None:
    """JSON has no infinity: Iman-Davenport's F is infinite when every task ranks the
    methods alike (its p-value is then 0); null says "unbounded"."""
    return value if math.isfinite(value) else None


def friedman_sentence(matrix: SuiteMatrix) -> str:
    """The Friedman test's result in one plain sentence (empty below 2 methods x 2 tasks)."""
    stats = matrix.statistics
    if stats is None:
        return ""
    f = stats.friedman
    verdict = (
        "the methods differ significantly"
        if f.f_p <= stats.alpha
        else "no significant difference between the methods"
    )
    # F is infinite when every task ranks the methods alike.
    f_value = f"{f.f:.2f}" if math.isfinite(f.f) else "∞ (every task ranks the methods alike)"
    return (
        f"Across {f.tasks} tasks, the Friedman test finds {verdict} "
        f"(Iman-Davenport F({f.df1}, {f.df2}) = {f_value}, p = {f.f_p:.3g}; "
        f"chi-square = {f.chi2:.2f}, p = {f.chi2_p:.3g}); two methods whose mean ranks differ "
        f"by at least {stats.cd:.2f} (Nemenyi, alpha {stats.alpha:g}) differ significantly."
    )


def _pivot(matrix: SuiteMatrix, tag: str) -> dict:
    assert matrix.board is not None
    components = {name: m.components for name, m in matrix.methods.items()}
    groups = engine.pivot(matrix.board, components, tag)
    return {"tag": tag, "groups": [asdict(g) | {"methods": list(g.methods)} for g in groups]}


def wilcoxon_pairs(matrix: SuiteMatrix) -> list[dict] | None:
    """Every pair's Wilcoxon signed-rank test over the tasks' normalized scores, Holm-
    adjusted (alpha 0.05); None below 2 methods x 2 tasks."""
    board = matrix.board
    if board is None or matrix.statistics is None:
        return None
    names = board.methods
    return [
        {
            "a": names[t.a],
            "b": names[t.b],
            "statistic": t.statistic,
            "p_value": t.p_value,
            "p_holm": t.p_holm,
            "significant": t.significant,
            "a_better": t.a_better,
        }
        for t in pairwise_wilcoxon(board.normalized)
    ]


def component_tags(matrix: SuiteMatrix) -> list[str]:
    """Every tag some method of the suite carries, sorted: the pivot's choices."""
    return sorted({tag for m in matrix.methods.values() for tag in m.components})


def cd_svg(matrix: SuiteMatrix, *, id_prefix: str = "cd") -> str | None:
    """The critical-difference diagram, or None below 2 methods x 2 tasks."""
    stats, board = matrix.statistics, matrix.board
    if stats is None or board is None:
        return None
    return cd_diagram.cd_diagram(
        names=board.methods,
        mean_ranks=stats.friedman.mean_ranks,
        cd=stats.cd,
        tasks=stats.friedman.tasks,
        title=f"Critical-difference diagram of {matrix.suite.title}",
        id_prefix=id_prefix,
        alpha=stats.alpha,
    )


def csv_table(data: dict) -> dict[str, Any]:
    """The matrix as CSV rows (competitions.api.renderers.CSVRenderer's shape): a row per
    method, best first; its aggregates, then per task the score, status, normalized
    score, rank and interval."""
    columns = ["method", "mean_rank", "mean_normalized", "wins", "complete"]
    for t in data["tasks"]:
        key = t["key"]
        columns += [key, f"{key}:status", f"{key}:normalized", f"{key}:rank"]
        columns += [f"{key}:low", f"{key}:high"]
    rows = []
    for r in data["rows"]:
        line = [r["method"], r["mean_rank"], r["mean_normalized"], r["wins"], r["complete"]]
        for c in r["cells"]:
            line += [c["score"], c["status"], c["normalized"], c["rank"], c["low"], c["high"]]
        rows.append(line)
    return {"csv_columns": columns, "csv_rows": rows}
