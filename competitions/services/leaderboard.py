"""Keeps each team's leaderboard rows current as its submissions are scored.

Only the team whose submission changed is recomputed, from its own submissions, so the
cost of a new score does not grow with the size of the board. A version switch rebuilds
the whole board at once (leaderboard_rebuild: constant queries, one transaction). Ranks
are not stored: the selector computes them with a window function at read time. A finalized
competition's rows do not change (the freeze, competitions/services/freeze.py). On a Ladder
board (Competition.public_board) the public row is the one the Ladder released
(competitions/services/ladder.py), written here and nowhere else, with each submission's
told score (Submission.ladder_public_score).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Count, F, Max

from competitions.models import Competition, LeaderboardEntry, Score, Submission, Task, Team
from competitions.services.claims import claims_remember
from competitions.services.freeze import competition_is_final
from competitions.services.intervals import leaderboard_intervals_enqueue
from competitions.services.ladder import LadderOutcome, LadderSubmission, is_ladder, ladder_outcome
from scoring.metrics import metric_get


@dataclass
class _Candidate:
    submission_id: int
    created_at: datetime
    is_selected: bool
    scores: dict[str, dict[str, float | None]]
    influence: str = ""


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
            if LeaderboardEntry.objects.filter(team=team).delete()[0]:
                leaderboard_intervals_enqueue(competition_id=competition.pk)
            return
        task = competition.task
        # Late submissions are the team's own business: not in the board's counts either.
        stats = (
            Submission.objects.filter(team=team, is_late=False)
            .exclude(failure__in=Submission.UNCOUNTED_FAILURES)
            .exclude(status=Submission.Status.CANCELLED)
        )
        agg = stats.aggregate(last=Max("created_at"))
        board = _Board(
            task.primary_metric, competition.selection_limit, task.version, is_ladder(competition)
        )
        candidates = _candidates(team, task.version)
        ladder = _ladder(candidates, board)
        rows = _team_rows(candidates, board, entries=stats.count(), last=agg["last"], ladder=ladder)
        if ladder is not None:
            _told_save(ladder, Submission.objects.filter(team=team))
        before = dict(
            LeaderboardEntry.objects.filter(team=team).values_list("split", "submission_id")
        )
        for split in ("public", "private"):
            if split not in rows:
                LeaderboardEntry.objects.filter(team=team, split=split).delete()
                continue
            LeaderboardEntry.objects.update_or_create(
                competition=competition, team=team, split=split, defaults=rows[split]
            )
        after = {split: fields["submission_id"] for split, fields in rows.items()}
        if before != after:  # the board's intervals and ranks follow (a worker computes them)
            leaderboard_intervals_enqueue(competition_id=competition.pk)


@dataclass(frozen=True)
class _Board:
    metric: str
    selection_limit: int
    version: int
    ladder: bool = False

    @property
    def higher(self) -> bool:
        return metric_get(self.metric).higher_is_better


def _ladder(candidates: list[_Candidate], board: _Board) -> LadderOutcome | None:
    """On a Ladder board, the Ladder's replay of the team's public scores."""
    if not board.ladder:
        return None
    scored = _ranked(candidates, "public", board.metric, board.higher)  # finite scores only
    return ladder_outcome(
        (
            LadderSubmission(
                c.submission_id,
                c.created_at,
                float(c.scores["public"][board.metric] or 0),
                c.influence,
            )
            for c in scored
        ),
        metric=board.metric,
        higher_is_better=board.higher,
    )


def _told_save(ladder: LadderOutcome, submissions) -> None:  # type: ignore[no-untyped-def]
    """Store what the Ladder told the team after each submission (None: not on the board)."""
    current = dict(submissions.values_list("pk", "ladder_public_score"))
    changed = [
        Submission(pk=pk, ladder_public_score=ladder.told.get(pk))
        for pk, value in current.items()
        if ladder.told.get(pk) != value
    ]
    Submission.objects.bulk_update(changed, ["ladder_public_score"], batch_size=2000)


def _team_rows(
    candidates: list[_Candidate],
    board: _Board,
    *,
    entries: int,
    last: datetime | None,
    ladder: LadderOutcome | None = None,
) -> dict[str, dict]:
    """The team's leaderboard row fields per split it appears on (none: it is not ranked).
    On a Ladder board the public row is the released submission with its released score."""
    higher = board.higher
    public = _best(candidates, "public", board.metric, higher)
    if ladder is not None:
        public = next((c for c in candidates if c.submission_id == ladder.best_id), None)
    selected = _selected(candidates, board.selection_limit, board.metric, higher)
    private = _best(selected, "private", board.metric, higher)
    rows = {}
    for split, best in (("public", public), ("private", private)):
        if best is None:
            continue
        value = best.scores[split][board.metric]
        scores = best.scores[split]
        if split == "public" and ladder is not None:  # only the released score, rounded
            value = ladder.shown
            scores = {board.metric: value}
        assert value is not None
        rows[split] = {
            "submission_id": best.submission_id,
            "task_version": board.version,
            "score": value,
            "sort_key": value if higher else -value,
            "scores": scores,
            "submitted_at": best.created_at,
            "entries": entries,
            "last_submission_at": last or best.created_at,
        }
    return rows


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
        "submission__influence",
    )
    by_id: dict[int, _Candidate] = {}
    for sub_id, created_at, selected, split, metric, value, influence in rows:
        cand = by_id.setdefault(sub_id, _Candidate(sub_id, created_at, selected, {}, influence))
        cand.scores.setdefault(split, {})[metric] = value
    # In id order, so ties (same score, same time) resolve the same way on every path.
    return [by_id[k] for k in sorted(by_id)]


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


def leaderboard_rebuild(*, competition: Competition) -> int:
    """Recompute every team's rows from the scores under the ranked version, in one
    transaction and a constant number of queries whatever the number of teams (one
    INSERT on PostgreSQL; SQLite splits it in batches). Rows are the ones
    leaderboard_refresh_team would write. Returns the number of teams."""
    with transaction.atomic():
        task = Task.objects.get(competition_id=competition.pk)
        board = _Board(
            task.primary_metric, competition.selection_limit, task.version, is_ladder(competition)
        )
        # Locks every team: a concurrent per-team refresh waits, then sees the new version.
        teams = dict(
            Team.objects.select_for_update()
            .filter(competition_id=competition.pk)
            .values_list("pk", "is_banned")
        )
        stats = {
            row["team_id"]: (row["n"], row["last"])
            for row in Submission.objects.filter(competition_id=competition.pk, is_late=False)
            .exclude(failure__in=Submission.UNCOUNTED_FAILURES)
            .exclude(status=Submission.Status.CANCELLED)
            .values("team_id")
            .annotate(n=Count("pk"), last=Max("created_at"))
        }
        kept = _intervals_kept(competition)
        told: dict[int, float | None] = {}
        rows = []
        for team_id, candidates in _candidates_by_team(competition, board.version).items():
            if teams.get(team_id, True):  # banned (or gone): no rows
                continue
            entries, last = stats.get(team_id, (0, None))
            ladder = _ladder(candidates, board)
            if ladder is not None:
                told.update(ladder.told)
            team_rows = _team_rows(candidates, board, entries=entries, last=last, ladder=ladder)
            for split, fields in team_rows.items():
                same = (team_id, split, fields["submission_id"], fields["task_version"])
                rows.append(
                    LeaderboardEntry(
                        competition_id=competition.pk,
                        team_id=team_id,
                        split=split,
                        **fields,
                        **kept.get(same, {}),
                    )
                )
        LeaderboardEntry.objects.filter(competition_id=competition.pk).delete()
        LeaderboardEntry.objects.bulk_create(rows)
        if board.ladder:
            submissions = Submission.objects.filter(competition_id=competition.pk)
            _told_save(LadderOutcome(None, None, told), submissions)
        leaderboard_intervals_enqueue(competition_id=competition.pk)
    return len(teams)


INTERVAL_FIELDS = ("ci_low", "ci_high", "interval_submission_id")


def _intervals_kept(competition: Competition) -> dict[tuple, dict]:
    """The computed intervals of the rows a rebuild will write again unchanged (same team,
    split, submission and version), so that the worker recomputes only what changed."""
    rows = LeaderboardEntry.objects.filter(
        competition_id=competition.pk, interval_submission_id=F("submission_id")
    ).values("team_id", "split", "submission_id", "task_version", *INTERVAL_FIELDS)
    return {
        (r["team_id"], r["split"], r["submission_id"], r["task_version"]): {
            name: r[name] for name in INTERVAL_FIELDS
        }
        for r in rows.iterator(chunk_size=20_000)
    }


def _candidates_by_team(competition: Competition, version: int) -> dict[int, list[_Candidate]]:
    """_candidates of every team, from two queries streamed in chunks: the rankable
    submissions, then their scores (apart, so each submission's time is read once)."""
    rankable = Submission.objects.filter(
        competition_id=competition.pk,
        status=Submission.Status.SCORED,
        is_disqualified=False,
        is_late=False,
    )
    subs = {
        pk: (team_id, _Candidate(pk, created_at, selected, {}, influence))
        for pk, team_id, created_at, selected, influence in rankable.values_list(
            "pk", "team_id", "created_at", "is_selected", "influence"
        ).iterator(chunk_size=20_000)
    }
    scores = Score.objects.filter(
        submission__in=rankable.values("pk"), task_version=version
    ).values_list("submission_id", "split", "metric", "value")
    by_team: dict[int, dict[int, _Candidate]] = {}
    for sub_id, split, metric, value in scores.iterator(chunk_size=20_000):
        if sub_id not in subs:  # scored since the first query; its team's refresh follows
            continue
        team_id, cand = subs[sub_id]
        by_team.setdefault(team_id, {})[sub_id] = cand
        cand.scores.setdefault(split, {})[metric] = value
    return {t: [c[k] for k in sorted(c)] for t, c in by_team.items()}
