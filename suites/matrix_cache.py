"""The matrix's page body and JSON, rendered once per matrix token (suites.selectors
suite_matrix_token: any change to what the matrix shows gives another) and kept in the
"boards" caches like a leaderboard's answers (competitions/boardcache.py): one entry per
suite and variant (page or JSON, pivot, host), holding the latest token's bytes.

What is kept holds nothing about who asks: access is checked on every request before
this is consulted, the page keeps only its body (the site's header is rendered per
request), and the JSON's absolute links are keyed by the request's host. A 500 x 50 matrix
is 5 MB of page and 7 MB of JSON, rendered in about 0.3 s each (the worker that keeps a new
matrix renders the page's, suites/tasks.py); a kept one costs a cache read.
HELDOUT_BOARD_CACHE=false renders every request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from django.conf import settings
from django.core.cache import caches

from suites.models import Suite

# Part of every key: change it when what a token renders to changes without a migration.
FORMAT = "2"  # 2: the cells link their entry pages


def kept_render(
    *, suite: Suite, token: str, parts: tuple[str, ...], render: Callable[[], bytes]
) -> bytes:
    """`render()`'s bytes for this suite, token and `parts` (what else they depend on: the
    format, the parameters), rendered once per token. One entry per suite and `parts`,
    holding the latest token's bytes: an older token is never asked for again, and a large
    suite's page is megabytes."""
    if not settings.HELDOUT_BOARD_CACHE or not token:
        return render()
    # created_at tells apart a suite from an earlier one with the same id.
    name = "\0".join([FORMAT, str(suite.pk), suite.created_at.isoformat(), *parts])
    key = "suite-view:" + hashlib.sha256(name.encode()).hexdigest()
    local, shared = caches["boards-local"], caches["boards"]
    kept = local.get(key)
    if kept is None or kept[0] != token:
        kept = shared.get(key)
        if kept is None or kept[0] != token:
            kept = (token, render())
            shared.set(key, kept)
        local.set(key, kept)
    return kept[1]
