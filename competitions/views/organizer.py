"""Organizer pages under /c/<slug>/organize/: dashboard, data, submissions, teams, and the actions (rescore, disqualify, ban, finalize, reopen, export). The console's other
pages (overview, phases, people, bulk actions, log) are in views/console.py.

Every view starts with competition_for(..., organize=True): outsiders of an invite-only
competition get 404, everyone else who is not its organizer 403.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_POST

from competitions import stats, svg
from competitions.bundles import BundleInvalid, bundle_open, bundle_read
from competitions.downloads import file_download
from competitions.errors import ApplicationError
from competitions.forms import (
    BundleForm,
    GroundTruthForm,
    ReasonForm,
)
from competitions.models import Competition, OrganizerJob, Replication, Submission, Team
from competitions.selectors import (
    organizer_job_latest,
    organizer_jobs_recent,
    scorer_mismatches_recent,
    shakeup_report,
)
from competitions.selectors_runs import replications_pending
from competitions.services import lifecycle
from competitions.services import submissions as submission_services
from competitions.services.bundles import bundle_export_file, bundle_import
from competitions.services.jobs import rescore_all_start
from competitions.services.teams import team_set_banned
from competitions.views.common import (
    AuthenticatedRequest,
    competition_for,
    page_context,
    page_of,
    posted,
    viewer_for,
)

ROWS_PER_PAGE = 50
SUBMISSIONS_PER_PAGE = 25


def organizer_page(request: HttpRequest, slug: str, section: str, **extra) -> dict:
    competition = competition_for(request, slug, organize=True)
    viewer = viewer_for(request, competition)
    jobs = organizer_jobs_recent(competition=competition)
    # The page reloads itself while a job runs, to show its progress (no script needed).
    busy = any(not job.is_finished for job in jobs)
    return page_context(
        request,
        competition,
        viewer,
        "organize",
        section=section,
        jobs=jobs,
        jobs_busy=busy,
        **extra,
    )


def _act(request: HttpRequest, slug: str, action: Callable[[], str], to: str) -> HttpResponse:
    try:
        messages.success(request, action())
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect(back_target(request) or reverse(to, args=[slug]))


def back_target(request: HttpRequest) -> str | None:
    """The page the form was on (its filters and page number), if it is one of ours."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return None


@login_required
def dashboard(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    context = organizer_page(request, slug, "dashboard")
    board = stats.dashboard(competition=context["competition"])
    context["replications"] = replications_pending(competition=context["competition"])
    total = sum(n for _d, n in board.per_day)
    context |= {
        "board": board,
        "events": list(context["competition"].events.select_related("by")[:20]),
        "per_day_plot": svg.daily_bars(
            id_prefix="per-day",
            counts=board.per_day,
            title="Submissions per day, last 30 days",
            desc=f"{total} submissions in the last {len(board.per_day)} days; "
            f"the busiest day had {max((n for _d, n in board.per_day), default=0)}.",
        ),
    }
    return render(request, "organize/dashboard.html", context)


@login_required
def data(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    context = organizer_page(request, slug, "data")
    task = context["competition"].task
    context |= {
        "task": task,
        "files": list(task.files.select_related("released_with")),
        "now": timezone.now(),
        "samples": stats.sample_validation(competition=context["competition"]),
        "versions": list(task.versions.order_by("-number")),
        "scorer_mismatches": scorer_mismatches_recent(task=task),
        "dry_run_job": organizer_job_latest(
            competition=context["competition"], kind=OrganizerJob.Kind.DRY_RUN
        ),
        "ground_truth_form": GroundTruthForm(),
    }
    return render(request, "organize/data.html", context)


@login_required
def submissions(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    """Every submission, newest first: by status, by team, user or id (`q`), and by the
    UTC day it was submitted (`since`, `until`: YYYY-MM-DD, both included)."""
    context = organizer_page(request, slug, "submissions")
    qs = Submission.objects.filter(competition=context["competition"])
    status = request.GET.get("status", "")
    if status in Submission.Status.values:
        qs = qs.filter(status=status)
    q = request.GET.get("q", "").strip()
    if q:
        qs = qs.filter(_search(q))
    days, date_problems = _days(request)
    if "since" in days:
        qs = qs.filter(created_at__date__gte=days["since"])
    if "until" in days:
        qs = qs.filter(created_at__date__lte=days["until"])
    qs = qs.select_related("team", "submitter").order_by("-created_at")
    page_obj = page_of(request, qs, SUBMISSIONS_PER_PAGE)
    task = context["competition"].task
    stats.attach_primary_scores(list(page_obj), task.primary_metric, private=True)
    since, until = (request.GET.get(name, "").strip() for name in ("since", "until"))
    kept = (("q", q), ("status", status), ("since", since), ("until", until))
    context |= {
        "page_obj": page_obj,
        "metric": task.primary_metric,
        "status_filter": status,
        "q": q,
        "since": since,
        "until": until,
        "date_problems": date_problems,
        "statuses": Submission.Status.choices,
        "query": urlencode({k: v for k, v in kept if v}),
        "here": request.get_full_path(),
    }
    return render(request, "organize/submissions.html", context)


def _days(request: AuthenticatedRequest) -> tuple[dict[str, date], dict[str, str]]:
    """The `since` and `until` days asked for, and what is wrong with those that are not
    days, by field (the page says it beside the field and filters by the rest)."""
    days: dict[str, date] = {}
    problems: dict[str, str] = {}
    for name in ("since", "until"):
        value = request.GET.get(name, "").strip()
        if not value:
            continue
        try:
            days[name] = date.fromisoformat(value)
        except ValueError:
            problems[name] = f"“{value[:20]}” is not a day: write it as 2026-11-30."
    return days, problems


def _search(q: str) -> Q:
    """A submission's id ("123" or "#123"), or part of its team's name or submitter's username."""
    found = Q(team__name__icontains=q) | Q(submitter__username__icontains=q)
    number = q.removeprefix("#")
    if number.isdigit():
        found |= Q(pk=int(number))
    return found


@login_required
def teams(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    context = organizer_page(request, slug, "teams")
    qs = Team.objects.filter(competition=context["competition"]).order_by("name")
    if request.GET.get("q"):
        qs = qs.filter(name__icontains=request.GET["q"])
    qs = qs.prefetch_related("members")
    context |= {"page_obj": page_of(request, qs, ROWS_PER_PAGE), "q": request.GET.get("q", "")}
    return render(request, "organize/teams.html", context)


@login_required
def shakeup(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    """The shake-up report: every team's public rank, private rank and the change."""
    context = organizer_page(request, slug, "shakeup")
    competition = context["competition"]
    context["report"] = shakeup_report(competition=competition)
    return render(request, "organize/shakeup.html", context)


@login_required
@require_POST
def rescore_all(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    competition = competition_for(request, slug, organize=True)

    def rescore() -> str:
        if request.POST.get("confirm") != "yes":
            raise ApplicationError(
                "Tick the box to confirm: every submission is queued for scoring again."
            )
        job = rescore_all_start(competition=competition, user=request.user)
        return f"Job #{job.pk} queues {job.progress_total} submission(s) for scoring again."

    return _act(request, slug, rescore, "organize")


@login_required
@require_POST
def finalize(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    competition = competition_for(request, slug, organize=True)

    def run() -> str:
        if request.POST.get("confirm") != "yes":
            raise ApplicationError(
                "Tick the box to confirm: finalizing reveals the private leaderboard and freezes it."
            )
        event = lifecycle.competition_finalize(competition=competition, by=request.user)
        return "The competition is finalized: the private leaderboard is public now." + _ended(
            event.ended_phases
        )

    return _act(request, slug, run, "organize")


def _ended(names: list[str]) -> str:
    if not names:
        return ""
    quoted = ", ".join(f"“{name}”" for name in names)
    if len(names) == 1:
        return f" The phase {quoted} was still open; it ended now."
    return f" The phases {quoted} were still open; they ended now."


@login_required
@require_POST
def reopen(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    competition = competition_for(request, slug, organize=True)
    form = ReasonForm(request.POST)

    def run() -> str:
        if not form.is_valid():
            raise ApplicationError("Give a reason of at most 300 characters.")
        reason = form.cleaned_data["reason"]
        lifecycle.competition_reopen(competition=competition, by=request.user, reason=reason)
        return "The competition is reopened; the leaderboard shows why."

    return _act(request, slug, run, "organize")


@login_required
@require_POST
def replication_cancel(
    request: AuthenticatedRequest, slug: str, replication_id: int
) -> HttpResponse:
    from competitions.services.replications import replication_cancel as cancel

    competition = competition_for(request, slug, organize=True)
    replication = Replication.objects.filter(
        pk=replication_id, submission__competition=competition
    ).first()
    if replication is None:
        raise Http404("No such replication in this competition.")

    def run() -> str:
        cancel(replication=replication, user=request.user)
        return (
            f"The replication of submission #{replication.submission_id} is cancelled; "
            "it no longer holds up finalizing."
        )

    return _act(request, slug, run, "organize")


def _submission_in(competition: Competition, submission_id: int) -> Submission:
    submission = Submission.objects.filter(pk=submission_id, competition=competition).first()
    if submission is None:
        raise Http404("No such submission in this competition.")
    return submission


@login_required
@require_POST
def disqualify(request: AuthenticatedRequest, slug: str, submission_id: int) -> HttpResponse:
    competition = competition_for(request, slug, organize=True)
    submission = _submission_in(competition, submission_id)
    form = ReasonForm(request.POST)
    disqualified = request.POST.get("disqualified") == "1"

    def run() -> str:
        reason = form.cleaned_data["reason"] if form.is_valid() else ""
        submission_services.submission_set_disqualified(
            submission=submission, disqualified=disqualified, reason=reason, by=request.user
        )
        return (
            f"Submission #{submission.pk} is {'disqualified' if disqualified else 'ranked again'}."
        )

    return _act(request, slug, run, "organize-submissions")


@login_required
@require_POST
def rescore(request: AuthenticatedRequest, slug: str, submission_id: int) -> HttpResponse:
    competition = competition_for(request, slug, organize=True)
    submission = _submission_in(competition, submission_id)

    def run() -> str:
        submission_services.submission_rescore(submission=submission, by=request.user)
        return f"Submission #{submission.pk} is queued for scoring again."

    return _act(request, slug, run, "organize-submissions")


@login_required
@require_POST
def ban(request: AuthenticatedRequest, slug: str, team_id: int) -> HttpResponse:
    competition = competition_for(request, slug, organize=True)
    team = Team.objects.filter(pk=team_id, competition=competition).first()
    if team is None:
        raise Http404("No such team in this competition.")
    form = ReasonForm(request.POST)
    banned = request.POST.get("banned") == "1"

    def run() -> str:
        reason = form.cleaned_data["reason"].strip() if form.is_valid() else ""
        team_set_banned(team=team, banned=banned, reason=reason, by=request.user)
        return f"The team {team.name} is {'banned' if banned else 'no longer banned'}."

    return _act(request, slug, run, "organize-teams")


@login_required
def export(request: AuthenticatedRequest, slug: str) -> HttpResponseBase:
    """The competition as a bundle zip (with the ground truth: organizers only)."""
    competition = competition_for(request, slug, organize=True)
    stream = bundle_export_file(competition=competition)
    return file_download(request, stream, filename=f"{slug}.zip")


@login_required
def bundle_upload(request: AuthenticatedRequest) -> HttpResponse:
    """Check a bundle (every problem listed, the sample submission validated) or import it."""
    if not request.user.is_staff:
        raise PermissionDenied("Only organizer accounts can import competitions.")
    form = BundleForm(*posted(request))
    problems: list[str] = []
    checked = None
    if request.method == "POST" and form.is_valid():
        with tempfile.TemporaryDirectory(prefix="heldout-upload-") as tmp:
            source = Path(tmp) / "bundle.zip"
            with source.open("wb") as out:
                for chunk in form.cleaned_data["bundle"].chunks():
                    out.write(chunk)
            try:
                if request.POST.get("action") == "import":
                    competition = bundle_import(source=source, organizer=request.user)
                    messages.success(request, f"{competition.title} is imported; you organize it.")
                    return redirect("organize", competition.slug)
                checked = _bundle_check(source, Path(tmp))
            except BundleInvalid as exc:
                problems = exc.problems
    status = 400 if problems else 200
    context = {"form": form, "problems": problems, "checked": checked}
    return render(request, "organize/import.html", context, status=status)


def _bundle_check(source: Path, tmp: Path):
    workdir = tmp / "open"
    workdir.mkdir()
    return bundle_read(bundle_open(source, workdir=workdir))
