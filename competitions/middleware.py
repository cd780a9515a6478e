import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.middleware.common import CommonMiddleware as DjangoCommonMiddleware
from django.template.loader import render_to_string
from django.utils import timezone

# Room for the multipart envelope and metadata fields around the file itself.
_ENVELOPE_BYTES = 1024 * 1024
# Where submissions are uploaded: a container phase takes image archives up to their own limit.
_SUBMISSION_PATHS = re.compile(
    r"^/(?:api/v1/competitions/(?P<api>[-\w]+)/submissions/?|c/(?P<page>[-\w]+)/submit/)$"
)
LIMIT_KEY = "heldout.upload_limit"


def upload_limit(request: HttpRequest) -> int:
    """The largest file this request may upload: HELDOUT_MAX_UPLOAD_BYTES, or for a
    submission to a phase that takes containers, HELDOUT_MAX_IMAGE_BYTES if larger.

    Looked up only for uploads over the general limit, and remembered on the request.
    """
    cached = request.META.get(LIMIT_KEY)
    if cached is not None:
        return int(cached)
    limit = settings.HELDOUT_MAX_UPLOAD_BYTES
    match = _SUBMISSION_PATHS.match(request.path)
    if match is not None and limit < settings.HELDOUT_MAX_IMAGE_BYTES:
        from competitions.models import Competition

        competition = Competition.objects.filter(slug=match["api"] or match["page"]).first()
        if competition is not None:
            limit = submission_upload_limit(competition)
    request.META[LIMIT_KEY] = limit
    return limit


def submission_upload_limit(competition) -> int:
    """The largest submission file the competition takes now: an image archive's limit in a
    phase that takes containers (if larger), else the general upload limit."""
    from competitions.services.submissions import current_phase

    found = current_phase(competition, timezone.now())
    if found is not None and found[0].submission_kind == "container":
        return max(settings.HELDOUT_MAX_UPLOAD_BYTES, settings.HELDOUT_MAX_IMAGE_BYTES)
    return settings.HELDOUT_MAX_UPLOAD_BYTES


def too_large_response(request: HttpRequest) -> HttpResponse:
    limit_mib = upload_limit(request) / (1024 * 1024)
    message = f"The file is larger than the limit of {limit_mib:g} MiB."
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message, "code": "file_too_large"}, status=413)
    body = render_to_string("errors/413.html", {"message": message}, request=request)
    return HttpResponse(body, status=413)


class UploadSizeLimitMiddleware:
    """Refuses an oversized upload from its Content-Length before a byte of it is read."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        over_general = length > settings.HELDOUT_MAX_UPLOAD_BYTES + _ENVELOPE_BYTES
        if over_general and length > upload_limit(request) + _ENVELOPE_BYTES:
            return too_large_response(request)
        with _body_guarded(request, length):
            response = self.get_response(request)
        if request.META.get("heldout.upload_too_large"):
            return too_large_response(request)
        return response


@contextmanager
def _body_guarded(request: HttpRequest, length: int) -> Iterator[None]:
    """A multipart body shorter than its Content-Length is refused (uploads.BodyGuard): when
    the client closes early, at once; when it stalls, after HELDOUT_BODY_STALL_TIMEOUT_S
    without a byte (gunicorn's socket, given a read timeout for this request only)."""
    content_type = request.META.get("CONTENT_TYPE", "")
    stream = getattr(request, "_stream", None)
    if length <= 0 or stream is None or not content_type.startswith("multipart/form-data"):
        yield
        return
    from competitions.uploads import BodyGuard

    request._stream = BodyGuard(stream, length)  # type: ignore[assignment]
    sock = request.META.get("gunicorn.socket")
    prior = sock.gettimeout() if sock is not None else None
    if sock is not None:
        sock.settimeout(settings.HELDOUT_BODY_STALL_TIMEOUT_S)
    try:
        yield
    finally:
        if sock is not None:
            with suppress(OSError):  # the client went; gunicorn closes the connection
                sock.settimeout(prior)


class CommonMiddleware(DjangoCommonMiddleware):
    """Django's, except that an API path is never redirected to add a slash: clients follow
    a 301 with a GET, so a POST would be lost while looking successful. API routes match
    without their slash (competitions/api/routing.py); anything else there is a JSON 404."""

    def should_redirect_with_slash(self, request: HttpRequest) -> bool:
        if request.path_info.startswith("/api/"):
            return False
        return super().should_redirect_with_slash(request)


class SiteNotFoundMiddleware:
    """The site's 404 page (JSON under /api/) also when DEBUG is on, as in the demo.

    With DEBUG, Django answers a 404 with its technical page, which lists every URL
    pattern, instead of calling handler404. This answers a view's Http404 with the site's
    page (process_exception), and an address no pattern matches too (a 404 without a
    resolved view). Listed after CommonMiddleware, whose slash-appending redirect still
    sees the 404. Does nothing without DEBUG: handler404 is called then.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if settings.DEBUG and response.status_code == 404 and request.resolver_match is None:
            from competitions.views.errors import not_found

            return not_found(request)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception):
        if settings.DEBUG and isinstance(exception, Http404):
            from competitions.views.errors import not_found

            return not_found(request, exception)
        return None
