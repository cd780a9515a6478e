"""The site's URLs plus one view that raises, for tests/test_ops_sentry.py's web process
(tests/sentry_site.py); no other process serves it."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from config.urls import urlpatterns as site


class SentryProbeError(Exception):
    """Raised on purpose: the error the fake Sentry must receive."""


def fails_on_purpose(request: HttpRequest) -> HttpResponse:
    raise SentryProbeError("raised on purpose in a view")


urlpatterns = [path("sentry-probe/fail/", fails_on_purpose), *site]
