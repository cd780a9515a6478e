"""What every competition page shares: access checks, the viewer's role, service errors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from competitions.errors import ApplicationError, retry_after_headers
from competitions.models import Competition, Membership
from competitions.permissions import (
    Forbidden,
    NotFound,
    access_competition,
    is_organizer,
    membership_for,
)


class AuthenticatedRequest(HttpRequest):
    """The request of a view behind login_required: its user is a User."""

    user: User


def competition_for(
    request: HttpRequest,
    slug: str,
    *,
    organize: bool = False,
    competitions: QuerySet[Competition] | None = None,
) -> Competition:
    """The competition, or the 404/403 page: 404 for what the user may not know exists."""
    try:
        return access_competition(request.user, slug, organize=organize, competitions=competitions)
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    except Forbidden as exc:
        raise PermissionDenied(str(exc)) from exc


@dataclass
class Viewer:
    membership: Membership | None
    is_organizer: bool

    @property
    def team_id(self) -> int | None:
        return self.membership.team_id if self.membership else None


def viewer_for(request: HttpRequest, competition: Competition) -> Viewer:
    """The viewer's team and role: at most two queries, none for an anonymous visitor."""
    return Viewer(
        membership=membership_for(request.user, competition),
        is_organizer=is_organizer(request.user, competition),
    )


def competition_status(competition: Competition, now: datetime | None = None) -> str:
    now = now or timezone.now()
    if competition.is_finalized or (competition.end_at and competition.end_at <= now):
        return "finished"
    if competition.start_at and competition.start_at > now:
        return "upcoming"
    return "open"


def deadline_of(competition: Competition, now: datetime | None = None) -> datetime | None:
    """When submissions stop: the end of the phase open now (None: open-ended), capped by
    the competition's end; before the first phase opens, the competition's end.

    Reads `competition.phases.all()`, so a list prefetches "phases".
    """
    now = now or timezone.now()
    phase = next((p for p in competition.phases.all() if p.is_open_at(now)), None)
    ends = [e for e in (phase.end_at if phase else None, competition.end_at) if e is not None]
    return min(ends) if ends else None


def page_context(
    request: HttpRequest, competition: Competition, viewer: Viewer, tab: str, **extra
) -> dict:
    """The context of a page under a competition's tabs (templates/competitions/_layout.html)."""
    return {
        "competition": competition,
        "viewer": viewer,
        "membership": viewer.membership,
        "is_organizer": viewer.is_organizer,
        "tab": tab,
        "status": competition_status(competition),
        **extra,
    }


def page_of(request: HttpRequest, items, per_page: int) -> Page:
    return Paginator(items, per_page).get_page(request.GET.get("page"))


def posted(request: HttpRequest) -> tuple:
    """A form's data and files: bound on a POST even when the POST is empty."""
    if request.method == "POST":
        return request.POST, request.FILES
    return None, None


def wants_json(request: HttpRequest) -> bool:
    """The page's script asks for JSON; a plain form post gets a page."""
    return "application/json" in request.headers.get("Accept", "")


def error_json(exc: ApplicationError) -> JsonResponse:
    body = {"detail": exc.message, "code": exc.code, **exc.extra}
    return JsonResponse(body, status=exc.status, headers=retry_after_headers(exc))


def quota_page(request: HttpRequest, exc: ApplicationError, back_url: str) -> HttpResponse:
    """429: the quota is used up; says when it resets (UTC midnight) or that it never does."""
    resets_at = exc.extra.get("resets_at")
    context = {
        "message": exc.message,
        "resets_at": parse_datetime(resets_at) if resets_at else None,
        "back_url": back_url,
    }
    response = render(request, "errors/429.html", context, status=429)
    for name, value in retry_after_headers(exc).items():
        response[name] = value
    return response
