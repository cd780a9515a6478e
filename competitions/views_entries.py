"""The claim page of a leaderboard entry: one sentence saying what was measured, the key
facts (scorer, data version, hardware), the method card as declared, the reproducibility
bundle, and the manifest behind a disclosure and as a download (competitions/entry_facts.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from competitions.entry_facts import entry_facts, manifest_filename, manifest_for_reader
from competitions.markdown import render_markdown
from competitions.models import LeaderboardEntry, Membership, Replication, Score, Submission
from competitions.permissions import NotFound, access_entry, is_organizer
from competitions.selectors import board_statistics_read, plausible_ranks, private_split_visible
from competitions.selectors_runs import scoring_run_for_claim, scoring_run_latest
from scoring.metrics import metric_get


@dataclass
class Claim:
    split: str
    sentence: str
    uncertainty: str = ""  # the interval and plausible ranks, once a worker computed them


def entry(request: HttpRequest, slug: str, submission_id: int) -> HttpResponse:
    try:
        submission = access_entry(request.user, submission_id)
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    if submission.competition.slug != slug:
        raise Http404("No such entry.")
    wanted = request.GET.get("version", "")
    context = entry_context(
        submission, request.user, wanted=int(wanted) if wanted.isdigit() else None
    )
    return render(request, "competitions/entry.html", context)


def entry_context(
    submission: Submission, user: User | AnonymousUser, wanted: int | None = None
) -> dict[str, Any]:
    """The claim under version `wanted`, else the ranked one, else the version it was last
    scored under; a claim of an earlier version says which version supersedes it."""
    competition = submission.competition
    task = competition.task
    private_visible = private_split_visible(user, competition)
    run = scoring_run_for_claim(submission=submission, ranked=task.version, wanted=wanted)
    version = run.task_version if run else (wanted or task.version)
    ladder = competition.public_board == competition.PublicBoard.LADDER
    manifest = (
        manifest_for_reader(
            run.manifest,
            private_visible=private_visible,
            signed_in=user.is_authenticated,
            ladder=ladder,
        )
        if run
        else None
    )
    splits = ["public", "private"] if private_visible else ["public"]
    scores = dict(
        Score.objects.filter(
            submission=submission,
            task_version=version,
            split__in=splits,
            metric=task.primary_metric,
        ).values_list("split", "value")
    )
    if ladder:  # only the score the Ladder told (none: nothing)
        scores["public"] = submission.ladder_public_score
    uncertainty = entry_uncertainty(submission=submission, version=version)
    claims = [
        Claim(
            split,
            claim_sentence(submission, manifest, split, value, version),
            uncertainty.get(split, ""),
        )
        for split in splits
        if (value := scores.get(split)) is not None
    ]
    replication = (
        Replication.objects.filter(submission=submission, status=Replication.Status.DONE)
        .order_by("-finished_at", "-pk")
        .first()
    )
    return {
        "competition": competition,
        "submission": submission,
        "is_owner": _is_owner(user, submission),
        "claims": claims,
        "description": render_markdown(submission.description) if submission.description else "",
        "manifest_json": json.dumps(manifest, indent=2, sort_keys=True) if manifest else "",
        "manifest_filename": manifest_filename(
            competition.slug, submission.pk, version, task.version
        ),
        "manifest_redacted": bool(manifest)
        and any(path.startswith("host.") for path in (manifest or {}).get("withheld", [])),
        "facts": entry_facts(manifest, hardware_declared=submission.hardware_declared),
        "replication": replication,
        "task_version": version,
        "superseded_by": task.version if version != task.version else None,
        "scored_under_ranked": version == task.version
        or scoring_run_latest(submission=submission, task_version=task.version) is not None,
    }


def claim_sentence(
    submission: Submission,
    manifest: dict[str, Any] | None,
    split: str,
    score: float,
    version: int,
) -> str:
    """ "Given <hardware>, <method> reaches <metric> = <score> on the <split> split (<n> rows)
    of <competition> (task version v), scored by <scorer image digest>." """
    metric = metric_get(submission.competition.task.primary_metric)
    hardware = (
        f"{submission.hardware_declared} (as declared)"
        if submission.hardware_declared
        else "undeclared training hardware"
    )
    method = submission.method_name or f"submission #{submission.pk} of {submission.team.name}"
    rows = (manifest or {}).get("ground_truth", {}).get("rows", {}).get(split)
    size = f"{rows:,} rows" if rows is not None else "size not recorded"
    scorer = (manifest or {}).get("scorer", {})
    # The identity is the same on every host; older manifests have only the local id.
    image = scorer.get("identity") if scorer.get("image_digest") else None
    if scorer.get("image_digest"):
        scored_by = f"the scorer image {image or scorer['image_digest']}"
    elif manifest:
        scored_by = "the in-process scorer (no image)"
    else:
        scored_by = "a scorer whose manifest was not recorded"
    return (
        f"Given {hardware}, {method} reaches {metric.label} = {score:.6g} "
        f"on the {split} split ({size}) of {submission.competition.title} "
        f"(task version {version}), scored by {scored_by}."
    )


def entry_uncertainty(*, submission: Submission, version: int) -> dict[str, str]:
    """By split, a sentence on the entry's interval and plausible ranks, where it is the
    team's row on the board under `version` and a worker computed them."""
    rows = LeaderboardEntry.objects.filter(
        submission=submission,
        task_version=version,
        interval_submission_id=submission.pk,
        ci_low__isnull=False,
        ci_high__isnull=False,
    ).values("split", "ci_low", "ci_high")
    higher = metric_get(submission.competition.task.primary_metric).higher_is_better
    sentences = {}
    for row in rows:
        stats = board_statistics_read(competition=submission.competition, split=row["split"])
        interval = (row["ci_low"], row["ci_high"])
        best, worst, tied = plausible_ranks(stats, higher, [interval])[0]
        text = f"95 % bootstrap interval: {row['ci_low']:.6g} to {row['ci_high']:.6g}"
        if best is not None:
            text += f"; plausible rank {best} to {worst}"
        if tied:
            text += "; statistically tied with the leader"
        sentences[row["split"]] = text + "."
    return sentences


def _is_owner(user: User | AnonymousUser, submission: Submission) -> bool:
    if not user.is_authenticated:
        return False
    return is_organizer(user, submission.competition) or (
        Membership.objects.filter(team_id=submission.team_id, user=user).exists()
    )
