"""One throttle for every door: the API's DRF throttles, reused by the pages.

The pages that take a password or cost work (log in, the admin's log in, sign up, password
reset and change, API token creation, the submit form) call the same DRF throttle class, with
the same scope and so the same cache key, as the API: one history per user (signed in) or per
client IP (DRF's `get_ident`, honouring NUM_PROXIES), whichever door is knocked on. A user the
API throttles is refused by the submit page, and the other way round.

The histories live in the shared cache (settings.CACHES: Redis or a database table), so a
limit holds across processes and hosts. Rates: REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
scopes "auth" and "submissions". Like DRF's, the check is read-then-write, not atomic:
requests racing in the same instant may pass a few over the limit; sequential ones never do.

Every refusal is a 429 with Retry-After; a page says in a sentence how long to wait.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, cast

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from rest_framework.throttling import ScopedRateThrottle

AUTH = "auth"
SUBMISSIONS = "submissions"


class ScopeThrottle(ScopedRateThrottle):
    """DRF's scoped throttle, whose refusal always has a wait (so a Retry-After)."""

    def wait(self) -> float:
        wait = super().wait()
        if wait is None:
            # DRF has none when the history holds more than the rate allows (a lowered rate):
            # wait until its oldest entry expires.
            oldest = self.history[-1] if self.history else self.now
            # drf-stubs omit `duration`, which allow_request sets.
            wait = getattr(self, "duration", 1) - (self.now - oldest)
        return max(float(wait), 1.0)


class _Scope:
    """What DRF's throttle reads from a view: its scope."""

    def __init__(self, scope: str):
        self.throttle_scope = scope


def throttle_wait(request: HttpRequest, scope: str) -> int | None:
    """Count this request in `scope`'s history; None if allowed, else the seconds to wait."""
    throttle = ScopeThrottle()
    # DRF reads only `user` and `META` from the request: a Django request has both.
    if throttle.allow_request(cast(Any, request), cast(Any, _Scope(scope))):
        return None
    return math.ceil(throttle.wait())


def wait_in_words(seconds: int) -> str:
    """'45 seconds', '2 minutes', '1 hour 5 minutes': the wait as a person reads it."""
    if seconds < 60:
        return f"{seconds} second{'' if seconds == 1 else 's'}"
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return f"{minutes} minute{'' if minutes == 1 else 's'}"
    hours, minutes = divmod(minutes, 60)
    words = f"{hours} hour{'' if hours == 1 else 's'}"
    return words + (f" {minutes} minute{'' if minutes == 1 else 's'}" if minutes else "")


def throttled_response(request: HttpRequest, wait: int) -> HttpResponse:
    """429 with Retry-After: JSON for the page's scripts (as the API answers), else a page."""
    message = f"Too many attempts. Wait {wait_in_words(wait)}, then try again."
    headers = {"Retry-After": str(wait)}
    if "application/json" in request.headers.get("Accept", ""):
        body = {"detail": message, "code": "throttled", "retry_after_s": wait}
        return JsonResponse(body, status=429, headers=headers)
    response = render(request, "errors/throttled.html", {"message": message}, status=429)
    response["Retry-After"] = headers["Retry-After"]
    return response


def throttle(scope: str, *, methods: tuple[str, ...] = ("POST",)) -> Callable:
    """Decorate a page view: its `methods` requests count in the API's `scope` history.
    Put it under @login_required so the count is the user's, as in the API."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method in methods:
                wait = throttle_wait(request, scope)
                if wait is not None:
                    return throttled_response(request, wait)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
