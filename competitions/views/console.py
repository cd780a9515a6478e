"""The organizer console's pages under /c/<slug>/organize/: the overview and rules (with a
Markdown preview), phases and limits, people (organizers and invitations), actions on a
selection of submissions (behind a confirmation), and the log of organizer actions.

Every view starts with competition_for(..., organize=True) (through _organizer_page):
outsiders of an invite-only competition get 404, everyone else who is not its organizer
403. Writes go through the services (services/console.py, services/organize.py), which
write the log. A refusal is shown beside the field, with what was typed kept.
"""

from __future__ import annotations

from collections.abc import Callable
from copy import copy
from functools import partial

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.db.models import Count
from django.forms import BaseForm
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from competitions.errors import ApplicationError
from competitions.forms import (
    BulkActionForm,
    CompetitionDetailsForm,
    LimitsForm,
    PhaseForm,
    PhaseVersionForm,
    TieRuleForm,
    UsernameForm,
)
from competitions.markdown import render_markdown
from competitions.models import Competition, OrganizerAction, Phase, Submission
from competitions.services import console
from competitions.services.organize import (
    competition_limits_update,
    competition_public_board_set,
    competition_tie_rule_update,
    phase_update,
)
from competitions.services.phase_versions import phase_version_set
from competitions.views.common import AuthenticatedRequest, competition_for, page_of
from competitions.views.organizer import back_target, organizer_page

LOG_PER_PAGE = 50


def _saved_or_refused(request: HttpRequest, form: BaseForm, save: Callable[[], str]) -> bool:
    """Save; a refusal is shown in the form, beside what was typed, not as a banner."""
    try:
        messages.success(request, save())
    except ApplicationError as exc:
        form.add_error(None, exc.message)
        return False
    return True


@login_required
def overview(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    """Edit the overview, rules, prize, dates and visibility; Preview renders the Markdown
    as participants will see it, without saving."""
    context = organizer_page(request, slug, "overview")
    competition = context["competition"]
    posted = request.POST if request.method == "POST" else None
    # A copy, so a failed validation doesn't leave the page's header with what was typed.
    form = CompetitionDetailsForm(posted, instance=Competition.objects.get(pk=competition.pk))
    if posted is not None and request.POST.get("action") == "preview":
        context["preview"] = {
            "description": render_markdown(request.POST.get("description", "")),
            "rules": render_markdown(request.POST.get("rules", "")),
        }
    elif posted is not None and form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items() if k != "reason"}
        save = partial(_save_details, competition, request.user, form.cleaned_data["reason"], data)
        if _saved_or_refused(request, form, save):
            return redirect("organize-overview", slug)
    context["form"] = form
    status = 400 if posted is not None and form.errors else 200
    return render(request, "organize/overview.html", context, status=status)


def _save_details(competition: Competition, by: User, reason: str, data: dict) -> str:
    console.competition_details_update(competition=competition, by=by, reason=reason, **data)
    return "The overview, rules, dates and visibility are saved."


@login_required
def phases(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    """The team limits, the tie rule and each phase's dates and quotas, in date order; a new
    phase takes its place by its dates."""
    context = organizer_page(request, slug, "phases")
    competition = context["competition"]
    which = request.POST.get("which") if request.method == "POST" else None

    def bound(name: str):  # type: ignore[no-untyped-def]
        return request.POST if which == name else None

    limits = LimitsForm(bound("limits"), instance=competition)
    ties = TieRuleForm(bound("ties"), instance=competition)
    new = PhaseForm(bound("new"), instance=Phase(competition=competition), prefix="new")
    # Each form gets a copy: validating sets its instance's fields, and the page's headings
    # keep the stored names while a refused change is shown.
    rows = [
        (phase, PhaseForm(bound(str(phase.pk)), instance=copy(phase), prefix=f"p{phase.pk}"))
        for phase in competition.phases.annotate(submission_count=Count("submissions"))
    ]
    # Each phase's pin is a form of its own: a refused pin leaves the dates as they were.
    versions = list(competition.task.versions.values_list("number", "note"))
    pins = {
        phase.pk: PhaseVersionForm(
            bound(f"pin{phase.pk}"),
            initial={"task_version": phase.task_version},
            prefix=f"v{phase.pk}",
            versions=versions,
            ranked=competition.task.version,
        )
        for phase, _ in rows
    }
    saves: list[tuple[str, BaseForm, Callable[[], str]]] = [
        ("limits", limits, partial(_save_limits, competition, limits, request.user)),
        ("ties", ties, partial(_save_ties, competition, ties, request.user)),
        ("new", new, partial(_add_phase, competition, new, request.user)),
        *((str(p.pk), f, partial(_save_phase, p, f, request.user)) for p, f in rows),
        *(
            (f"pin{p.pk}", pins[p.pk], partial(_save_pin, p, pins[p.pk], request.user))
            for p, _ in rows
        ),
    ]
    for name, form, save in saves:
        if which == name and form.is_valid() and _saved_or_refused(request, form, save):
            return redirect("organize-phases", slug)
    context |= {
        "limits_form": limits,
        "ties_form": ties,
        "phase_forms": rows,
        "phase_rows": [(phase, form, pins[phase.pk]) for phase, form in rows],
        "new_form": new,
    }
    return render(request, "organize/phases.html", context, status=400 if which else 200)


def _save_limits(competition: Competition, form: BaseForm, by: User) -> str:
    data = dict(form.cleaned_data)
    public_board = data.pop("public_board", "")
    competition_limits_update(competition=competition, by=by, **data)
    if public_board:  # left out of the post: unchanged
        competition_public_board_set(competition=competition, public_board=public_board, by=by)
    return "The limits are saved."


def _save_ties(competition: Competition, form: BaseForm, by: User) -> str:
    competition_tie_rule_update(competition=competition, by=by, **form.cleaned_data)
    return "The tie rule is saved; the rules page states it."


def _save_phase(phase: Phase, form: BaseForm, by: User) -> str:
    phase_update(phase=phase, by=by, **form.cleaned_data)
    return f"The phase “{phase.name}” is saved."


def _save_pin(phase: Phase, form: BaseForm, by: User) -> str:
    number = form.cleaned_data["task_version"]
    phase_version_set(phase=phase, task_version=number, by=by)
    if number is None:
        return f"The phase “{phase.name}” scores under the ranked version."
    ranked = " The leaderboard ranks it now." if phase.is_open_at(timezone.now()) else ""
    return f"The phase “{phase.name}” scores under version {number}.{ranked}"


def _add_phase(competition: Competition, form: BaseForm, by: User) -> str:
    phase = console.phase_create(competition=competition, by=by, **form.cleaned_data)
    return f"The phase “{phase.name}” is added."


@login_required
@require_POST
def phase_delete(request: AuthenticatedRequest, slug: str, phase_id: int) -> HttpResponse:
    competition = competition_for(request, slug, organize=True)
    phase = Phase.objects.filter(pk=phase_id, competition=competition).first()
    if phase is None:
        raise Http404("No such phase in this competition.")
    try:
        console.phase_delete(phase=phase, by=request.user)
        messages.success(request, f"The phase “{phase.name}” is deleted.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("organize-phases", slug)


PEOPLE_FORMS = {
    "organizer-add": ("Username of the new organizer", console.competition_organizer_add),
    "invitee-add": ("Username to give access", console.competition_invitee_add),
}
PEOPLE_REMOVALS = {
    "organizer-remove": console.competition_organizer_remove,
    "invitee-remove": console.competition_invitee_remove,
}


@login_required
def people(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    """The organizers and the invited users: add by username, remove with a button."""
    context = organizer_page(request, slug, "people")
    competition = context["competition"]
    which = request.POST.get("which", "") if request.method == "POST" else ""
    if which in PEOPLE_REMOVALS:
        return _people_remove(request, competition, which)
    forms = {}
    for name, (label, add) in PEOPLE_FORMS.items():
        form = UsernameForm(request.POST if which == name else None, label=label, prefix=name)
        forms[name] = form
        if which == name and form.is_valid():
            try:
                user = add(competition=competition, by=request.user, **form.cleaned_data)
            except ApplicationError as exc:
                form.add_error("username", exc.message)
            else:
                messages.success(request, f"{user.username} is added.")
                return redirect("organize-people", slug)
    context |= {
        "organizers": competition.organizers.order_by("username"),
        "invitees": competition.invited.order_by("username"),
        "organizer_form": forms["organizer-add"],
        "invitee_form": forms["invitee-add"],
    }
    return render(request, "organize/people.html", context, status=400 if which else 200)


def _people_remove(request: AuthenticatedRequest, competition: Competition, which: str):
    user = User.objects.filter(pk=request.POST.get("user", "").strip() or 0).first()
    try:
        if user is None:
            raise ApplicationError("No such user.")
        PEOPLE_REMOVALS[which](competition=competition, by=request.user, user=user)
        messages.success(request, f"{user.username} is removed.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("organize-people", competition.slug)


@login_required
@require_POST
def submissions_bulk(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    """Rescore or disqualify the submissions ticked on the Submissions page: first a page
    that states how many and asks to confirm, then the action, all or none."""
    context = organizer_page(request, slug, "submissions")
    competition = context["competition"]
    back = back_target(request) or reverse("organize-submissions", args=[slug])
    ids = [int(v) for v in request.POST.getlist("ids") if v.isdigit()]
    chosen = list(
        Submission.objects.filter(competition=competition, pk__in=ids)
        .select_related("team")
        .order_by("pk")
    )
    form = BulkActionForm(request.POST)
    if not chosen or not form.is_valid():
        messages.error(request, "Tick at least one submission, then choose what to do.")
        return redirect(back)
    action = form.cleaned_data["action"]
    if request.POST.get("confirm") == "yes":
        try:
            messages.success(request, _bulk_run(request, competition, action, chosen, form))
            return redirect(back)
        except ApplicationError as exc:
            form.add_error("reason" if action == "disqualify" else None, exc.message)
    context |= {"form": form, "chosen": chosen, "action": action, "back": back}
    status = 400 if form.errors else 200
    return render(request, "organize/bulk_confirm.html", context, status=status)


def _bulk_run(
    request: AuthenticatedRequest,
    competition: Competition,
    action: str,
    chosen: list[Submission],
    form: BaseForm,
) -> str:
    ids = [s.pk for s in chosen]
    if action == "disqualify":
        n = console.submissions_disqualify_selected(
            competition=competition,
            by=request.user,
            submission_ids=ids,
            reason=form.cleaned_data["reason"],
        )
        return f"{n} submission{'s' if n != 1 else ''} disqualified."
    queued, left = console.submissions_rescore_selected(
        competition=competition, by=request.user, submission_ids=ids
    )
    waiting = f"; {left} already waiting to be scored" if left else ""
    return f"{queued} submission{'s' if queued != 1 else ''} queued for scoring again{waiting}."


@login_required
def log(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    """Who did what, when and why: every organizer action on this competition, newest first."""
    context = organizer_page(request, slug, "log")
    actions = OrganizerAction.objects.filter(competition=context["competition"]).select_related(
        "by"
    )
    context["page_obj"] = page_of(request, actions, LOG_PER_PAGE)
    return render(request, "organize/log.html", context)
