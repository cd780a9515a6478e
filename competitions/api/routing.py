"""API routes answer with or without their trailing slash, never with a redirect.

Django's APPEND_SLASH would answer `POST .../submissions` with a 301, which HTTP clients
follow as a GET: the upload is silently lost. Instead each API route matches both
spellings; `reverse()` keeps giving the canonical one (with the slash), and the OpenAPI
schema lists each route once.
"""

from __future__ import annotations

from typing import TypeVar

from django.urls import URLPattern, URLResolver
from django.urls.resolvers import RoutePattern

Entry = TypeVar("Entry", bound=URLPattern | URLResolver)


class SlashOptionalRoutePattern(RoutePattern):
    """A `path()` route ending in "/" that also matches the same path without it."""

    def __init__(self, route: str, name: str | None = None, is_endpoint: bool = False):
        super().__init__(route, name=name, is_endpoint=is_endpoint)
        self.slash_optional = is_endpoint and route.endswith("/")

    def match(self, path: str):
        found = super().match(path)
        if found is None and self.slash_optional and not path.endswith("/"):
            found = super().match(path + "/")
        return found


def slash_optional(patterns: list[Entry]) -> list[Entry]:
    """The same patterns, each endpoint route ending in "/" made slash-optional.

    Applied once to a whole urlpatterns list, so routes are still declared with `path()`.
    """
    for entry in patterns:
        pattern = entry.pattern
        if (
            isinstance(entry, URLPattern)
            and type(pattern) is RoutePattern
            and str(pattern).endswith("/")
        ):
            entry.pattern = SlashOptionalRoutePattern(
                str(pattern), name=pattern.name, is_endpoint=True
            )
    return patterns
