"""Log lines that say which request or submission they belong to.

`RequestIdMiddleware` takes the request's X-Request-ID (when it is a sane token) or makes
one, keeps it in a context variable for the request's duration, and returns it in the
response's X-Request-ID header. `log_context(submission_id=...)` does the same for the work
a Celery task does on one submission. `ContextFilter` (installed on the console handler by
LOGGING) copies both onto every record as `request_id` and `submission_id` ("-" when none);
`JsonFormatter` writes one JSON object a line (HELDOUT_LOG_JSON=1). Both ids also tag what
is reported to Sentry (competitions/ops/sentry.py), when HELDOUT_SENTRY_DSN is set.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.core.signals import request_finished
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse

from competitions.ops.sentry import sentry_tag

request_id: ContextVar[str] = ContextVar("request_id", default="-")
submission_id: ContextVar[str] = ContextVar("submission_id", default="-")
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
HEADER = "X-Request-ID"


class RequestIdMiddleware:
    """First in MIDDLEWARE, so every log line of the request carries its id."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get(HEADER, "")
        rid = given if _SANE_ID.fullmatch(given) else uuid.uuid4().hex
        # Kept past this middleware: Django logs a 4xx/5xx answer after the whole chain
        # returns; request_finished clears it.
        request_id.set(rid)
        sentry_tag(name="request_id", value=rid)
        response = self.get_response(request)
        response[HEADER] = rid
        return response


@receiver(request_finished)
def _request_done(**kwargs) -> None:
    request_id.set("-")


@contextmanager
def log_context(*, submission: int | str) -> Iterator[None]:
    """Within: every log line names the submission, and so does an error reported to Sentry
    (the tag stays on the Celery task's scope: the error is reported after the block)."""
    token = submission_id.set(str(submission))
    sentry_tag(name="submission_id", value=str(submission))
    try:
        yield
    finally:
        submission_id.reset(token)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.submission_id = submission_id.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
            "submission_id": getattr(record, "submission_id", "-"),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


TEXT_FORMAT = (
    "%(asctime)s %(levelname)s %(name)s [request=%(request_id)s submission=%(submission_id)s] "
    "%(message)s"
)


def logging_config(*, level: str, json_lines: bool) -> dict:
    """LOGGING for settings: one console handler, the context on every line."""
    formatter = {"()": JsonFormatter} if json_lines else {"format": TEXT_FORMAT}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter}},
        "formatters": {"default": formatter},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "filters": ["context"],
                "formatter": "default",
            }
        },
        "root": {"handlers": ["console"], "level": level},
    }
