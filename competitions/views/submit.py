"""Participant pages: submit a file, my team's submissions, one submission, selecting.

The submit form works as a plain multipart post; static/js/submit.js instead sends the
file as a resumable upload (tus, docs/uploads.md: pieces that survive a broken connection
or a reload), posts the form with `upload=<its id>`, then polls the JSON API for the
status (static/js/status.js), so the page never reloads.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from competitions import selectors, stats
from competitions.errors import ApplicationError, QuotaExceeded
from competitions.forms import SubmissionForm
from competitions.middleware import submission_upload_limit
from competitions.models import Submission
from competitions.permissions import NotFound, access_submission
from competitions.services.submissions import (
    current_phase,
    submission_create,
    submission_set_selected,
)
from competitions.services.uploads import submission_create_from_upload
from competitions.throttles import SUBMISSIONS, throttle
from competitions.views.common import (
    AuthenticatedRequest,
    Viewer,
    competition_for,
    error_json,
    page_context,
    page_of,
    posted,
    quota_page,
    viewer_for,
    wants_json,
)
from competitions.views.plots import progress_plot
from scoring.metrics import metric_get

SUBMISSIONS_PER_PAGE = 25


@login_required
@throttle(SUBMISSIONS)  # the API's count: one history per user for both
def submit(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    competition = competition_for(request, slug)
    viewer = viewer_for(request, competition)
    form = SubmissionForm(*posted(request))
    error: ApplicationError | None = None
    if request.method == "POST":
        if form.is_valid():
            try:
                submission = _create(request, competition, form.cleaned_data)
            except ApplicationError as exc:
                error = exc
            else:
                return _accepted(request, submission)
        if error is not None and wants_json(request):
            return error_json(error)
        if error is None and wants_json(request):
            return JsonResponse(
                {"detail": "Check the form.", "code": "invalid", "errors": form.errors}, status=400
            )
        if isinstance(error, QuotaExceeded):
            return quota_page(request, error, reverse("my-submissions", args=[slug]))
    context = page_context(
        request,
        competition,
        viewer,
        "submit",
        form=form,
        error=error,
        quota=_quota(competition, viewer),
        max_upload_bytes=submission_upload_limit(competition),
    )
    status = error.status if error else (400 if request.method == "POST" else 200)
    return render(request, "competitions/submit.html", context, status=status)


def _create(request: AuthenticatedRequest, competition, fields: dict) -> Submission:
    """From the posted file, or from the resumable upload the page's script made."""
    fields = dict(fields)
    file, upload_id = fields.pop("file"), fields.pop("upload")
    if upload_id is not None:
        try:
            return submission_create_from_upload(
                competition=competition, user=request.user, upload_id=upload_id, **fields
            )
        except NotFound as exc:
            raise ApplicationError(
                "That upload is gone (expired, or already submitted): send the file again."
            ) from exc
    return submission_create(
        competition=competition, user=request.user, uploaded_file=file, **fields
    )


def _accepted(request: HttpRequest, submission: Submission) -> HttpResponse:
    page_url = reverse("submission-page", args=[submission.competition.slug, submission.pk])
    if wants_json(request):
        return JsonResponse(
            {
                "id": submission.pk,
                "status": submission.status,
                "status_url": reverse("api:submission-detail", args=[submission.pk]),
                "page_url": page_url,
            },
            status=202,
        )
    messages.success(request, f"Received {submission.original_name}; it is queued for scoring.")
    return redirect(page_url)


def _quota(competition, viewer: Viewer) -> dict | None:
    """The phase taking submissions now and what the viewer's team has left of it today."""
    now = timezone.now()
    found = current_phase(competition, now)
    if found is None:
        return None
    phase, is_late = found
    context = {"phase": phase, "is_late": is_late, "used": 0, "total_used": 0, "left": None}
    if viewer.team_id:
        # The submission rule's own counts (selectors.team_quota): the page can't drift from it.
        quota = selectors.team_quota(team=viewer.team_id, phase=phase, now=now)
        total_spent = quota.total_limit is not None and quota.total_used >= quota.total_limit
        context |= {
            "used": quota.daily_used,
            "total_used": quota.total_used,
            "left": quota.remaining,
            # Today's allowances reset at midnight UTC; a used-up phase total never does.
            "resets_at": None if total_spent else quota.resets_at,
        }
    return context


@login_required
def my_submissions(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    """The team's submissions, a page at a time, in a fixed number of queries."""
    competition = competition_for(request, slug)
    viewer = viewer_for(request, competition)
    if viewer.membership is None:
        messages.info(request, "Join the competition to submit and see your submissions.")
        return redirect("competition-rules", slug)
    task = competition.task
    qs = Submission.objects.filter(team_id=viewer.membership.team_id).select_related("submitter")
    page_obj = page_of(request, qs.order_by("-created_at"), SUBMISSIONS_PER_PAGE)
    can_see_private = competition.is_finalized or viewer.is_organizer
    stats.attach_primary_scores(
        list(page_obj),
        task.primary_metric,
        private=can_see_private,
        ladder=competition.public_board == competition.PublicBoard.LADDER,
    )
    metric = metric_get(task.primary_metric)
    context = page_context(
        request,
        competition,
        viewer,
        "submissions",
        page_obj=page_obj,
        metric=metric,
        can_see_private=can_see_private,
        selection_open=not competition.is_finalized,
        progress=progress_plot(
            competition=competition, team=viewer.membership.team, split="public", metric=metric
        ),
    )
    return render(request, "competitions/submissions.html", context)


@login_required
def submission_page(request: AuthenticatedRequest, slug: str, submission_id: int) -> HttpResponse:
    submission = _submission_or_404(request, slug, submission_id)
    competition = submission.competition
    viewer = viewer_for(request, competition)
    scores = selectors.submission_scores(submission=submission, user=request.user)
    task = competition.task
    columns = [task.primary_metric, *task.secondary_metrics]
    context = page_context(
        request,
        competition,
        viewer,
        "submissions",
        submission=submission,
        attempt=submission.latest_attempt,  # who scored it, when, with what
        scores=scores,
        score_columns=columns,
        score_rows=[(split, [values.get(m) for m in columns]) for split, values in scores.items()],
        hidden_problems=max(submission.total_problems - len(submission.problems), 0),
        status_url=reverse("api:submission-detail", args=[submission.pk]),
        is_member=viewer.team_id == submission.team_id,
        selection_open=not competition.is_finalized,
    )
    return render(request, "competitions/submission.html", context)


def _submission_or_404(request: HttpRequest, slug: str, submission_id: int, **kwargs) -> Submission:
    try:
        submission = access_submission(request.user, submission_id, **kwargs)
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    if submission.competition.slug != slug:
        raise Http404("No such submission.")
    return submission


@login_required
@require_POST
def submission_select(request: AuthenticatedRequest, slug: str, submission_id: int) -> HttpResponse:
    submission = _submission_or_404(request, slug, submission_id, team_only=True)
    selected = request.POST.get("selected") == "1"
    try:
        submission_set_selected(submission=submission, selected=selected)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        verb = "selected for" if selected else "no longer selected for"
        messages.success(request, f"Submission #{submission.pk} is {verb} the private leaderboard.")
    next_url = request.POST.get("next", "")
    if next_url.startswith(f"/c/{slug}/"):
        return redirect(next_url)
    return redirect("my-submissions", slug)
