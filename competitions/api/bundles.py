"""Competitions kept as code: apply a bundle through the API (docs/bundle-repository.md).

POST competitions/apply/ with a bundle zip: `?dry_run=1` answers the diff and writes
nothing; otherwise the diff is applied (201 when it created the competition, 200 when it
updated one). Refusals answer 409 with the refusals in `problems`.
"""

import tempfile
from pathlib import Path

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from competitions.permissions import signed_in
from competitions.services.bundle_apply import bundle_apply


class BundleFieldChangeOutput(serializers.Serializer):
    field = serializers.CharField(help_text="The yaml key, e.g. phases[Main].daily_limit")
    old = serializers.JSONField(allow_null=True, help_text="null: not there before")
    new = serializers.JSONField(allow_null=True, help_text="null: not in the bundle")


class BundleFileChangeOutput(serializers.Serializer):
    path = serializers.CharField(
        help_text="task.ground_truth, task.scorer_program, task.files[NAME]"
    )
    change = serializers.ChoiceField(choices=["added", "changed", "removed"])
    old_sha256 = serializers.CharField(allow_blank=True)
    new_sha256 = serializers.CharField(allow_blank=True)


class BundleDiffOutput(serializers.Serializer):
    slug = serializers.CharField()
    url = serializers.SerializerMethodField()
    created = serializers.BooleanField(help_text="The slug is new: applying creates it")
    applied = serializers.BooleanField(help_text="False for a dry run")
    empty = serializers.BooleanField(help_text="Nothing would change")
    changes = BundleFieldChangeOutput(many=True)
    files = BundleFileChangeOutput(many=True)
    refusals = serializers.ListField(
        child=serializers.CharField(), help_text="What apply refuses; non-empty: 409 on apply"
    )
    notes = serializers.ListField(child=serializers.CharField())
    version = serializers.IntegerField(
        allow_null=True,
        help_text="The task version holding the bundle's new ground truth (made, or ranked)",
    )
    job = serializers.SerializerMethodField(
        help_text="The background job (version switch and rescore) that ranks a version"
    )

    def get_job(self, diff) -> str | None:
        if diff.job is None:
            return None
        return reverse("api:job-detail", args=[diff.job], request=self.context["request"])

    def get_url(self, diff) -> str | None:
        if diff.created and not diff.applied:
            return None
        return reverse("api:competition-detail", args=[diff.slug], request=self.context["request"])


class BundleApplyApi(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [MultiPartParser]

    class BundleApplyInput(serializers.Serializer):
        bundle = serializers.FileField(help_text="A zip holding competition.yaml and its files")

    @extend_schema(
        request=BundleApplyInput,
        parameters=[
            OpenApiParameter(
                "dry_run", OpenApiTypes.BOOL, description="1: answer the diff, change nothing"
            )
        ],
        responses={200: BundleDiffOutput, 201: BundleDiffOutput},
    )
    def post(self, request: Request) -> Response:
        data = self.BundleApplyInput(data=request.data)
        data.is_valid(raise_exception=True)
        dry_run = request.query_params.get("dry_run", "") in ("1", "true", "yes")
        upload = data.validated_data["bundle"]
        with tempfile.TemporaryDirectory(prefix="heldout-apply-") as tmp:
            path = Path(tmp) / "bundle.zip"
            with path.open("wb") as out:
                for chunk in upload.chunks():
                    out.write(chunk)
            diff = bundle_apply(source=path, organizer=signed_in(request.user), dry_run=dry_run)
        body = BundleDiffOutput(diff, context={"request": request}).data
        if diff.created and diff.applied:
            return Response(body, status=201, headers={"Location": body["url"]})
        return Response(body)
