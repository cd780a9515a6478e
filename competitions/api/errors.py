"""Turns service errors and permission errors into clear JSON with a stable `code`."""

from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from competitions.errors import ApplicationError, retry_after_headers
from competitions.outages import outage_body, outage_headers, outage_of
from competitions.permissions import Forbidden, NotFound


def exception_handler(exc, context):
    service = outage_of(exc)
    if service is not None:
        return Response(outage_body(service), status=503, headers=outage_headers())
    if isinstance(exc, ApplicationError):
        body = {"detail": exc.message, "code": exc.code, **exc.extra}
        return Response(body, status=exc.status, headers=retry_after_headers(exc))
    if isinstance(exc, NotFound):
        return Response({"detail": str(exc), "code": "not_found"}, status=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, Forbidden):
        return Response({"detail": str(exc), "code": "forbidden"}, status=status.HTTP_403_FORBIDDEN)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.APIException):
        if isinstance(response.data, dict) and "code" not in response.data:
            codes = exc.get_codes()
            response.data["code"] = codes if isinstance(codes, str) else "invalid"
        # drf-stubs omit Throttled.wait, which DRF sets in __init__.
        wait = getattr(exc, "wait", None) if isinstance(exc, exceptions.Throttled) else None
        if wait is not None:
            response.data["retry_after_s"] = int(wait)
    return response
