"""Submission endpoints: upload, list my team's, detail, download, select."""

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from competitions import selectors
from competitions.models import Score, Submission
from competitions.permissions import NotFound, access_competition, access_submission, signed_in
from competitions.services.submissions import submission_create, submission_set_selected
from competitions.services.uploads import submission_create_from_upload

IN_PROCESS_NOTE = "scored in-process (no sandbox)"


def _scorer_data(submission: Submission) -> dict | None:
    if not submission.scorer_name:
        return None
    in_process = submission.scorer_name == "in-process"
    return {
        "name": submission.scorer_name,
        "image": submission.scorer_image or None,
        "sandboxed": not in_process,
        "note": IN_PROCESS_NOTE if in_process else None,
    }


def submission_data(
    request: Request, submission: Submission, scores: dict, runs: list | None = None
) -> dict:
    return {
        "id": submission.pk,
        "url": reverse("api:submission-detail", args=[submission.pk], request=request),
        "competition": submission.competition.slug,
        "team": submission.team.name,
        "submitter": submission.submitter.get_username(),
        "kind": submission.kind,
        "file_name": submission.original_name,
        "sha256": submission.sha256,
        "size": submission.size,
        "method_name": submission.method_name,
        "description": submission.description,
        "paper_url": submission.paper_url,
        "code_url": submission.code_url,
        "hardware_declared": submission.hardware_declared,
        "status": submission.status,
        "failure": submission.failure or None,
        "error_message": submission.error_message,
        "problems": submission.problems,
        "total_problems": submission.total_problems,
        "scores": scores,
        "is_late": submission.is_late,
        "is_disqualified": submission.is_disqualified,
        "is_selected": submission.is_selected,
        "created_at": submission.created_at,
        "started_at": submission.started_at,
        "finished_at": submission.finished_at,
        "duration_s": submission.duration_s,
        "task_version": submission.task_version,
        "scorer": _scorer_data(submission),
        # Sandbox runs, their logs filtered by selectors.sandbox_runs_for_user.
        "runs": runs or [],
        # Container submissions: the image that ran, and whether its predictions can be
        # downloaded (GET .../file/?part=predictions).
        "container_image_digest": submission.container_image_digest or None,
        "has_predictions": bool(submission.predictions),
    }


class SubmissionCreateInput(serializers.Serializer):
    file = serializers.FileField(
        allow_empty_file=True,
        required=False,
        help_text="The predictions; on a container phase, the `docker save` archive (docs/containers.md)",
    )
    upload = serializers.CharField(
        required=False,
        help_text="Instead of `file`: a complete resumable upload of yours, its id or URL "
        "(docs/uploads.md)",
    )
    method_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    description = serializers.CharField(max_length=10_000, required=False, allow_blank=True)
    paper_url = serializers.URLField(required=False, allow_blank=True)
    code_url = serializers.URLField(required=False, allow_blank=True)
    hardware_declared = serializers.CharField(
        max_length=300,
        required=False,
        allow_blank=True,
        help_text="The hardware the method was trained on, as you declare it",
    )

    def validate(self, attrs: dict) -> dict:
        if ("file" in attrs) == ("upload" in attrs):
            raise serializers.ValidationError(
                {"file": "Send the file, or instead `upload`: a complete upload of yours."}
            )
        if "upload" in attrs:
            attrs["upload"] = upload_id_from(attrs["upload"])
        return attrs


def upload_id_from(value: str) -> str:
    """An upload's id, given as itself or as its URL (the tus Location)."""
    return value.rstrip("/").rsplit("/", 1)[-1]


class SubmissionListCreateApi(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    throttle_scope = "submissions"

    def get_throttles(self):
        return [ScopedRateThrottle()] if self.request.method == "POST" else []

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, slug: str) -> Response:
        competition = access_competition(request.user, slug)
        submissions = list(
            selectors.submission_list_for_user(competition=competition, user=request.user)[:500]
        )
        splits = ["public", "private"]
        if not selectors.private_split_visible(request.user, competition):
            splits = ["public"]
        scores: dict[int, dict] = {}
        for sub_id, version, split, metric, value in Score.objects.filter(
            submission__in=submissions, split__in=splits
        ).values_list("submission_id", "task_version", "split", "metric", "value"):
            scores.setdefault(sub_id, {}).setdefault((version, split), {})[metric] = value
        runs = selectors.sandbox_runs_for_user(
            competition=competition, submission_ids=[s.pk for s in submissions], user=request.user
        )
        results = []
        for s in submissions:
            s.competition = competition
            mine = scores.get(s.pk, {})
            current = {split: m for (v, split), m in mine.items() if v == s.task_version}
            results.append(submission_data(request, s, current, runs.get(s.pk)))
        return Response({"count": len(results), "results": results})

    @extend_schema(request=SubmissionCreateInput, responses={202: OpenApiTypes.OBJECT})
    def post(self, request: Request, slug: str) -> Response:
        competition = access_competition(request.user, slug)
        data = SubmissionCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        if "upload" in fields:
            submission = submission_create_from_upload(
                competition=competition,
                user=signed_in(request.user),
                upload_id=fields.pop("upload"),
                **fields,
            )
        else:
            submission = submission_create(
                competition=competition,
                user=signed_in(request.user),
                uploaded_file=fields.pop("file"),
                **fields,
            )
        body = submission_data(request, submission, {})
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})


class SubmissionDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, submission_id: int) -> Response:
        submission = access_submission(request.user, submission_id)
        scores = selectors.submission_scores(submission=submission, user=request.user)
        runs = selectors.sandbox_runs_for_user(
            competition=submission.competition, submission_ids=[submission.pk], user=request.user
        )
        return Response(submission_data(request, submission, scores, runs.get(submission.pk)))


class SubmissionFileApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "part",
                enum=["upload", "predictions"],
                description="predictions: what a container submission's inference wrote",
            )
        ],
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
    )
    def get(self, request: Request, submission_id: int) -> FileResponse:
        submission = access_submission(request.user, submission_id)
        if request.query_params.get("part") == "predictions":
            if not submission.predictions:
                raise NotFound("This submission has no predictions from a container.")
            name = (submission.predictions.name or "predictions.csv").rsplit("/", 1)[-1]
            return FileResponse(
                submission.predictions.open("rb"), as_attachment=True, filename=name
            )
        return FileResponse(
            submission.file.open("rb"), as_attachment=True, filename=submission.original_name
        )


class SubmissionSelectApi(APIView):
    permission_classes = [IsAuthenticated]

    class SubmissionSelectInput(serializers.Serializer):
        selected = serializers.BooleanField()

    @extend_schema(request=SubmissionSelectInput, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, submission_id: int) -> Response:
        submission = access_submission(request.user, submission_id, team_only=True)
        data = self.SubmissionSelectInput(data=request.data)
        data.is_valid(raise_exception=True)
        submission = submission_set_selected(
            submission=submission, selected=data.validated_data["selected"]
        )
        return Response({"id": submission.pk, "is_selected": submission.is_selected})
