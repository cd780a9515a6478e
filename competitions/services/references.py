"""Reference rows on every board: the platform's own predictions, scored like submissions.

Contract: when a competition is created from a bundle, and when a task version becomes
ranked, `references_enqueue` asks a worker (judging/references.py) to make and score the
references of the ranked version (scoring/baselines.py): the constant predictor and a
simple model. The worker hands each result to `reference_record`, which keeps it as a
ReferenceResult (once per version and kind: a duplicate task records nothing new) with its
interval on each split, drawn with the board's resamples, and then `references_publish`
copies the ranked version's results onto each board's BoardStatistics row, where the board
reads them with its bounds (no query of their own; the row's trigger counts the board
version up). A version switch publishes at once what is already known of the new version.

A reference is never a team: it is in no count, quota, rank, rank interval, shake-up or
prize, because none of those reads ReferenceResult or BoardStatistics.references.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import numpy as np
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from competitions.models import BoardStatistics, Competition, ReferenceResult
from competitions.services.intervals import board_statistics_get, bootstrap_plan
from competitions.services.outbox import enqueue
from scoring.influence import RowInfluence, influence_dump
from scoring.metrics import RANGE
from scoring.statistics import bootstrap_interval

log = logging.getLogger(__name__)
REFERENCES_TASK = "judging.tasks.references_compute_task"
SPLITS = ("public", "private")


def references_enqueue(*, competition_id: int, queue: str = "") -> None:
    """Ask a worker of `queue` (the task's, whose workers have its scorer) to make the
    ranked version's references once the caller commits."""
    enqueue(REFERENCES_TASK, [competition_id], queue=queue)


@dataclass(frozen=True)
class ReferenceOutcome:
    """What the worker found for one reference (judging/references.py)."""

    kind: str
    label: str
    status: str  # ReferenceResult.Status
    reason: str = ""
    scores: dict[str, dict[str, float | None]] | None = None
    row_values: np.ndarray | None = None
    influence: dict[str, RowInfluence] | None = None
    scorer_name: str = ""


def references_missing(*, competition: Competition) -> list[str]:
    """The kinds whose result for the ranked version is not recorded yet."""
    done = set(
        ReferenceResult.objects.filter(
            competition=competition, task_version=competition.task.version
        ).values_list("kind", flat=True)
    )
    return [k for k in ReferenceResult.Kind.values if k not in done]


def reference_record(
    *, competition: Competition, task_version: int, outcome: ReferenceOutcome
) -> ReferenceResult | None:
    """Keep one reference's result for `task_version` and publish the boards. None when it
    was recorded already (a duplicate task)."""
    result = ReferenceResult(
        competition=competition,
        task_version=task_version,
        kind=outcome.kind,
        label=outcome.label[:100],
        status=outcome.status,
        reason=outcome.reason[:300],
        scores=outcome.scores or {},
        scorer_name=outcome.scorer_name[:100],
        computed_at=timezone.now(),
    )
    result.intervals = _intervals(competition, outcome.influence or {})
    name = f"{competition.pk}-v{task_version}-{outcome.kind}"
    if outcome.row_values is not None:
        buffer = io.BytesIO()
        np.save(buffer, outcome.row_values.astype(np.float32, copy=False), allow_pickle=False)
        result.row_values.save(f"{name}.npy", ContentFile(buffer.getvalue()), save=False)
    if outcome.influence:
        result.influence.save(
            f"{name}.npz", ContentFile(influence_dump(outcome.influence)), save=False
        )
    result.full_clean()
    try:
        with transaction.atomic():
            result.save()
    except IntegrityError:  # recorded by another worker meanwhile
        for field in (result.row_values, result.influence):
            if field:
                field.delete(save=False)
        return None
    # The board shows the version ranked now, which may have changed while this was made.
    competition.task.refresh_from_db(fields=["version"])
    references_publish(competition=competition)
    return result


def _intervals(
    competition: Competition, influence: dict[str, RowInfluence]
) -> dict[str, list[float]]:
    """The primary metric's interval on each split, with the board's seed and resamples."""
    intervals: dict[str, list[float]] = {}
    for split in SPLITS:
        found = influence.get(split)
        if found is None or found.metric != competition.task.primary_metric:
            continue
        stats = board_statistics_get(competition_id=competition.pk, split=split)
        plan = bootstrap_plan(len(found.values), stats.seed, stats.resamples)
        low, high = bootstrap_interval(
            found.values,
            plan,
            transform=found.transform,
            level=stats.level,
            within=RANGE.get(found.metric),
        )
        intervals[split] = [float(low), float(high)]
    return intervals


def references_publish(*, competition: Competition) -> int:
    """Copy the ranked version's reference results onto each board's statistics row (what
    the board shows), writing only a board whose rows change. Returns how many results
    were published per board. Two reads when nothing changes, whatever the board."""
    version = competition.task.version
    primary = competition.task.primary_metric
    results = list(
        ReferenceResult.objects.filter(competition=competition, task_version=version).order_by(
            "kind"
        )
    )
    shown = dict(
        BoardStatistics.objects.filter(competition=competition).values_list("split", "references")
    )
    for split in SPLITS:
        summary = [_summary(r, split, primary) for r in results]
        if shown.get(split, []) == summary:  # an unchanged board keeps its version
            continue
        stats = board_statistics_get(competition_id=competition.pk, split=split)
        BoardStatistics.objects.filter(pk=stats.pk).update(references=summary)
    return len(results)


def _summary(result: ReferenceResult, split: str, primary: str) -> dict:
    scores = result.scores.get(split, {})
    low, high = result.intervals.get(split, [None, None])
    # A failure's details (a scorer's message may name test ids) stay with the organizers.
    failed = result.status == ReferenceResult.Status.FAILED
    return {
        "kind": result.kind,
        "label": result.label,
        "task_version": result.task_version,
        "status": result.status,
        "reason": "it could not be scored" if failed else result.reason,
        "score": scores.get(primary),
        "scores": scores,
        "ci_low": low,
        "ci_high": high,
    }
