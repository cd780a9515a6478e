"""The matrix's page body and JSON, rendered once per matrix token (suites.selectors
suite_matrix_token: any change to what the matrix shows gives another) and kept in the
"boards" caches like a leaderboard's answers (competitions/boardcache.py).

What is kept holds nothing about who asks: access is checked on every request before
this is consulted, the page keeps only its body (the site's header is rendered per
request), and the JSON's absolute links are keyed by the request's host. A 500 x 50 matrix
renders in about 2 s (page) and 0.5 s (JSON); a kept one costs a cache read.
HELDOUT_BOARD_CACHE=false renders every request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from django.conf import settings
from django.core.cache import caches

from suites.models import Suite

# Part of every key: change it when what a token renders to changes without a migration.
FORMAT = "1"


def kept_render(
    *, suite: Suite, token: str, parts: tuple[str, ...], render: Callable[[], bytes]
) -> bytes:
    """`render()`'s bytes for this suite, token and `parts` (what else they depend on: the
    format, the parameters), rendered once per token."""
    if not settings.HELDOUT_BOARD_CACHE or not token:
        return render()
    # created_at tells apart a suite from an earlier one with the same id.
    name = "\0".join([FORMAT, str(suite.pk), suite.created_at.isoformat(), token, *parts])
    key = "suite-view:" + hashlib.sha256(name.encode()).hexdigest()
    local, shared = caches["boards-local"], caches["boards"]
    body = local.get(key)
    if body is None:
        body = shared.get(key)
        if body is None:
            body = render()
            shared.set(key, body)
        local.set(key, body)
    return body
