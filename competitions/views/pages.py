"""Public competition pages: the list, a competition and its leaderboard."""

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from competitions import selectors
from competitions.markdown import render_markdown
from competitions.permissions import NotFound, access_competition, membership_for

PAGE_SIZE = 50


def competition_list(request: HttpRequest) -> HttpResponse:
    competitions = selectors.competition_list_for_user(request.user).order_by("-created_at")
    return render(request, "competitions/list.html", {"competitions": competitions})


def _competition_or_404(request: HttpRequest, slug: str):
    try:
        return access_competition(request.user, slug)
    except NotFound as exc:
        raise Http404(str(exc)) from exc


def competition_detail(request: HttpRequest, slug: str) -> HttpResponse:
    competition = _competition_or_404(request, slug)
    context = {
        "competition": competition,
        "task": competition.task,
        "files": competition.task.files.all(),
        "phases": competition.phases.all(),
        "description": render_markdown(competition.description),
        "rules": render_markdown(competition.rules),
        "membership": membership_for(request.user, competition),
    }
    return render(request, "competitions/detail.html", context)


def leaderboard(request: HttpRequest, slug: str) -> HttpResponse:
    competition = _competition_or_404(request, slug)
    split = request.GET.get("split", "public")
    if split not in ("public", "private") or (
        split == "private" and not selectors.private_split_visible(request.user, competition)
    ):
        split = "public"
    try:
        page = max(int(request.GET.get("page", 1)), 1)
    except ValueError:
        page = 1
    board = selectors.leaderboard_page(
        competition=competition, split=split, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    paginator = Paginator(range(board.count), PAGE_SIZE)
    membership = membership_for(request.user, competition)
    context = {
        "competition": competition,
        "board": board,
        "page_obj": paginator.get_page(page),
        "my_team_id": membership.team_id if membership else None,
        "can_see_private": selectors.private_split_visible(request.user, competition),
    }
    return render(request, "competitions/leaderboard.html", context)
