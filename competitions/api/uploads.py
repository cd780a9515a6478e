"""Resumable uploads over tus 1.0 (docs/uploads.md): POST /api/v1/uploads/ creates one,
HEAD tells how many bytes the server has, PATCH appends at that offset, DELETE drops it.

Every answer carries Tus-Resumable; errors are JSON like the rest of the API. A PATCH body
is read from the request stream a chunk at a time (never `request.body`), so a slow or
huge upload costs one chunk of memory and no worker is needed to buffer it.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.parsers import BaseParser
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from competitions import tus
from competitions.models import Competition, Upload
from competitions.permissions import access_competition, signed_in
from competitions.services.uploads import (
    upload_append,
    upload_create,
    upload_delete,
    upload_for_owner,
)
from competitions.uploads import SocketBody


class _SignedInExceptOptions(BasePermission):
    """OPTIONS (protocol discovery) is open; everything else needs a signed-in user."""

    def has_permission(self, request, view) -> bool:
        return request.method == "OPTIONS" or IsAuthenticated().has_permission(request, view)


class _OffsetStreamParser(BaseParser):
    """Declares the PATCH media type; the body itself is read from request.stream."""

    media_type = tus.OFFSET_CONTENT_TYPE

    def parse(self, stream, media_type=None, parser_context=None):
        return {}


class UploadOutput(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.URLField()
    filename = serializers.CharField()
    length = serializers.IntegerField()
    offset = serializers.IntegerField()
    complete = serializers.BooleanField()
    sha256 = serializers.CharField(allow_null=True)
    competition = serializers.CharField(allow_null=True)
    expires_at = serializers.DateTimeField()


def upload_data(request: Request, upload: Upload) -> dict:
    return UploadOutput(
        {
            "id": upload.pk,
            "url": reverse("api:upload-detail", args=[upload.pk], request=request),
            "filename": upload.filename,
            "length": upload.length,
            "offset": upload.offset,
            "complete": upload.is_complete,
            "sha256": upload.sha256 or None,
            "competition": upload.competition.slug if upload.competition else None,
            "expires_at": upload.expires_at,
        }
    ).data


def _expires(upload: Upload) -> str:
    from django.utils.http import http_date

    return http_date(upload.expires_at.timestamp())


class _TusApi(APIView):
    permission_classes = [_SignedInExceptOptions]

    def initial(self, request: Request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        if request.method != "OPTIONS":
            tus.check_version(request.headers.get("Tus-Resumable"))

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Tus-Resumable"] = tus.VERSION
        if response.status_code == 412:
            response["Tus-Version"] = tus.VERSION
        # Browsers reading the upload from another origin (a tus client page) may see these.
        response["Access-Control-Expose-Headers"] = (
            "Location, Upload-Offset, Upload-Length, Upload-Expires, Tus-Resumable"
        )
        return response

    @extend_schema(exclude=True)
    def options(self, request, *args, **kwargs) -> Response:
        return Response(
            status=204,
            headers={
                "Tus-Version": tus.VERSION,
                "Tus-Extension": tus.EXTENSIONS,
                "Tus-Max-Size": str(
                    max(settings.HELDOUT_MAX_UPLOAD_BYTES, settings.HELDOUT_MAX_IMAGE_BYTES)
                ),
            },
        )


def _competition_for(request: Request, metadata: dict[str, str]) -> Competition | None:
    slug = metadata.get("competition")
    return access_competition(request.user, slug) if slug else None


class UploadCreateApi(_TusApi):
    @extend_schema(
        request=None,
        parameters=[
            OpenApiParameter("Tus-Resumable", location="header", required=True, enum=["1.0.0"]),
            OpenApiParameter("Upload-Length", location="header", required=True, type=int),
            OpenApiParameter(
                "Upload-Metadata",
                location="header",
                description="`filename <base64>,competition <base64 of the slug>`",
            ),
        ],
        responses={201: UploadOutput},
    )
    def post(self, request: Request) -> Response:
        if "Upload-Defer-Length" in request.headers:
            raise tus.UploadProtocolError("Upload-Defer-Length is not supported: send the length.")
        length = tus.parse_nonnegative("Upload-Length", request.headers.get("Upload-Length"))
        metadata = tus.parse_metadata(request.headers.get("Upload-Metadata"))
        upload = upload_create(
            owner=signed_in(request.user),
            length=length,
            metadata=metadata,
            competition=_competition_for(request, metadata),
        )
        body = upload_data(request, upload)
        return Response(
            body, status=201, headers={"Location": body["url"], "Upload-Expires": _expires(upload)}
        )


class UploadDetailApi(_TusApi):
    parser_classes = [_OffsetStreamParser]

    def _upload(self, request: Request, upload_id: str) -> Upload:
        return upload_for_owner(owner=signed_in(request.user), upload_id=upload_id)

    @extend_schema(responses={200: UploadOutput})
    def get(self, request: Request, upload_id: str) -> Response:
        """The upload as JSON (tus clients use HEAD)."""
        upload = self._upload(request, upload_id)
        return Response(upload_data(request, upload), headers=self._headers(upload))

    @extend_schema(exclude=True)
    def head(self, request: Request, upload_id: str) -> HttpResponse:
        upload = self._upload(request, upload_id)
        return Response(status=200, headers=self._headers(upload))

    @extend_schema(
        request={tus.OFFSET_CONTENT_TYPE: OpenApiTypes.BINARY},
        parameters=[
            OpenApiParameter("Tus-Resumable", location="header", required=True, enum=["1.0.0"]),
            OpenApiParameter("Upload-Offset", location="header", required=True, type=int),
        ],
        responses={204: None},
    )
    def patch(self, request: Request, upload_id: str) -> Response:
        upload = self._upload(request, upload_id)
        if request.content_type.split(";")[0].strip() != tus.OFFSET_CONTENT_TYPE:
            raise tus.UnsupportedMediaType(f"Send PATCH bodies as {tus.OFFSET_CONTENT_TYPE}.")
        offset = tus.parse_nonnegative("Upload-Offset", request.headers.get("Upload-Offset"))
        length = tus.parse_nonnegative("Content-Length", request.META.get("CONTENT_LENGTH"))
        stream = SocketBody.of(request.META.get("wsgi.input")) or request.stream or _Empty()
        upload = upload_append(upload=upload, offset=offset, length=length, stream=stream)
        return Response(status=204, headers=self._headers(upload))

    @extend_schema(responses={204: None})
    def delete(self, request: Request, upload_id: str) -> Response:
        upload_delete(upload=self._upload(request, upload_id))
        return Response(status=204)

    @staticmethod
    def _headers(upload: Upload) -> dict[str, str]:
        headers = {
            "Upload-Offset": str(upload.offset),
            "Upload-Length": str(upload.length),
            "Upload-Expires": _expires(upload),
            "Cache-Control": "no-store",
        }
        if upload.metadata:
            headers["Upload-Metadata"] = tus.format_metadata(upload.metadata)
        return headers


class _Empty:
    """The stream of a PATCH without a body."""

    def read(self, size: int, /) -> bytes:
        return b""
