"""Organizer pages: replace the ground truth with a new task version, choose the version
the leaderboard ranks (a background job whose progress the Data page shows), adopt the
scorer the workers run (docs/reproducibility.md)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from competitions.errors import ApplicationError
from competitions.forms import GroundTruthForm
from competitions.permissions import NotFound
from competitions.services.jobs import version_switch_start
from competitions.services.scorer_identity import task_scorer_adopt
from competitions.services.versions import task_version_create
from competitions.views.common import AuthenticatedRequest, competition_for


@login_required
@require_POST
def version_create(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    competition = competition_for(request, slug, organize=True)
    form = GroundTruthForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "Choose a ground-truth file to upload.")
        return redirect("organize-data", slug)
    task = competition.task
    try:
        version = task_version_create(
            task=task,
            ground_truth=form.cleaned_data["ground_truth"],
            note=form.cleaned_data["note"],
        )
        if form.cleaned_data["activate"]:
            job = version_switch_start(
                competition=competition, user=request.user, number=version.number, rescore=True
            )
    except ApplicationError as exc:
        listed = [p["message"] for p in exc.extra.get("problems", [])[:20]]
        messages.error(request, " ".join([exc.message, *listed]))
        return redirect("organize-data", slug)
    if form.cleaned_data["activate"]:
        ranked = (
            f"Job #{job.pk} switches the leaderboard to it and queues every submission "
            "for rescoring; its progress is below."
        )
    else:
        ranked = f"The leaderboard still ranks by version {task.version}."
    messages.success(request, f"Version {version.number} recorded. {ranked}")
    return redirect("organize-data", slug)


@login_required
@require_POST
def version_activate(request: AuthenticatedRequest, slug: str, number: int) -> HttpResponse:
    competition = competition_for(request, slug, organize=True)
    try:
        job = version_switch_start(
            competition=competition,
            user=request.user,
            number=number,
            rescore=request.POST.get("rescore") == "yes",
        )
    except (ApplicationError, NotFound) as exc:
        messages.error(request, getattr(exc, "message", str(exc)))
    else:
        messages.success(
            request, f"Job #{job.pk} switches the leaderboard to version {number}; see below."
        )
    return redirect("organize-data", slug)


@login_required
@require_POST
def scorer_adopt(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    """Adopt the scorer workers report (docs/scorers.md: adopting a new scorer)."""
    competition = competition_for(request, slug, organize=True)
    identity = request.POST.get("identity") or None
    try:
        version = task_scorer_adopt(task=competition.task, by=request.user, identity=identity)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            f"Version {version.number} records the scorer {version.scorer_image_digest or '(first to score)'}; "
            "the leaderboard ranks by it and every submission is queued for rescoring.",
        )
    return redirect("organize-data", slug)
