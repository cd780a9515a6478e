"""Plots shared by several pages, drawn from stats reads with competitions/svg.py."""

from __future__ import annotations

from django.utils.safestring import SafeString

from competitions import stats, svg
from competitions.models import Competition, Team
from scoring.metrics import Metric

# The range each metric's values can take, for the plots' axes (None: unbounded that way).
METRIC_BOUNDS: dict[str, svg.Bounds] = {
    "accuracy": (0.0, 1.0),
    "balanced_accuracy": (0.0, 1.0),
    "f1": (0.0, 1.0),
    "f1_macro": (0.0, 1.0),
    "roc_auc": (0.0, 1.0),
    "average_precision": (0.0, 1.0),
    "log_loss": (0.0, None),
    "rmse": (0.0, None),
    "mse": (0.0, None),
    "mae": (0.0, None),
    "r2": (None, 1.0),
}


def metric_bounds(metric: Metric) -> svg.Bounds:
    return METRIC_BOUNDS.get(metric.name, svg.NO_BOUNDS)


def progress_plot(
    *, competition: Competition, team: Team, split: str, metric: Metric
) -> SafeString:
    """The team's scores over time (dots, best-so-far line) against the leader's best-so-far."""
    progress = stats.team_progress(competition=competition, team=team, split=split)
    higher = metric.higher_is_better
    mine_best = stats.best_so_far(progress.mine, higher)
    series = [svg.Series(f"{team.name} (your team)", progress.mine, "mine", line=mine_best)]
    if mine_best:
        desc = (
            f"{len(progress.mine)} ranked submissions of {team.name} on the {split} "
            f"leaderboard; its best {metric.label} is {mine_best[-1][1]:.4g}."
        )
    else:
        desc = f"{team.name} has no ranked submission on the {split} leaderboard yet."
    if progress.leader_is_mine:
        desc += " Your team leads."
    elif progress.leader:
        leader_best = stats.best_so_far(progress.leader, higher)
        series.append(
            svg.Series(f"{progress.leader_name} (leader)", leader_best, "leader", dots=False)
        )
        desc += f" The leader, {progress.leader_name}, has {leader_best[-1][1]:.4g}."
    return svg.timeline(
        id_prefix="progress",
        series=series,
        title=f"{metric.label} of your team's submissions over time, against the leader's",
        desc=desc,
        y_label=metric.label,
        bounds=metric_bounds(metric),
    )
