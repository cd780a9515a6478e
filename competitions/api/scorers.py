"""Organizer endpoint: a competition's scoring program (docs/scorers.md)."""

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from competitions.api.jobs import OrganizerJobOutput, job_accepted, job_data
from competitions.models import OrganizerJob, Task
from competitions.permissions import access_competition, signed_in
from competitions.selectors import organizer_job_latest
from competitions.services.scorers import task_scorer_set


def _scorer_data(task: Task) -> dict:
    return {
        "program": bool(task.scorer_program),
        "program_sha256": task.scorer_program_sha256 or None,
        "image": task.scorer_image or settings.HELDOUT_SCORER_IMAGE,
        "images": list(settings.HELDOUT_SCORER_IMAGES),
        "logs_visible_to_participants": task.scorer_logs_visible,
        "public": task.scorer_program_public,
        "task_version": task.version,
        "dry_run": task.scorer_dry_run or None,
    }


def _dry_run_job(task: Task, request: Request) -> dict | None:
    job = organizer_job_latest(competition=task.competition, kind=OrganizerJob.Kind.DRY_RUN)
    return job_data(job, request) if job is not None else None


class TaskScorerApi(APIView):
    """GET: the scorer in use, and the latest dry-run job. POST: upload a score.py or a zip
    holding one: 202 with a job that dry-runs it on the sample submission; it replaces the
    scorer only if that succeeds (GET .../jobs/<id>/ follows it)."""

    permission_classes = [IsAuthenticated]
    parser_classes = [MultiPartParser]

    class TaskScorerSetInput(serializers.Serializer):
        program = serializers.FileField(help_text="score.py, or a zip holding score.py")
        image = serializers.CharField(max_length=200, required=False, allow_blank=True)
        public = serializers.BooleanField(
            required=False,
            default=None,
            allow_null=True,
            help_text="Include the program in every submission's reproducibility bundle",
        )

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, slug: str) -> Response:
        competition = access_competition(request.user, slug, organize=True)
        task = competition.task
        return Response(_scorer_data(task) | {"dry_run_job": _dry_run_job(task, request)})

    @extend_schema(request=TaskScorerSetInput, responses={202: OrganizerJobOutput, 200: None})
    def post(self, request: Request, slug: str) -> Response:
        competition = access_competition(request.user, slug, organize=True)
        data = self.TaskScorerSetInput(data=request.data)
        data.is_valid(raise_exception=True)
        job = task_scorer_set(
            task=competition.task,
            uploaded_file=data.validated_data["program"],
            image=data.validated_data.get("image") or None,
            public=data.validated_data.get("public"),
            user=signed_in(request.user),
        )
        if job is None:  # the same program: only `public` changed, nothing to run
            task = competition.task
            return Response(_scorer_data(task) | {"dry_run_job": _dry_run_job(task, request)})
        return job_accepted(job, request)
