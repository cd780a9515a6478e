"""Error pages a person understands (config/urls.py names them as Django's handlers)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def _message(exception: Exception | None) -> str:
    # Our own refusals carry a sentence; Django's URL resolver carries a dict of patterns.
    if exception is not None and exception.args and isinstance(exception.args[0], str):
        return exception.args[0]
    return ""


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "errors/404.html", {"message": _message(exception)}, status=404)


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "errors/403.html", {"message": _message(exception)}, status=403)


def server_error(request: HttpRequest) -> HttpResponse:
    # No request context: the failure may be in what a context processor needs.
    return render(None, "errors/500.html", status=500)
