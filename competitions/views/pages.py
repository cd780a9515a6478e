"""Public competition pages: the list, and a competition's overview, data, rules,
leaderboard and statistics tabs."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from competitions import boardcache, selectors, stats, svg
from competitions.errors import ApplicationError
from competitions.forms import CompetitionFilterForm, JoinForm
from competitions.markdown import plain_summary, render_markdown
from competitions.models import Competition, LeaderboardEntry
from competitions.permissions import is_organizer, task_files_visible
from competitions.selectors_boards import (
    board_columns,
    board_columns_of,
    board_phase_at,
    board_phase_key,
    with_board_phase,
)
from competitions.selectors_listings import (
    last_submission_token,
    membership_with_last_submission,
    team_standing,
    with_card_counts,
)
from competitions.services.teams import competition_join
from competitions.views import board_rows
from competitions.views.common import (
    AuthenticatedRequest,
    Viewer,
    competition_for,
    competition_status,
    deadline_of,
    page_context,
    page_of,
    viewer_for,
)
from competitions.views.plots import metric_bounds, progress_plot
from notifications.selectors import notifications_unread_for_request
from scoring.metrics import metric_get

PAGE_SIZE = 50
TEAM_QUERY_MAX = 100  # a team name's length (models.Team.name)
LIST_PAGE_SIZE = 20


def competition_list(request: HttpRequest) -> HttpResponse:
    form = CompetitionFilterForm(request.GET or None)
    competitions = selectors.competition_list_for_user(request.user).order_by("-created_at")
    if form.is_valid():
        competitions = _filtered(competitions, form.cleaned_data)
    query = request.GET.copy()
    query.pop("page", None)
    now = timezone.now()
    listed = with_card_counts(competitions.select_related("task").prefetch_related("phases"))
    page_obj = page_of(request, listed, LIST_PAGE_SIZE)
    for competition in page_obj:
        competition.summary = plain_summary(competition.description)  # type: ignore[attr-defined]
        competition.status = competition_status(competition, now)  # type: ignore[attr-defined]
        competition.deadline = deadline_of(competition, now)  # type: ignore[attr-defined]
    context = {"form": form, "page_obj": page_obj, "query": query.urlencode(), "now": now}
    return render(request, "competitions/list.html", context)


def _filtered(competitions, data: dict):
    now = timezone.now()
    if data["q"]:
        competitions = competitions.filter(
            Q(title__icontains=data["q"]) | Q(description__icontains=data["q"])
        )
    if data["task_type"]:
        competitions = competitions.filter(task__task_type=data["task_type"])
    started = Q(start_at__isnull=True) | Q(start_at__lte=now)
    finished = Q(finalized_at__isnull=False) | Q(end_at__lte=now)
    if data["status"] == "open":
        competitions = competitions.filter(started).exclude(finished)
    elif data["status"] == "upcoming":
        competitions = competitions.filter(start_at__gt=now).exclude(finished)
    elif data["status"] == "finished":
        competitions = competitions.filter(finished)
    return competitions


def competition_detail(request: HttpRequest, slug: str) -> HttpResponse:
    competition = competition_for(request, slug)
    viewer = viewer_for(request, competition)
    task = competition.task
    phases, now = list(competition.phases.all()), timezone.now()
    board_phase = board_phase_at(phases, now)
    context = page_context(
        request,
        competition,
        viewer,
        "overview",
        task=task,
        metric=metric_get(task.primary_metric),
        board_columns=board_columns(task, board_phase.board_metrics if board_phase else None),
        phases=phases,
        description=render_markdown(competition.description),
        now=now,
        deadline=deadline_of(competition),
    )
    return render(request, "competitions/detail.html", context)


def competition_data(request: HttpRequest, slug: str) -> HttpResponse:
    competition = competition_for(request, slug)
    viewer = viewer_for(request, competition)
    task = competition.task
    files = list(task_files_visible(request.user, competition))
    context = page_context(
        request,
        competition,
        viewer,
        "data",
        task=task,
        files=files,
        samples=[f for f in files if f.kind == "sample"],
        now=timezone.now(),
    )
    return render(request, "competitions/data.html", context)


def competition_rules(request: HttpRequest, slug: str) -> HttpResponse:
    return _rules_page(request, competition_for(request, slug), JoinForm())


def _rules_page(
    request: HttpRequest, competition: Competition, form: JoinForm, status: int = 200
) -> HttpResponse:
    """The rules with the join form (blank, or refused with its errors)."""
    viewer = viewer_for(request, competition)
    context = page_context(
        request,
        competition,
        viewer,
        "rules",
        rules=render_markdown(competition.rules),
        tie_rule=selectors.tie_rule_text(competition),
        form=form,
    )
    return render(request, "competitions/rules.html", context, status=status)


@login_required
@require_POST
def competition_join_view(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    competition = competition_for(request, slug)
    form = JoinForm(request.POST)
    if not form.is_valid():
        return _rules_page(request, competition, form, status=400)
    try:
        membership = competition_join(competition=competition, user=request.user, accept_rules=True)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("competition-rules", slug)
    messages.success(
        request, f"You joined {competition.title} as the team “{membership.team.name}”."
    )
    return redirect("submit", slug)


def leaderboard(request: HttpRequest, slug: str) -> HttpResponseBase:
    """One page of a board in a fixed number of queries, whatever the board's size; rendered
    once per board version and viewer (competitions/boardcache.py). `?sort=` (an allow-listed
    column) reorders it and `?q=` finds teams by name, without changing the ranks shown; a
    search is rendered on each request, never kept."""
    competitions = boardcache.with_board_token(Competition.objects.all())
    competitions = with_board_phase(competitions, timezone.now())
    competition = competition_for(request, slug, competitions=competitions)
    viewer = Viewer(
        membership=membership_with_last_submission(request.user, competition),
        is_organizer=is_organizer(request.user, competition),
    )
    can_see_private = competition.is_finalized or viewer.is_organizer
    split = _split(request, competition, can_see_private)
    if request.GET.get("team") == "mine" and viewer.team_id:
        return _redirect_to_team(competition, split, viewer.team_id)
    try:
        page = max(int(request.GET.get("page", 1)), 1)
    except ValueError:
        page = 1
    sort = request.GET.get("sort", "rank")
    sort = sort if sort in selectors.BOARD_SORTS else "rank"
    query = request.GET.get("q", "").strip()[:TEAM_QUERY_MAX]

    def render_page() -> HttpResponse:
        shown = BoardView(split, page, sort, query)
        return _leaderboard_page(request, competition, viewer, shown, can_see_private)

    if _has_messages(request) or query:  # shown once, or one of endless searches: not kept
        return render_page()
    status = competition_status(competition)  # moves with the clock, not the board
    key = boardcache.BoardKey(
        token=boardcache.board_token_of(competition),
        competition=competition,
        viewer=_viewer_class(request, viewer),
        fmt="html",
        params=(
            split,
            str(page),
            status,
            sort,
            last_submission_token(viewer.membership),
            board_phase_key(competition),
        ),
        shared=not request.user.is_authenticated
        and competition.visibility == Competition.Visibility.PUBLIC,
        status=status,
        until=getattr(competition, "board_phase_until", None),
    )
    return boardcache.board_response(request, key, render_page)


def _viewer_class(request: HttpRequest, viewer: Viewer) -> str:
    """What the page shows differently to whom: the signed-in user's name, team and role,
    the CSRF secret their log-out form's token comes from, and the header's unread count."""
    if not request.user.is_authenticated:
        return "anonymous"
    team = viewer.membership.team_id if viewer.membership else ""
    csrf = request.META.get("CSRF_COOKIE", "")
    unread = notifications_unread_for_request(request)
    return (
        f"user:{request.user.pk}:{request.user.get_username()}:{team}:{viewer.is_organizer}:{csrf}"
        f":{unread}"
    )


def _has_messages(request: HttpRequest) -> bool:
    storage = getattr(request, "_messages", None)
    return storage is not None and len(storage) > 0


@dataclass(frozen=True)
class BoardView:
    """Which rows of a board a page shows: the split, the page, the order, the search."""

    split: str
    page: int
    sort: str = "rank"
    query: str = ""

    def link(self, **changes) -> str:
        """The query string of this view with `changes` (page 1 unless a page is given)."""
        fields = {"split": self.split, "sort": self.sort, "q": self.query, "page": 1, **changes}
        kept = {
            k: v for k, v in fields.items() if v and (k, v) not in (("sort", "rank"), ("page", 1))
        }
        return "?" + urlencode(kept)


# Each column's link: the order it asks for first, and the opposite once it is the order.
SORTABLE = {
    "rank": ("rank", "rank"),
    "team": ("team", "-team"),
    "entries": ("-entries", "entries"),
    "last": ("-last", "last"),
}


def _sort_links(shown: BoardView) -> dict[str, dict[str, str]]:
    """Per column: its link and, when the board is in its order, aria-sort's value."""
    links = {}
    for column, (first, second) in SORTABLE.items():
        current = (
            shown.sort.removeprefix("-") == column if column != "rank" else shown.sort == "rank"
        )
        target = second if shown.sort == first and column != "rank" else first
        direction = ""
        if current:
            direction = "descending" if shown.sort.startswith("-") else "ascending"
        links[column] = {"href": shown.link(sort=target), "aria_sort": direction}
    return links


def _leaderboard_page(
    request: HttpRequest,
    competition: Competition,
    viewer: Viewer,
    shown: BoardView,
    can_see_private: bool,
) -> HttpResponse:
    slug = competition.slug
    split, page = shown.split, shown.page
    offset = (page - 1) * PAGE_SIZE
    # One row more than shown tells whether the last shown row ties with the next page.
    board = selectors.leaderboard_page(
        competition=competition,
        split=split,
        offset=offset,
        limit=PAGE_SIZE + 1,
        sort=shown.sort,
        team_query=shown.query,
        columns=board_columns_of(competition),
    )
    rows = board.rows[:PAGE_SIZE]
    ranks = [r.rank for r in board.rows]
    for i, row in enumerate(rows):
        if row.tied is not None:  # a sorted or searched page: the selector knows
            continue
        row.tied = (
            (i > 0 and ranks[i - 1] == row.rank)
            or (i + 1 < len(ranks) and ranks[i + 1] == row.rank)
            or (i == 0 and row.rank <= offset)
        )
    shown_count = board.count if board.matching is None else board.matching
    pages = max((shown_count + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    show_since_public = split == "private" and competition.is_finalized
    # The public split of a Ladder board is never compared (selectors_compare.WithheldByLadder).
    ladder = split == "public" and competition.public_board == Competition.PublicBoard.LADDER
    compare_url = None if ladder else reverse("compare", args=[slug])
    # The reference rows (never numbered) fall among the rows in the board's own order only:
    # their places mean nothing on a sorted or searched page.
    lines = rows if shown.sort != "rank" or shown.query else board.with_references(rows, offset)
    standing = (
        team_standing(competition=competition, membership=viewer.membership, split=split)
        if viewer.membership
        else None
    )
    context = page_context(
        request,
        competition,
        viewer,
        "leaderboard",
        board=board,
        rows=rows,
        rows_html=board_rows.rows_html(
            lines,
            slug=slug,
            split=split,
            my_team_id=viewer.team_id,
            show_since_public=show_since_public,
            compare_url=compare_url,
        ),
        page=page,
        pages=pages,
        page_links=[(n, shown.link(page=n)) for n in _page_numbers(page, pages)],
        previous_link=shown.link(page=page - 1),
        next_link=shown.link(page=page + 1),
        shown=shown,
        every_team_link=shown.link(q=""),
        sort_links=_sort_links(shown),
        standing=standing,
        first_rank=offset + 1,
        my_team_id=viewer.team_id,
        can_see_private=can_see_private,
        # The shake-up column: on the private board once final (services/shakeup.py).
        show_since_public=show_since_public,
        csv_url=reverse("api:leaderboard", args=[slug]) + f"?split={split}&format=csv",
        csv_name=f"{slug}-leaderboard-{split}.csv",
    )
    return render(request, "competitions/leaderboard.html", context)


def _split(request: HttpRequest, competition: Competition, can_see_private: bool) -> str:
    """The board asked for; by default the one that decides: the private board once the
    competition is finalized, the public one before."""
    default = "private" if competition.is_finalized else "public"
    split = request.GET.get("split", default)
    if split not in ("public", "private") or (split == "private" and not can_see_private):
        return "public"
    return split


def _redirect_to_team(competition, split: str, team_id: int) -> HttpResponse:
    position = stats.board_position(competition=competition, split=split, team_id=team_id)
    url = reverse("leaderboard", args=[competition.slug]) + f"?split={split}"
    if position is None:
        return redirect(url)
    return redirect(f"{url}&page={position // PAGE_SIZE + 1}#team-{team_id}")


def _page_numbers(page: int, pages: int) -> list[int | None]:
    """1 … 4 5 [6] 7 8 … 200: None stands for a gap."""
    wanted = {1, pages, *range(max(page - 2, 1), min(page + 2, pages) + 1)}
    numbers: list[int | None] = []
    for n in sorted(wanted):
        if numbers and n - (numbers[-1] or 0) > 1:
            numbers.append(None)
        numbers.append(n)
    return numbers


def competition_stats(request: HttpRequest, slug: str) -> HttpResponse:
    competition = competition_for(request, slug)
    viewer = viewer_for(request, competition)
    can_see_private = competition.is_finalized or viewer.is_organizer
    split = _split(request, competition, can_see_private)
    task = competition.task
    metric = metric_get(task.primary_metric)
    scores = stats.board_scores(competition=competition, split=split)
    mine = None
    if viewer.team_id:
        mine = (
            LeaderboardEntry.objects.filter(
                competition=competition,
                split=split,
                team_id=viewer.team_id,
                task_version=task.version,
            )
            .values_list("score", flat=True)
            .first()
        )
    summary = _summary(scores, metric.higher_is_better)
    desc = (
        f"{len(scores)} teams on the {split} leaderboard. " + summary
        if scores
        else "No team has a score yet."
    )
    if mine is not None:
        desc += f" Your team's score is {mine:.4g}."
    histogram = svg.histogram(
        id_prefix="distribution",
        values=scores,
        title=f"Distribution of {metric.label} on the {split} leaderboard",
        desc=desc,
        x_label=metric.label,
        mark=mine,
        mark_label="your team",
        bounds=metric_bounds(metric),
    )
    progress = None
    if viewer.membership:
        progress = progress_plot(
            competition=competition, team=viewer.membership.team, split=split, metric=metric
        )
    context = page_context(
        request,
        competition,
        viewer,
        "stats",
        split=split,
        can_see_private=can_see_private,
        metric=metric,
        team_count=len(scores),
        summary=summary,
        histogram=histogram,
        progress=progress,
    )
    return render(request, "competitions/stats.html", context)


def _summary(scores: list[float], higher: bool) -> str:
    if not scores:
        return ""
    best = max(scores) if higher else min(scores)
    return f"Best {best:.4g}, median {statistics.median(scores):.4g}, worst {min(scores) if higher else max(scores):.4g}."
