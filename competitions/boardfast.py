"""Anonymous leaderboard reads answered before the expensive part of the stack: no session,
no user, no CSRF, no messages, no URL resolving, no view; one indexed query.

`BoardFastPathMiddleware` sits early in MIDDLEWARE (after the request id, security and
static-file middleware, whose headers every answer still gets). The normal path stays the
one that decides: whenever it answers an anonymous read of a board page or JSON with a 200
from competitions/boardcache.py, this keeps the answer as it left the inner middleware
(status, headers, bytes) under the request's absolute URL, with what it was valid for:

- the competition's id, its visibility and whether it was finalized when the normal path
  (access checks included) answered, the board token (board version and ranked task
  version) of the bytes, the competition's status the page showed, and the next phase's
  start (its columns may change then: competitions/selectors_boards.py).

A later request for the same URL that is eligible (below) is answered from that copy after
ONE query (`_current`: the competition by its unique slug, with its task's version and its
board version, in one statement) if all of the above still hold; else it goes the normal
path, which answers (and keeps) afresh. So a competition made invite-only or unlisted, a
finalize, a new board version or a status passing with the clock is never answered from
here; access is never decided here either: only "the same as when the normal path allowed
it". If-None-Match is answered 304 exactly as boardcache does.

Two relaxations, for reads under load (bench/bench_board_load.py), both bounded in time:

- HELDOUT_BOARD_FRESH_MS: each process reuses a competition's row (`_current`) for that
  long, so most reads cost no query at all; an anonymous reader may see a board as it was
  up to that long ago. 0 (the tests' setting) reads it on every request.
- One refresh at a time: when only the board token moved (same competition, visibility,
  finalize state and status: nothing that decides access), one request per process and URL
  goes the normal path to fetch or render the new version, and meanwhile the process's
  other requests for that URL get the previous copy, for at most STALE_FOR_S.

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
import time
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
# How long a process answers a URL's previous copy while one of its requests refreshes it.
STALE_FOR_S = 2.0
# Rows kept per process (HELDOUT_BOARD_FRESH_MS) before the oldest are forgotten.
MAX_ROWS = 10_000
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


_rows: dict[str, tuple[float, tuple]] = {}  # slug -> (read at, _current's row)
# URL key -> when a request of this process went the normal path to refresh it.
_refreshing: dict[str, float] = {}
_refreshing_lock = threading.Lock()


def _current_fresh(slug: str) -> tuple | None:
    """`_current(slug)`, or this process's copy of it if read less than
    HELDOUT_BOARD_FRESH_MS ago (timed from before its query: never older than that)."""
    fresh_s = settings.HELDOUT_BOARD_FRESH_MS / 1000
    now = time.monotonic()
    if fresh_s > 0:
        kept = _rows.get(slug)
        if kept is not None and now - kept[0] < fresh_s:
            return kept[1]
    row = _current(slug)
    if fresh_s > 0 and row is not None:
        if len(_rows) >= MAX_ROWS:
            _rows.clear()
        _rows[slug] = (now, row)
    return row


def _refresh_claimed(key: str) -> bool:
    """Whether this request is the one of its process to refresh `key` (else another one
    is, since less than STALE_FOR_S)."""
    now = time.monotonic()
    with _refreshing_lock:
        since = _refreshing.get(key)
        if since is not None and now - since < STALE_FOR_S:
            return False
        _refreshing[key] = now
        return True


def _refreshing_now(key: str) -> bool:
    since = _refreshing.get(key)  # (a read without the lock: a hint, checked again to claim)
    return since is not None and time.monotonic() - since < STALE_FOR_S


def _refresh_done(key: str) -> None:
    with _refreshing_lock:
        _refreshing.pop(key, None)


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
    return _same_access(kept, row) and kept["token"] == _token(row)


def _token(row: tuple) -> str:
    *_, task_version, board_version = row
    return f"{board_version or 0}.{task_version}"


def _same_access(kept: dict, row: tuple) -> bool:
    """Whether everything but the board token is as when `kept` was answered: the
    competition, its visibility, its finalize state and the status the page shows."""
    from competitions.views.common import competition_status

    pk, visibility, finalized_at, start_at, end_at, _task_version, _board_version = row
    if kept["competition"] != pk or kept["visibility"] != visibility:
        return False
    if kept["finalized"] != (finalized_at is not None):
        return False
    until = kept.get("until")  # the next phase's start: the columns may change then
    if until is not None and time.time() >= until:
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
        "until": board_key.until.timestamp() if board_key.until else None,
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
        answer, refreshing = self._from_kept(request, key, slug)
        if answer is not None:
            request.META[SERVED] = True
            return answer
        try:
            response = self.get_response(request)
            try:
                _keep(request, key, response)
            except Exception:  # the cache unreachable: the answer stands, only unkept
                logger.warning("board fast path: could not keep an answer", exc_info=True)
        finally:
            if refreshing:
                _refresh_done(key)
        return response

    def _from_kept(
        self, request: HttpRequest, key: str, slug: str
    ) -> tuple[HttpResponseBase | None, bool]:
        """(the answer from a kept copy, or None for the normal path; whether this request
        claimed the refresh of `key`, to be released once the normal path answered)."""
        local, shared = caches["boards-local"], caches["boards"]
        try:
            kept, in_local = local.get(key), True
            if kept is None:
                kept, in_local = shared.get(key), False
                if kept is None:
                    return None, False
            row = _current_fresh(slug)
            if row is None:
                return None, False
            if not _valid(kept, row):
                if not _same_access(kept, row):
                    return None, False
                if _refreshing_now(key):  # another request of this process fetches it
                    return _answer(request, kept), False
                previous = kept
                kept = shared.get(key) if in_local else None  # another process's, maybe current
                if kept is None or not _valid(kept, row):
                    if not _refresh_claimed(key):
                        return _answer(request, previous), False  # one refresh at a time
                    return None, True
                local.set(key, kept)
            elif not in_local:
                local.set(key, kept)
        except DatabaseError:
            # A connection broken since its last use (a database restart): closed, so that
            # the normal path opens a new one (or meets the outage, and answers it as one).
            if not connection.in_atomic_block:  # (a test's transaction holds it open)
                connection.close()
            return None, False
        except Exception:  # the shared cache unreachable, say: the normal path answers
            logger.debug("board fast path: fell through", exc_info=True)
            return None, False
        return _answer(request, kept), False
