"""The Ladder's view of one team's public scores, for a competition whose public board is a
Ladder (Competition.public_board; the decision is scoring.ladder's, pure).

Contract: `ladder_outcome(submissions, metric=..., higher_is_better=...)` replays the team's
rankable submissions in the order they were made (created_at, then id: the same answer
whatever order they were scored in) with their public scores and stored per-row values
(Submission.influence, scoring.influence), and returns the submission behind the score the
board shows, that score, and what the team was told after each submission (stored in
Submission.ladder_public_score, the only public score a page or API shows on such a board).
A submission without readable per-row values for the primary metric is never released
except as the team's first score.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from competitions.models import Competition, Submission
from scoring.influence import influence_load
from scoring.ladder import LadderEntry, ladder_replay

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LadderSubmission:
    submission_id: int
    created_at: datetime
    public_score: float
    influence: str  # the stored file's name ("" when none)


@dataclass(frozen=True)
class LadderOutcome:
    best_id: int | None  # the submission behind the shown score
    shown: float | None
    told: dict[int, float | None]  # submission id -> the public score shown after it


def ladder_outcome(
    submissions: Iterable[LadderSubmission], *, metric: str, higher_is_better: bool
) -> LadderOutcome:
    ordered = sorted(submissions, key=lambda s: (s.created_at, s.submission_id))
    entries = [
        LadderEntry(
            key=s.submission_id,
            score=s.public_score,
            values=values,
            transform=transform,
        )
        for s in ordered
        for values, transform in [_public_values(s, metric)]
    ]
    steps, best = ladder_replay(entries, higher_is_better=higher_is_better)
    told = {key: step.shown for key, step in steps.items()}
    return LadderOutcome(
        best_id=best, shown=told.get(best) if best is not None else None, told=told
    )


def _public_values(submission: LadderSubmission, metric: str):  # type: ignore[no-untyped-def]
    """The submission's public per-row values for the metric and their transform, or None."""
    if not submission.influence:
        return None, "identity"
    storage = Submission._meta.get_field("influence").storage  # type: ignore[attr-defined]
    try:
        with storage.open(submission.influence, "rb") as handle:
            found = influence_load(handle.read()).get("public")
    except (OSError, ValueError) as exc:
        log.warning(
            "Ladder: no per-row values for submission %s: %s", submission.submission_id, exc
        )
        return None, "identity"
    if found is None or found.metric != metric:
        return None, "identity"
    return found.values, found.transform


def is_ladder(competition: Competition) -> bool:
    return competition.public_board == Competition.PublicBoard.LADDER
