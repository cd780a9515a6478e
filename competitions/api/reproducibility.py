"""Reproducibility endpoints: task versions, manifests, bundles, model-index, replications."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from competitions.models import TaskVersion
from competitions.permissions import access_competition
from competitions.services.versions import task_version_activate, task_version_create


def _version_data(version: TaskVersion, *, ranked: int) -> dict[str, Any]:
    return {
        "number": version.number,
        "ranked": version.number == ranked,
        "note": version.note,
        "created_at": version.created_at,
        "ground_truth_sha256": version.ground_truth_sha256,
        "split_sha256": version.split_sha256,
        "scorer_program_sha256": version.scorer_program_sha256,
        "scorer_image_digest": version.scorer_image_digest,
    }


class TaskVersionListCreateApi(APIView):
    """Anyone who can see the competition lists its versions; organizers add one."""

    parser_classes = [MultiPartParser]

    def get_permissions(self):
        return [IsAuthenticated()] if self.request.method == "POST" else []

    class VersionCreateInput(serializers.Serializer):
        ground_truth = serializers.FileField(
            required=False, help_text="A new ground truth; without it the scorer changed"
        )
        note = serializers.CharField(max_length=300, required=False, allow_blank=True)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, slug: str) -> Response:
        competition = access_competition(request.user, slug)
        task = competition.task
        versions = TaskVersion.objects.filter(task=task).order_by("number")
        return Response(
            {
                "ranked": task.version,
                "results": [_version_data(v, ranked=task.version) for v in versions],
            }
        )

    @extend_schema(request=VersionCreateInput, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request, slug: str) -> Response:
        competition = access_competition(request.user, slug, organize=True)
        data = self.VersionCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        version = task_version_create(
            task=competition.task,
            ground_truth=data.validated_data.get("ground_truth"),
            note=data.validated_data.get("note", ""),
        )
        return Response(_version_data(version, ranked=competition.task.version), status=201)


class TaskVersionActivateApi(APIView):
    permission_classes = [IsAuthenticated]

    class VersionActivateInput(serializers.Serializer):
        rescore = serializers.BooleanField(
            default=False, help_text="Queue every finished submission to be scored under it"
        )

    @extend_schema(request=VersionActivateInput, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, slug: str, number: int) -> Response:
        competition = access_competition(request.user, slug, organize=True)
        data = self.VersionActivateInput(data=request.data)
        data.is_valid(raise_exception=True)
        version = task_version_activate(
            task=competition.task, number=number, rescore=data.validated_data["rescore"]
        )
        return Response(_version_data(version, ranked=version.number))
