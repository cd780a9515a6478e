"""The suite organizer's console under /s/<slug>/organize/, on the competitions' console's
look (templates/suites/organize/): the overview and rules (with a Markdown preview) and
visibility; the tasks in order, each with its state and links to its competition's own
organizer pages (data versions are per task, there), to add one from a competition the
organizer organizes, remove one no method has run on, or move one; the suite's phases
(suites/services_phases.py: the schedule every task the suite made follows); the methods
with their owners and run counts; and the request to compute the matrix's stale cells.

Every view starts with access_suite(..., organize=True) (suites/permissions.py): outsiders
of an invite-only suite get 404, everyone else who is not its organizer 403. Writes go
through suites/services.py; a refusal is shown beside the form, or as a message after a
button. The suite's bundle is not offered for download here: exporting it writes every
task's competition bundle with its ground truth, too heavy for a request
(`manage.py export_suite` makes it).
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from competitions.errors import ApplicationError
from competitions.markdown import render_markdown
from competitions.permissions import Forbidden, NotFound
from competitions.views.common import AuthenticatedRequest
from suites import selectors_console, selectors_web, services
from suites.forms import SuiteDetailsForm, SuitePhaseFormSet, SuiteTaskAddForm
from suites.models import Suite, SuiteTask
from suites.permissions import access_competition_to_add, access_suite, access_suite_task
from suites.services_phases import SchedulePhase, suite_phases_set


def _organized(request: AuthenticatedRequest, slug: str) -> Suite:
    try:
        return access_suite(request.user, slug, organize=True)
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    except Forbidden as exc:
        raise PermissionDenied(str(exc)) from exc


def _task(suite: Suite, key: str) -> SuiteTask:
    try:
        return access_suite_task(suite, key)
    except NotFound as exc:
        raise Http404(str(exc)) from exc


def _page(suite: Suite, section: str, **extra: object) -> dict:
    """The context of a console page (templates/suites/organize/_layout.html)."""
    return {"suite": suite, "section": section, "is_organizer": True, **extra}


def _act(request: AuthenticatedRequest, action: Callable[[], str], to: str, slug: str):
    try:
        messages.success(request, action())
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect(to, slug)


@login_required
def overview(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    """Edit the title, overview, rules and visibility; Preview renders the Markdown as
    participants will see it, without saving."""
    suite = _organized(request, slug)
    posted = request.POST if request.method == "POST" else None
    # A copy, so a refused save doesn't leave the page's header with what was typed.
    form = SuiteDetailsForm(posted, instance=Suite.objects.get(pk=suite.pk))
    context = _page(suite, "overview")
    if posted is not None and request.POST.get("action") == "preview":
        context["preview"] = {
            "description": render_markdown(request.POST.get("description", "")),
            "rules": render_markdown(request.POST.get("rules", "")),
        }
    elif posted is not None and form.is_valid():
        try:
            services.suite_update(suite=suite, **form.cleaned_data)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, "The overview, rules and visibility are saved.")
            return redirect("suite-organize", slug)
    context["form"] = form
    status = 400 if posted is not None and form.errors else 200
    return render(request, "suites/organize/overview.html", context, status=status)


@login_required
def tasks(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    """The tasks in order with their state; POST adds one from a competition the organizer
    organizes (a competition they don't is not offered, and refused if named)."""
    suite = _organized(request, slug)
    choices = list(selectors_console.competitions_to_add(request.user, suite))
    form = SuiteTaskAddForm(
        request.POST if request.method == "POST" else None, competitions=choices
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                competition = access_competition_to_add(
                    request.user, form.cleaned_data["competition"]
                )
                task = services.suite_task_attach(
                    suite=suite,
                    competition=competition,
                    by=request.user,
                    key=form.cleaned_data["key"],
                )
            except (NotFound, Forbidden) as exc:
                form.add_error("competition", str(exc))
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, f"{competition.title} is the suite's task {task.key}.")
                return redirect("suite-organize-tasks", slug)
    context = _page(
        suite,
        "tasks",
        tasks=selectors_console.console_tasks(suite, request.user),
        form=form,
        can_add=bool(choices),
    )
    return render(request, "suites/organize/tasks.html", context, status=status)


@login_required
@require_POST
def task_remove(request: AuthenticatedRequest, slug: str, key: str) -> HttpResponse:
    suite = _organized(request, slug)
    task = _task(suite, key)

    def run() -> str:
        services.suite_task_remove(task=task)
        return f"The task {task.key} is no longer in the suite; its competition stays."

    return _act(request, run, "suite-organize-tasks", slug)


@login_required
@require_POST
def task_move(request: AuthenticatedRequest, slug: str, key: str) -> HttpResponse:
    suite = _organized(request, slug)
    task = _task(suite, key)
    direction = request.POST.get("direction")
    if direction not in ("up", "down"):
        messages.error(request, "Move a task up or down.")
        return redirect("suite-organize-tasks", slug)

    def run() -> str:
        moved = services.suite_task_move(task=task, up=direction == "up")
        return f"The task {moved.key} is at place {moved.position + 1}."

    return _act(request, run, "suite-organize-tasks", slug)


@login_required
def methods(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    suite = _organized(request, slug)
    context = _page(suite, "methods", methods=selectors_console.console_methods(suite))
    return render(request, "suites/organize/methods.html", context)


@login_required
@require_POST
def cells_refresh(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    """Ask the workers to compute the matrix's stale cells; answers at once."""
    suite = _organized(request, slug)

    def run() -> str:
        services.suite_cells_refresh_request(suite=suite)
        return "The workers will compute the matrix's stale cells; the matrix shows them then."

    return _act(request, run, "suite-organize-methods", slug)


@login_required
def phases(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    """The suite's phases as rows (one empty row adds one; Delete drops one), saved as one
    schedule by suite_phases_set: every task the suite made follows it. Rows are saved in
    the order of their start, so a new phase takes its place by its dates."""
    suite = _organized(request, slug)
    stored = selectors_web.suite_schedule(suite)
    initial = [
        {f: getattr(p, f) for f in SuitePhaseFormSet.form.base_fields if f != "DELETE"}
        for p in stored
    ]
    posted = request.POST if request.method == "POST" else None
    formset = SuitePhaseFormSet(posted, initial=initial, prefix="phases")
    refusals: list[str] = []
    if posted is not None and formset.is_valid():
        rows = [f.cleaned_data for f in formset.forms if f.cleaned_data]
        kept = [{k: v for k, v in r.items() if k != "DELETE"} for r in rows if not r["DELETE"]]
        schedule = sorted((SchedulePhase(**r) for r in kept), key=lambda p: p.start_at)
        try:
            suite_phases_set(suite=suite, phases=schedule, by=request.user)
        except ApplicationError as exc:
            refusals = exc.extra.get("problems") or [exc.message]
        else:
            messages.success(
                request, "The phases are saved; every task the suite made follows them."
            )
            return redirect("suite-organize-phases", slug)
    following, own = selectors_web.schedule_followers(suite)
    context = _page(suite, "phases", formset=formset, phases=stored, refusals=refusals)
    context |= {"following": following, "own": own}
    status = 400 if posted is not None else 200
    return render(request, "suites/organize/phases.html", context, status=status)
