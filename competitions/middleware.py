from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

# Room for the multipart envelope and metadata fields around the file itself.
_ENVELOPE_BYTES = 1024 * 1024


def too_large_response(request: HttpRequest) -> HttpResponse:
    limit_mib = settings.HELDOUT_MAX_UPLOAD_BYTES / (1024 * 1024)
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
        if length > settings.HELDOUT_MAX_UPLOAD_BYTES + _ENVELOPE_BYTES:
            return too_large_response(request)
        response = self.get_response(request)
        if request.META.get("heldout.upload_too_large"):
            return too_large_response(request)
        return response
