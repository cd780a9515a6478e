"""Outages of the services the site depends on, answered as such: 503 with Retry-After and
a sentence naming what is unavailable, never a 500 page.

`outage_of(exc)` names the service an exception says is unreachable (the database, the
broker, the cache, file storage), following its causes; None for any other error, which
stays a 500. Used by the API's exception handler (JSON in the API's error shape) and by the
site's 500 handler (competitions/views/errors.py), which every other uncaught exception
reaches, middleware's included.
"""

from __future__ import annotations

import django.db
from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string

from competitions.errors import ApplicationError

DATABASE = "the database"
BROKER = "the job queue"
CACHE = "the cache"
STORAGE = "file storage"


def _kinds() -> list[tuple[tuple[type[BaseException], ...], str]]:
    import kombu.exceptions
    import redis.exceptions

    kinds: list[tuple[tuple[type[BaseException], ...], str]] = [
        ((django.db.OperationalError, django.db.InterfaceError), DATABASE),
        ((kombu.exceptions.OperationalError,), BROKER),
        ((redis.exceptions.ConnectionError, redis.exceptions.TimeoutError), CACHE),
    ]
    try:  # object storage (django-storages' S3 backend), when installed
        import botocore.exceptions

        kinds.append(
            (
                (
                    botocore.exceptions.EndpointConnectionError,
                    botocore.exceptions.ConnectionClosedError,
                    botocore.exceptions.ReadTimeoutError,
                ),
                STORAGE,
            )
        )
    except ImportError:
        pass
    # A refused or reset connection with nothing more specific: the file store's server.
    kinds.append(((ConnectionError, TimeoutError), STORAGE))
    return kinds


def outage_of(exc: BaseException | None) -> str | None:
    """The unavailable service `exc` (or an exception it was raised from) reports.

    Our own refusals (ApplicationError: a sentence for the user, such as a body that stalled
    before its Content-Length) are never outages, whatever they were raised from; a context
    suppressed with `raise ... from None` is not followed either."""
    if isinstance(exc, ApplicationError):
        return None
    kinds = _kinds()
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        for classes, service in kinds:
            if isinstance(exc, classes):
                return service
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return None


def outage_sentence(service: str) -> str:
    return (
        f"The site cannot reach {service} right now; nothing was lost. "
        f"Please try again in {settings.HELDOUT_OUTAGE_RETRY_AFTER_S} seconds."
    )


def outage_body(service: str) -> dict[str, object]:
    """The API's error shape (competitions/api/errors.py) for an outage."""
    return {
        "detail": outage_sentence(service),
        "code": "service_unavailable",
        "retry_after_s": settings.HELDOUT_OUTAGE_RETRY_AFTER_S,
    }


def outage_headers() -> dict[str, str]:
    return {"Retry-After": str(settings.HELDOUT_OUTAGE_RETRY_AFTER_S)}


def outage_response(service: str, *, api: bool) -> HttpResponse:
    """503: JSON under /api/, otherwise a small page rendered without the database."""
    if api:
        response: HttpResponse = JsonResponse(outage_body(service), status=503)
    else:
        page = render_to_string("errors/503.html", {"message": outage_sentence(service)})
        response = HttpResponse(page, status=503)
    for name, value in outage_headers().items():
        response[name] = value
    return response
