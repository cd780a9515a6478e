"""The team page: members, name, invitations by username or link, accepting, leaving.

The rules live in competitions/services/teams.py (and docs/teams.md); these views only
show them and report the services' refusals.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from competitions.errors import ApplicationError, FinalizedError
from competitions.forms import AcceptInvitationForm, InviteForm, TeamNameForm
from competitions.models import Membership, Submission, TeamInvitation
from competitions.services import teams as team_services
from competitions.views.common import (
    AuthenticatedRequest,
    competition_for,
    page_context,
    viewer_for,
)


@login_required
def team(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    return _team_page(request, slug)


def _team_page(
    request: AuthenticatedRequest, slug: str, invite_form: InviteForm | None = None
) -> HttpResponse:
    """The team page; `invite_form` bound and refused shows its error beside the field."""
    competition = competition_for(request, slug)
    viewer = viewer_for(request, competition)
    invitations_for_me = TeamInvitation.objects.filter(
        team__competition=competition,
        invited_user=request.user,
        accepted_at__isnull=True,
        revoked_at__isnull=True,
    ).select_related("team", "created_by")
    context = page_context(
        request, competition, viewer, "team", invitations_for_me=list(invitations_for_me)
    )
    if viewer.membership is not None:
        my_team = viewer.membership.team
        pending = TeamInvitation.objects.filter(
            team=my_team, accepted_at__isnull=True, revoked_at__isnull=True
        ).select_related("invited_user")
        context |= {
            "team": my_team,
            "members": Membership.objects.filter(team=my_team)
            .select_related("user")
            .order_by("joined_at"),
            "pending": [
                (inv, request.build_absolute_uri(reverse("invitation", args=[slug, inv.token])))
                for inv in pending.order_by("created_at")
            ],
            "submission_count": Submission.objects.filter(team=my_team).count(),
            "name_form": TeamNameForm(initial={"name": my_team.name}),
            "invite_form": invite_form or InviteForm(),
        }
    return render(request, "competitions/team.html", context, status=400 if invite_form else 200)


def _act(request: HttpRequest, slug: str, action: Callable[[], str]) -> HttpResponse:
    """Run a team service; its refusal becomes an error message on the team page."""
    try:
        messages.success(request, action())
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("team", slug)


def _my_team(request: HttpRequest, slug: str):
    competition = competition_for(request, slug)
    viewer = viewer_for(request, competition)
    if viewer.membership is None:
        raise Http404("You are not in a team of this competition.")
    return viewer.membership.team


@login_required
@require_POST
def team_rename(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    my_team = _my_team(request, slug)
    form = TeamNameForm(request.POST)

    def rename() -> str:
        if not form.is_valid():
            raise ApplicationError("Give the team a name of at most 100 characters.")
        renamed = team_services.team_rename(
            team=my_team, user=request.user, name=form.cleaned_data["name"]
        )
        return f"The team is now named “{renamed.name}”."

    return _act(request, slug, rename)


@login_required
@require_POST
def team_invite(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    my_team = _my_team(request, slug)
    form = InviteForm(request.POST)
    username = form.data.get("username", "").strip() if form.is_valid() else ""
    try:
        invitation = team_services.team_invite(team=my_team, by=request.user, username=username)
    except FinalizedError as exc:  # the page shows no invite form then: say it at the top
        messages.error(request, exc.message)
        return redirect("team", slug)
    except ApplicationError as exc:
        # Beside the field, with the name as typed, to correct it.
        form.add_error("username", exc.message)
        return _team_page(request, slug, invite_form=form)
    if invitation.invited_user_id:
        messages.success(
            request, f"{username} is invited; they accept on this competition's Team tab."
        )
    else:
        messages.success(
            request, "Invitation link made: copy it from the list below. It works once."
        )
    return redirect("team", slug)


@login_required
@require_POST
def invitation_revoke(request: AuthenticatedRequest, slug: str, invitation_id: int) -> HttpResponse:
    my_team = _my_team(request, slug)
    invitation = TeamInvitation.objects.filter(pk=invitation_id, team=my_team).first()
    if invitation is None:
        raise Http404("No such invitation.")

    def revoke() -> str:
        team_services.invitation_revoke(invitation=invitation, by=request.user)
        return "The invitation is withdrawn."

    return _act(request, slug, revoke)


@login_required
@require_POST
def team_leave(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    my_team = _my_team(request, slug)

    def leave() -> str:
        membership = team_services.team_leave(team=my_team, user=request.user)
        return f"You left {my_team.name}; you are now in your own team, “{membership.team.name}”."

    return _act(request, slug, leave)


@login_required
def invitation(request: AuthenticatedRequest, slug: str, token: str) -> HttpResponse:
    """An invitation's page: what accepting it would do, and the button to accept."""
    competition = competition_for(request, slug)
    found = (
        TeamInvitation.objects.filter(token=token, team__competition=competition)
        .select_related("team", "created_by")
        .first()
    )
    # Someone else's named invitation is not shown: its token may have been forwarded.
    if found is None or found.invited_user_id not in (None, request.user.pk):
        raise Http404("No such invitation, or it is not for you.")
    viewer = viewer_for(request, competition)
    form = AcceptInvitationForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            team_services.invitation_accept(
                invitation=found, user=request.user, accept_rules=form.cleaned_data["accept_rules"]
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"You are now in the team “{found.team.name}”.")
            return redirect("team", slug)
    context = page_context(
        request,
        competition,
        viewer,
        "team",
        invitation=found,
        form=form,
        alone=viewer.membership is not None
        and Membership.objects.filter(team_id=viewer.membership.team_id).count() == 1,
    )
    return render(request, "competitions/invitation.html", context)
