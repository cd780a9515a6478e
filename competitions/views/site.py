"""Site-wide files browsers ask for by a fixed address: /favicon.ico."""

from functools import cache

from django.contrib.staticfiles import finders
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe


@cache
def _favicon() -> bytes:
    path = finders.find("favicon.ico")
    if not path:  # a deployment error, not a visitor's: the file is in static/
        raise FileNotFoundError("static/favicon.ico is missing")
    with open(path, "rb") as f:
        return f.read()


@require_safe
@cache_control(public=True, max_age=86400)
def favicon(request: HttpRequest) -> HttpResponse:
    """Pages name static/favicon.svg; this is for what asks /favicon.ico (feed readers,
    bookmarks, older browsers)."""
    return HttpResponse(_favicon(), content_type="image/x-icon")
