"""Reproducibility endpoints: task versions, manifests, bundles, model-index, replications."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, cast

import yaml
from django.contrib.auth.models import User
from django.http import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from competitions.api.jobs import OrganizerJobOutput, job_accepted
from competitions.api.pagination import PAGE_PARAMETERS, page_of
from competitions.api.renderers import DownloadNegotiation
from competitions.downloads import file_download
from competitions.entry_facts import manifest_filename, manifest_for_reader
from competitions.models import Replication, ScorerMismatchReport, TaskVersion
from competitions.permissions import (
    Forbidden,
    NotFound,
    access_competition,
    access_entry,
    access_submission,
    is_organizer,
    signed_in,
)
from competitions.selectors import private_split_visible, scorer_mismatches_recent
from competitions.selectors_runs import scoring_run_for_claim
from competitions.services.jobs import version_switch_start
from competitions.services.replications import replication_cancel, replication_request
from competitions.services.reproducibility import model_index, submission_bundle_write
from competitions.services.scorer_identity import task_scorer_adopt
from competitions.services.versions import task_version_create


class TaskVersionOutput(serializers.Serializer):
    number = serializers.IntegerField()
    ranked = serializers.BooleanField(help_text="The leaderboard ranks this version's scores")
    note = serializers.CharField()
    created_at = serializers.DateTimeField()
    ground_truth_sha256 = serializers.CharField()
    split_sha256 = serializers.CharField()
    scorer_program_sha256 = serializers.CharField()
    scorer_image_digest = serializers.CharField()


class TaskVersionListOutput(serializers.Serializer):
    ranked = serializers.IntegerField(help_text="The ranked version's number")
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = TaskVersionOutput(many=True)


class ReplicationOutput(serializers.Serializer):
    id = serializers.IntegerField()
    submission = serializers.IntegerField()
    status = serializers.CharField()
    outcome = serializers.CharField(allow_null=True)
    queue = serializers.CharField()
    tolerance = serializers.FloatField()
    differences = serializers.DictField(help_text="Scores and stages that differ (docs)")
    error_message = serializers.CharField()
    created_at = serializers.DateTimeField()
    queued_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    cancelled_at = serializers.DateTimeField(allow_null=True)
    original_run = serializers.IntegerField(allow_null=True)
    new_run = serializers.IntegerField(allow_null=True)


class ReplicationListOutput(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ReplicationOutput(many=True)


# A scoring manifest (docs/manifest.md, docs/manifest.schema.json): its top-level parts.
MANIFEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A scoring manifest (docs/manifest.md)",
    "properties": {
        "schema_version": {"type": "string"},
        "kind": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "scores": {"type": "object", "additionalProperties": {"type": "object"}},
        "withheld": {"type": "array", "items": {"type": "string"}},
    }
    | {
        part: {"type": "object", "additionalProperties": {}}
        for part in [
            "platform",
            "competition",
            "submission",
            "predictions",
            "task",
            "ground_truth",
            "scorer",
            "validation",
            "stages",
            "timing",
            "random_seeds",
            "host",
        ]
    },
    "additionalProperties": {},
}

# Hugging Face model-index metadata: the key has a hyphen, so a raw schema, not a serializer.
MODEL_INDEX_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "model-index": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "results": {
                        "type": "array",
                        "items": {"type": "object", "additionalProperties": {}},
                    },
                },
                "required": ["name", "results"],
            },
        }
    },
    "required": ["model-index"],
}


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

    @extend_schema(parameters=PAGE_PARAMETERS, responses=TaskVersionListOutput)
    def get(self, request: Request, slug: str) -> Response:
        """Oldest first, a page at a time (100 by default, at most 1000)."""
        competition = access_competition(request.user, slug)
        task = competition.task
        versions = TaskVersion.objects.filter(task=task).order_by("number")
        rows, envelope = page_of(request, versions, default_size=100, max_size=1000)
        body = {"ranked": task.version} | envelope
        body["results"] = [_version_data(v, ranked=task.version) for v in rows]
        return Response(TaskVersionListOutput(body).data)

    @extend_schema(request=VersionCreateInput, responses={201: TaskVersionOutput})
    def post(self, request: Request, slug: str) -> Response:
        competition = access_competition(request.user, slug, organize=True)
        data = self.VersionCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        version = task_version_create(
            task=competition.task,
            ground_truth=data.validated_data.get("ground_truth"),
            note=data.validated_data.get("note", ""),
        )
        body = _version_data(version, ranked=competition.task.version)
        return Response(TaskVersionOutput(body).data, status=201)


class TaskVersionActivateApi(APIView):
    permission_classes = [IsAuthenticated]

    class VersionActivateInput(serializers.Serializer):
        rescore = serializers.BooleanField(
            default=False, help_text="Queue every finished submission to be scored under it"
        )

    @extend_schema(request=VersionActivateInput, responses={202: OrganizerJobOutput})
    def post(self, request: Request, slug: str, number: int) -> Response:
        """Switch the ranked version as a background job: 202 with the job to follow."""
        competition = access_competition(request.user, slug, organize=True)
        data = self.VersionActivateInput(data=request.data)
        data.is_valid(raise_exception=True)
        job = version_switch_start(
            competition=competition,
            user=signed_in(request.user),
            number=number,
            rescore=data.validated_data["rescore"],
        )
        return job_accepted(job, request)


class ScorerReportOutput(serializers.ModelSerializer):
    class Meta:
        model = ScorerMismatchReport
        fields = [
            "worker",
            "identity",
            "expected",
            "version",
            "image",
            "last_submission_id",
            "count",
            "first_at",
            "last_at",
        ]


class ScorerWorkersOutput(serializers.Serializer):
    ranked_version = serializers.IntegerField()
    ranked_identity = serializers.CharField()
    mismatches = ScorerReportOutput(many=True)


class ScorerWorkersApi(APIView):
    """Organizers: the workers that lately left this task's submissions because their
    scorer differs from the ranked version's (the health signal of docs/scorers.md)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=ScorerWorkersOutput)
    def get(self, request: Request, slug: str) -> Response:
        competition = access_competition(request.user, slug, organize=True)
        task = competition.task
        ranked = TaskVersion.objects.filter(task=task, number=task.version).first()
        reports = scorer_mismatches_recent(task=task)
        body = {
            "ranked_version": task.version,
            "ranked_identity": ranked.scorer_image_digest if ranked else "",
            "mismatches": reports,
        }
        return Response(ScorerWorkersOutput(body).data)


class ScorerAdoptApi(APIView):
    """Organizers: adopt the scorer the workers now run (a new ranked version, everything
    rescored under it)."""

    permission_classes = [IsAuthenticated]

    class ScorerAdoptInput(serializers.Serializer):
        identity = serializers.CharField(
            max_length=100,
            required=False,
            help_text="The scorer to adopt (default: the one workers lately reported)",
        )

    @extend_schema(request=ScorerAdoptInput, responses={201: TaskVersionOutput})
    def post(self, request: Request, slug: str) -> Response:
        competition = access_competition(request.user, slug, organize=True)
        data = self.ScorerAdoptInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = cast(User, request.user)  # IsAuthenticated
        version = task_scorer_adopt(
            task=competition.task, by=user, identity=data.validated_data.get("identity")
        )
        body = _version_data(version, ranked=version.number)
        return Response(TaskVersionOutput(body).data, status=201)


class SubmissionManifestApi(APIView):
    """The manifest behind an entry's scores, for anyone who can see the entry."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "version",
                int,
                description="Task version (default: the ranked one, else the latest scored)",
            ),
            OpenApiParameter(
                "download",
                int,
                description="1: sent as an attachment with a file name (the entry page's link)",
            ),
        ],
        responses={200: MANIFEST_SCHEMA},
    )
    def get(self, request: Request, submission_id: int) -> Response:
        submission = access_entry(request.user, submission_id)
        ranked = submission.competition.task.version
        wanted = request.query_params.get("version")
        run = scoring_run_for_claim(
            submission=submission, ranked=ranked, wanted=None if wanted is None else _int(wanted, 0)
        )
        if run is None:
            raise NotFound(f"No manifest of this submission under task version {wanted or ranked}.")
        competition = submission.competition
        shown = manifest_for_reader(
            run.manifest,
            private_visible=private_split_visible(request.user, competition),
            signed_in=request.user.is_authenticated,
            ladder=competition.public_board == competition.PublicBoard.LADDER,
        )
        response = Response(shown)
        if run.task_version != ranked:
            # The manifest stays as recorded; the header says a later version is ranked.
            response["Heldout-Superseded-By-Version"] = str(ranked)
        if request.query_params.get("download") == "1":  # the entry page's download link
            name = manifest_filename(competition.slug, submission.pk, run.task_version, ranked)
            response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


class SubmissionBundleApi(APIView):
    """The reproducibility bundle (zip) as the requesting user may see it."""

    content_negotiation_class = DownloadNegotiation

    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY})
    def get(self, request: Request, submission_id: int) -> HttpResponseBase:
        submission = access_entry(request.user, submission_id)
        workdir = Path(tempfile.mkdtemp(prefix="heldout-bundle-"))
        try:
            path = submission_bundle_write(
                submission=submission, user=request.user, dest=workdir / "bundle.zip"
            )
            # Open, then remove: the response streams from the open file, nothing is left.
            stream = path.open("rb")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        name = f"{submission.competition.slug}-{submission.pk}-reproducibility.zip"
        return file_download(request, stream, filename=name)


class YAMLRenderer(BaseRenderer):
    media_type = "application/yaml"
    format = "yaml"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode("utf-8")


class ModelIndexApi(APIView):
    """Leaderboard results as Hugging Face model-index metadata (?format=yaml or json)."""

    renderer_classes = [JSONRenderer, YAMLRenderer, BrowsableAPIRenderer]

    @extend_schema(
        responses={
            (200, "application/json"): MODEL_INDEX_SCHEMA,
            (200, "application/yaml"): MODEL_INDEX_SCHEMA,
        }
    )
    def get(self, request: Request, slug: str) -> Response:
        competition = access_competition(request.user, slug)
        # Scheme and host only: the sources are claim pages, never this URL or its query.
        site = request.build_absolute_uri("/")
        return Response(model_index(competition=competition, user=request.user, site_url=site))


def _int(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default


def _replication_data(replication: Replication, *, private_visible: bool) -> dict[str, Any]:
    """A replication as the viewer may read it: before the private leaderboard is revealed,
    the team does not see how its private scores moved."""
    differences = dict(replication.differences or {})
    if not private_visible and differences:
        for key in ("scores", "differences"):
            differences[key] = [
                d for d in differences.get(key, []) if not str(d["what"]).startswith("private ")
            ]
        differences.pop("max_abs_difference", None)
    return {
        "id": replication.pk,
        "submission": replication.submission_id,
        "status": replication.status,
        "outcome": replication.outcome or None,
        "queue": replication.queue,
        "tolerance": replication.tolerance,
        "differences": differences,
        "error_message": replication.error_message,
        "created_at": replication.created_at,
        "queued_at": replication.queued_at,
        "finished_at": replication.finished_at,
        "cancelled_at": replication.cancelled_at,
        "original_run": replication.original_run_id,
        "new_run": replication.new_run_id,
    }


class SubmissionReplicationListApi(APIView):
    """The replications of a submission, for its team and the organizers."""

    permission_classes = [IsAuthenticated]

    @extend_schema(parameters=PAGE_PARAMETERS, responses=ReplicationListOutput)
    def get(self, request: Request, submission_id: int) -> Response:
        """Newest first, a page at a time (100 by default, at most 1000)."""
        submission = access_submission(request.user, submission_id)
        private = private_split_visible(request.user, submission.competition)
        replications = Replication.objects.filter(submission=submission)
        # A total order, so pages neither skip nor repeat.
        rows, envelope = page_of(
            request, replications.order_by("-created_at", "-pk"), default_size=100, max_size=1000
        )
        body = envelope | {"results": [_replication_data(r, private_visible=private) for r in rows]}
        return Response(ReplicationListOutput(body).data)


class SubmissionReplicateApi(APIView):
    """An organizer asks for a container submission to be run and scored again, optionally
    on another worker queue (other hardware)."""

    permission_classes = [IsAuthenticated]

    class ReplicateInput(serializers.Serializer):
        queue = serializers.CharField(
            max_length=40, required=False, allow_blank=True, help_text="Worker queue to run on"
        )
        tolerance = serializers.FloatField(
            required=False, min_value=0, help_text="Largest absolute score difference accepted"
        )

    @extend_schema(request=ReplicateInput, responses={202: ReplicationOutput})
    def post(self, request: Request, submission_id: int) -> Response:
        submission = access_submission(request.user, submission_id)
        if not is_organizer(request.user, submission.competition):
            raise Forbidden("Only this competition's organizers can do that.")
        data = self.ReplicateInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = request.user if isinstance(request.user, User) else None
        replication = replication_request(submission=submission, user=user, **data.validated_data)
        body = _replication_data(replication, private_visible=True)
        return Response(ReplicationOutput(body).data, status=202)


class ReplicationCancelApi(APIView):
    """An organizer cancels a waiting or running replication: it no longer blocks
    finalizing, and records who cancelled it and when."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses=ReplicationOutput)
    def post(self, request: Request, replication_id: int) -> Response:
        replication = Replication.objects.filter(pk=replication_id).first()
        if replication is None:
            raise NotFound("No such replication.")
        submission = access_submission(request.user, replication.submission_id)
        if not is_organizer(request.user, submission.competition):
            raise Forbidden("Only this competition's organizers can do that.")
        user = request.user if isinstance(request.user, User) else None
        replication = replication_cancel(replication=replication, user=user)
        return Response(
            ReplicationOutput(_replication_data(replication, private_visible=True)).data
        )
