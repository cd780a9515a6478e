"""Anonymous leaderboard reads answered before the expensive part of the stack: no session,
no user, no CSRF, no messages, no URL resolving, no view; one indexed query.

`BoardFastPathMiddleware` sits early in MIDDLEWARE (after the request id, security and
static-file middleware, whose headers every answer still gets). The normal path stays the
one that decides: whenever it answers an anonymous read of a board page or JSON with a 200
from competitions/boardcache.py, this keeps the answer as it left the inner middleware
(status, headers, bytes) under the request's absolute URL, with what it was valid for:

- the competition's id, its visibility and whether it was finalized when the normal path
  (access checks included) answered, the board token (board version and ranked task
  version) of the bytes, and the competition's status the page showed.

A later request for the same URL that is eligible (below) is answered from that copy after
ONE query (`_current`: the competition by its unique slug, with its task's version and its
board version, in one statement) if all of the above still hold; else it goes the normal
path, which answers (and keeps) afresh. So a competition made invite-only or unlisted, a
finalize, a new board version or a status passing with the clock is never answered from
here; access is never decided here either: only "the same as when the normal path allowed
it". If-None-Match is answered 304 exactly as boardcache does.

Eligible: GET (HEAD and the rest go the normal path), no Authorization header, no cookie
but the CSRF one (a session or a pending message makes the page someone's own), a query
string of allow-listed parameters only, and for the API an Accept that picks JSON. The
board CSV, the browsable API, searches and every other parameter take the normal path.
HELDOUT_BOARD_CACHE=false turns this off with the rest of the board cache.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Callable

from django.conf import settings
from django.core.cache import caches
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import OuterRef, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseNotModified

from competitions import boardcache
from competitions.models import BoardVersion, Competition

logger = logging.getLogger(__name__)

# Set in request.META when the kept copy answered (tests and debugging tell the paths apart).
SERVED = "heldout.board_fast"
_PAGE = re.compile(r"^/c/(?P<slug>[-a-zA-Z0-9_]+)/leaderboard/$")
_API = re.compile(r"^/api/v1/competitions/(?P<slug>[-a-zA-Z0-9_]+)/leaderboard/?$")
# Parameters whose every value the normal path keeps per URL (competitions/views/pages.py's
# leaderboard, competitions/api/competitions.py's LeaderboardApi); anything else (a search,
# ?team=mine, ?format=) goes the normal path.
PAGE_PARAMS = frozenset({"page", "split", "sort"})
API_PARAMS = frozenset({"page", "page_size", "split"})
# The Accept headers for which the API answers JSON (its first renderer).
JSON_ACCEPTS = frozenset({"", "*/*", "application/json"})
# Headers of a kept 200 that a 304 does not carry (HttpResponseNotModified, CommonMiddleware).
_NOT_ON_304 = frozenset({"content-type", "content-length", "content-disposition"})


def fast_key(request: HttpRequest) -> tuple[str, str] | None:
    """(the cache key, the competition's slug) when `request` may be answered from a kept
    copy, else None."""
    if request.method != "GET" or not settings.HELDOUT_BOARD_CACHE:
        return None
    if "HTTP_AUTHORIZATION" in request.META:
        return None
    if any(name != settings.CSRF_COOKIE_NAME for name in request.COOKIES):
        return None
    path = request.path_info
    if match := _PAGE.match(path):
        allowed = PAGE_PARAMS
    elif match := _API.match(path):
        allowed = API_PARAMS
        if request.META.get("HTTP_ACCEPT", "").strip() not in JSON_ACCEPTS:
            return None
    else:
        return None
    if any(name not in allowed for name in request.GET):
        return None
    try:
        url = request.build_absolute_uri()  # the JSON's links repeat it; the host is checked
    except Exception:  # DisallowedHost and the like: the normal path answers them
        return None
    digest = hashlib.sha256(f"{boardcache.FORMAT}\0{url}".encode()).hexdigest()
    return "boardfast:" + digest, match["slug"]


def _current(slug: str) -> tuple | None:
    """(id, visibility, finalized_at, start_at, end_at, task version, board version) of the
    competition `slug` now: one statement on its unique slug. The ORM builds and compiles it
    once per thread and connection (that is most of this path's cost otherwise); the
    database's converters still read the values (SQLite's datetimes, say)."""
    wrapper = connections[DEFAULT_DB_ALIAS]  # this thread's
    compiled = getattr(_compiled, "query", None)
    if compiled is None or compiled[0] is not wrapper:
        compiled = _compiled.query = (wrapper, *_compile(wrapper))
    _, sql, params, slug_at, converters, compiler = compiled
    params = [*params[:slug_at], slug, *params[slug_at + 1 :]]
    # CONN_HEALTH_CHECKS would first send a `SELECT 1` on a reused connection: this
    # statement is its own check (a failure closes the connection and the normal path
    # answers on a new one, BoardFastPathMiddleware._from_kept).
    wrapper.health_check_done = True  # type: ignore[attr-defined]  # (not in the stubs)
    with wrapper.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if converters:
        rows = list(compiler.apply_converters(rows, converters))
    return tuple(rows[0]) if rows else None


_compiled = threading.local()
_SLUG_MARK = "\0heldout-board-fast-path-slug\0"


def _compile(wrapper: BaseDatabaseWrapper) -> tuple:
    board = BoardVersion.objects.filter(competition_id=OuterRef("pk")).values("version")[:1]
    query = (
        Competition.objects.filter(slug=_SLUG_MARK)
        .order_by()
        .annotate(board_version=Subquery(board))
        .values_list(
            "pk", "visibility", "finalized_at", "start_at", "end_at", "task__version",
            "board_version",
        )[:1]
    ).query  # fmt: skip
    compiler = query.get_compiler(connection=wrapper)
    sql, params = compiler.as_sql()
    converters = compiler.get_converters([column[0] for column in compiler.select])
    return sql, tuple(params), params.index(_SLUG_MARK), converters, compiler


def _valid(kept: dict, row: tuple) -> bool:
    from competitions.views.common import competition_status

    pk, visibility, finalized_at, start_at, end_at, task_version, board_version = row
    if kept["competition"] != pk or kept["visibility"] != visibility:
        return False
    if kept["finalized"] != (finalized_at is not None):
        return False
    if kept["token"] != f"{board_version or 0}.{task_version}":
        return False
    if kept["status"]:
        now = Competition(finalized_at=finalized_at, start_at=start_at, end_at=end_at)
        if competition_status(now) != kept["status"]:
            return False
    return True


def _answer(request: HttpRequest, kept: dict) -> HttpResponseBase:
    given = request.headers.get("If-None-Match", "")
    if given and boardcache._etag_matches(request, kept["etag"]):
        response = HttpResponseNotModified()
        for name, value in kept["headers"]:
            if name.lower() not in _NOT_ON_304:
                response[name] = value
        response["Content-Length"] = "0"  # as CommonMiddleware gives the normal path's 304
        return response
    return HttpResponse(kept["body"], headers=dict(kept["headers"]))


def _keep(request: HttpRequest, key: str, response: HttpResponseBase) -> None:
    """Keep `response`, the normal path's 200 to an eligible request, if boardcache marked
    it as a board's answer to an anonymous viewer (the access check passed)."""
    mark = getattr(response, boardcache.MARK, None)
    user = getattr(request, "user", None)
    if (
        mark is None
        or response.status_code != 200
        or not isinstance(response, HttpResponse)
        or response.cookies
        or user is None
        or user.is_authenticated
    ):
        return
    board_key, token = mark
    if board_key.viewer not in ("anonymous", "public"):
        return
    competition = board_key.competition
    kept = {
        "competition": competition.pk,
        "visibility": competition.visibility,
        "finalized": competition.is_finalized,
        "status": board_key.status,
        "token": token,
        "etag": response["ETag"],
        "headers": list(response.items()),
        "body": response.content,
    }
    local = caches["boards-local"]
    previous = local.get(key)
    if previous is not None and previous["token"] == token and previous["body"] == kept["body"]:
        return  # kept already: no write to the shared cache on every normal answer
    caches["boards"].set(key, kept)
    local.set(key, kept)


class BoardFastPathMiddleware:
    """Answers an eligible anonymous board read from its kept copy (module docstring)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        found = fast_key(request)
        if found is None:
            return self.get_response(request)
        key, slug = found
        answer = self._from_kept(request, key, slug)
        if answer is not None:
            request.META[SERVED] = True
            return answer
        response = self.get_response(request)
        try:
            _keep(request, key, response)
        except Exception:  # the cache unreachable: the answer stands, only unkept
            logger.warning("board fast path: could not keep an answer", exc_info=True)
        return response

    def _from_kept(self, request: HttpRequest, key: str, slug: str) -> HttpResponseBase | None:
        local, shared = caches["boards-local"], caches["boards"]
        try:
            kept, in_local = local.get(key), True
            if kept is None:
                kept, in_local = shared.get(key), False
                if kept is None:
                    return None
            row = _current(slug)
            if row is None:
                return None
            if not _valid(kept, row):
                if not in_local:
                    return None
                kept = shared.get(key)  # another process may have kept the current one
                if kept is None or not _valid(kept, row):
                    return None
                local.set(key, kept)
            elif not in_local:
                local.set(key, kept)
        except DatabaseError:
            # A connection broken since its last use (a database restart): closed, so that
            # the normal path opens a new one (or meets the outage, and answers it as one).
            if not connection.in_atomic_block:  # (a test's transaction holds it open)
                connection.close()
            return None
        except Exception:  # the shared cache unreachable, say: the normal path answers
            logger.debug("board fast path: fell through", exc_info=True)
            return None
        return _answer(request, kept)
