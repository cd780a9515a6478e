"""Error pages (config/urls.py names them as Django's handlers): a page a person
understands, or under /api/ JSON in the API's shape, `{"detail": ..., "code": ...}`
(competitions/api/errors.py), so a script never has to parse HTML."""

import sys

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views import csrf, defaults

from competitions.outages import outage_of, outage_response


def _message(exception: Exception | None) -> str:
    # Our own refusals carry a sentence; Django's URL resolver carries a dict of patterns.
    if exception is not None and exception.args and isinstance(exception.args[0], str):
        return exception.args[0]
    return ""


def _is_api(request: HttpRequest | None) -> bool:
    return request is not None and request.path_info.startswith("/api/")


def _json(detail: str, code: str, status: int) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return _json(_message(exception) or f"No API endpoint at {request.path}.", "not_found", 404)
    return render(request, "errors/404.html", {"message": _message(exception)}, status=404)


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        message = _message(exception) or "You do not have permission to do this."
        return _json(message, "permission_denied", 403)
    return render(request, "errors/403.html", {"message": _message(exception)}, status=403)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return _json("The request is malformed.", "bad_request", 400)
    return defaults.bad_request(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    # Django calls this inside its `except`: an outage anywhere (a middleware's query
    # included) is a 503 with Retry-After, not a 500.
    service = outage_of(sys.exc_info()[1])
    if service is not None:
        return outage_response(service, api=_is_api(request))
    if _is_api(request):
        return _json("A server error occurred; it has been logged.", "server_error", 500)
    # No request context: the failure may be in what a context processor needs.
    return render(None, "errors/500.html", status=500)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW. API views take tokens and check CSRF for sessions themselves
    (DRF), so this is a safety net for any other view mounted under /api/."""
    if _is_api(request):
        return _json(f"CSRF check failed: {reason}", "csrf_failed", 403)
    return csrf.csrf_failure(request, reason)
