"""Leaderboard reads that cost almost nothing between changes: each board's answers (the
page, the JSON, the CSV) are rendered once per board version and kept in the "boards" cache
(Redis with HELDOUT_CACHE_URL, else each process's memory), with a strong ETag.

- The version: `with_board_token` reads, with the competition's row and in the same
  statement, the counter that the database's triggers count up with every change to what
  the board shows (migration 0013_board_version) and the task's ranked version; whatever is
  rendered afterwards is at least as new as the version it is kept under. A kept answer
  costs that one query (and, signed in, the session, the user and the viewer's role).
- The key (`BoardKey`): competition, viewer class, format and parameters. The viewer class
  holds everything the answer depends on about who asks ("public", "organizer", a signed-in
  user's own pages), and access is checked on every request before the cache is consulted:
  the cache never decides who may see a board.
- The answer (`board_response`): 304 when If-None-Match holds the key's ETag (no board query
  at all); the kept answer when its version is current (from this process's memory, the
  "boards-local" cache, else the shared one); else the view renders it and it is kept. While one request renders a new version, the others answer the previous one (with
  its own ETag) rather than render the same thing at once.

An anonymous read of a kept page or JSON is answered earlier still, before sessions and
the view (competitions/boardfast.py), from a copy of the answer given here: each 200 from
`board_response` carries its key and token (`MARK`) for it.

HELDOUT_BOARD_CACHE=false turns all of it off (what bench/bench_board_load.py compares).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.cache import caches
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseNotModified
from django.template.response import SimpleTemplateResponse
from django.utils.cache import patch_vary_headers
from django.utils.http import parse_etags

from competitions.models import BoardVersion, Competition

# Part of every key: change it when what a version renders to changes without a migration.
FORMAT = "3"  # 3: reference rows and the normalized score
# How long a request may hold the right to render a version before others render it too.
RENDER_LOCK_S = 10
# Headers kept with an answer (the rest are the same on every answer, or per request).
KEPT_HEADERS = ("Content-Type", "Content-Disposition")


def with_board_token(competitions: QuerySet[Competition]) -> QuerySet[Competition]:
    """`competitions` read with their task and their board's version in the same statement,
    so that what is rendered from the row is of the same moment as the version (or newer:
    the rows rendered come from later statements). `board_token_of` reads the result."""
    board = BoardVersion.objects.filter(competition_id=OuterRef("pk")).values("version")[:1]
    return competitions.select_related("task").annotate(board_version=Subquery(board))


def board_token_of(competition: Competition) -> str:
    """The version of what the board shows: the triggers' count, and the ranked task
    version (a switch to a version with no scores changes no board row)."""
    return f"{getattr(competition, 'board_version', None) or 0}.{competition.task.version}"


def board_token(*, slug: str) -> str | None:
    """The board token of competition `slug`, or None if there is no such competition."""
    competition = with_board_token(Competition.objects.filter(slug=slug)).first()
    return None if competition is None else board_token_of(competition)


@dataclass(frozen=True)
class BoardKey:
    token: str | None  # board_token_of() the competition (None: nothing kept)
    competition: Competition
    viewer: str  # the viewer class: everything the answer depends on about who asks
    fmt: str  # html, json or csv
    params: tuple[str, ...]  # whatever else the answer depends on (split, page, URL)
    shared: bool  # whether a shared cache (a proxy) may keep the answer
    # The competition's status the answer shows (it moves with the clock), when it shows one:
    # what competitions/boardfast.py checks besides the token.
    status: str = ""
    # When the answer's columns may change with the clock (the next phase's start,
    # selectors_boards): competitions/boardfast.py serves no copy of it from then on.
    until: datetime | None = None

    @property
    def name(self) -> str:
        c = self.competition
        # created_at tells apart a competition from an earlier one with the same id.
        parts = [FORMAT, str(c.pk), c.created_at.isoformat(), self.viewer, self.fmt, *self.params]
        return "board:" + hashlib.sha256("\0".join(parts).encode()).hexdigest()

    @property
    def etag(self) -> str:
        return _etag(self.name, self.token or "")


def _etag(name: str, token: str) -> str:
    return '"' + hashlib.sha256(f"{name}\0{token}".encode()).hexdigest()[:32] + '"'


def board_response(
    request: HttpRequest, key: BoardKey, render: Callable[[], HttpResponseBase]
) -> HttpResponseBase:
    """The answer to `request` for `key`: 304, the kept answer, or `render()`'s (a 200 is
    kept; a DRF Response is kept once rendered)."""
    if not settings.HELDOUT_BOARD_CACHE or key.token is None:
        return render()
    if _etag_matches(request, key.etag):
        return _headed(HttpResponseNotModified(), key, key.etag)
    cache, local = caches["boards"], caches["boards-local"]
    kept = local.get(key.name)
    if kept is None or kept["token"] != key.token:
        kept = cache.get(key.name)
        if kept is not None and kept["token"] == key.token:
            local.set(key.name, kept)
    if kept is not None and kept["token"] == key.token:
        return _from_kept(kept, key)
    lock = key.name + ":rendering"
    mine = cache.add(lock, key.token, timeout=RENDER_LOCK_S)
    if not mine and kept is not None:
        return _from_kept(kept, key)  # the previous version, until the new one is kept
    try:
        response = render()
    except BaseException:
        if mine:
            cache.delete(lock)
        raise

    def keep(rendered: HttpResponseBase) -> None:
        if rendered.status_code == 200 and isinstance(rendered, HttpResponse):
            headers = {h: rendered[h] for h in KEPT_HEADERS if h in rendered}
            answer = {"token": key.token, "headers": headers, "body": rendered.content}
            cache.set(key.name, answer)
            local.set(key.name, answer)
        if mine:
            cache.delete(lock)

    if isinstance(response, SimpleTemplateResponse) and not response.is_rendered:
        response.add_post_render_callback(keep)
    else:
        keep(response)
    if response.status_code == 200:
        _headed(response, key, key.etag)
        _mark(response, key, key.token)
    return response


# The attribute that tells competitions/boardfast.py which key and token a 200 answers.
MARK = "heldout_board"


def _mark(response: HttpResponseBase, key: BoardKey, token: str) -> None:
    setattr(response, MARK, (key, token))


def _from_kept(kept: dict, key: BoardKey) -> HttpResponseBase:
    response = HttpResponse(kept["body"], headers=kept["headers"])
    _mark(response, key, kept["token"])
    return _headed(response, key, _etag(key.name, kept["token"]))


def _headed(response: HttpResponseBase, key: BoardKey, etag: str) -> HttpResponseBase:
    response["ETag"] = etag
    # Kept, but asked again each time: the board can change at any moment.
    response["Cache-Control"] = ("public" if key.shared else "private") + ", no-cache"
    patch_vary_headers(response, ["Cookie", "Authorization"])
    return response


def _etag_matches(request: HttpRequest, etag: str) -> bool:
    # If-None-Match compares weakly (RFC 9110 13.1.2).
    given = parse_etags(request.headers.get("If-None-Match", ""))
    return "*" in given or any(tag.removeprefix("W/") == etag for tag in given)
