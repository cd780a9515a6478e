"""Keeps each team's leaderboard rows current as its submissions are scored.

Only the team whose submission changed is recomputed, from its own submissions, so the
cost of a new score does not grow with the size of the board. Ranks are not stored: the
selector computes them with a window function at read time. A finalized competition's rows
do not change (the freeze, competitions/services/freeze.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Max

from competitions.models import Competition, LeaderboardEntry, Score, Submission, Team
from competitions.services.claims import claims_remember
from competitions.services.freeze import competition_is_final
from scoring.metrics import metric_get


@dataclass
class _Candidate:
    submission_id: int
    created_at: datetime
    is_selected: bool
    scores: dict[str, dict[str, float | None]]


def leaderboard_refresh_team(*, team: Team) -> None:
    with transaction.atomic():
        # The final board stays as finalize left it; scores that arrive meanwhile are kept and
        # count from a reopen on (competitions/services/lifecycle.py).
        if competition_is_final(competition_id=team.competition_id):
            return
        # Serialises refreshes of one team, so two workers can't write stale rows.
        team = (
            Team.objects.select_for_update(of=("self",))
            .select_related("competition__task")
            .get(pk=team.pk)
        )
        competition = team.competition
        claims_remember(entries=LeaderboardEntry.objects.filter(team=team))
        if team.is_banned:
            LeaderboardEntry.objects.filter(team=team).delete()
            return
        task = competition.task
        higher = metric_get(task.primary_metric).higher_is_better
        candidates = _candidates(team, task.version)
        # Late submissions are the team's own business: not in the board's counts either.
        stats = (
            Submission.objects.filter(team=team, is_late=False)
            .exclude(failure__in=Submission.UNCOUNTED_FAILURES)
            .exclude(status=Submission.Status.CANCELLED)
        )
        agg = stats.aggregate(last=Max("created_at"))
        entries = stats.count()

        public = _best(candidates, "public", task.primary_metric, higher)
        selected = _selected(candidates, competition.selection_limit, task.primary_metric, higher)
        private = _best(selected, "private", task.primary_metric, higher)
        for split, best in (("public", public), ("private", private)):
            if best is None:
                LeaderboardEntry.objects.filter(team=team, split=split).delete()
                continue
            value = best.scores[split][task.primary_metric]
            assert value is not None
            LeaderboardEntry.objects.update_or_create(
                competition=competition,
                team=team,
                split=split,
                defaults={
                    "submission_id": best.submission_id,
                    "task_version": task.version,
                    "score": value,
                    "sort_key": value if higher else -value,
                    "scores": best.scores[split],
                    "submitted_at": best.created_at,
                    "entries": entries,
                    "last_submission_at": agg["last"] or best.created_at,
                },
            )


def _candidates(team: Team, version: int) -> list[_Candidate]:
    """Scored, rankable submissions of the team with their scores under the task version."""
    rows = Score.objects.filter(
        submission__team=team,
        submission__status=Submission.Status.SCORED,
        submission__is_disqualified=False,
        submission__is_late=False,
        task_version=version,
    ).values_list(
        "submission_id",
        "submission__created_at",
        "submission__is_selected",
        "split",
        "metric",
        "value",
    )
    by_id: dict[int, _Candidate] = {}
    for sub_id, created_at, selected, split, metric, value in rows:
        cand = by_id.setdefault(sub_id, _Candidate(sub_id, created_at, selected, {}))
        cand.scores.setdefault(split, {})[metric] = value
    return list(by_id.values())


def _ranked(cands: list[_Candidate], split: str, metric: str, higher: bool) -> list[_Candidate]:
    scored = [c for c in cands if _finite(c.scores.get(split, {}).get(metric))]

    def key(c: _Candidate) -> tuple[float, datetime]:
        value = c.scores[split][metric]
        assert value is not None
        # Best first; among equal scores the earlier submission wins.
        return (-value if higher else value, c.created_at)

    return sorted(scored, key=key)


def _best(cands: list[_Candidate], split: str, metric: str, higher: bool) -> _Candidate | None:
    ranked = _ranked(cands, split, metric, higher)
    return ranked[0] if ranked else None


def _selected(cands: list[_Candidate], limit: int, metric: str, higher: bool) -> list[_Candidate]:
    """The team's choice for the private board, or by default its best `limit` by public score."""
    chosen = [c for c in cands if c.is_selected]
    if chosen:
        return chosen[:limit]
    return _ranked(cands, "public", metric, higher)[:limit]


def _finite(value: float | None) -> bool:
    return value is not None and value == value and value not in (float("inf"), float("-inf"))


def competition_refresh_leaderboard(*, competition: Competition) -> int:
    """Recompute every team's rows, e.g. after the task version changed. Returns the team count."""
    teams = list(Team.objects.filter(competition=competition))
    for team in teams:
        leaderboard_refresh_team(team=team)
    return len(teams)
