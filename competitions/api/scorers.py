"""Organizer endpoint: a competition's scoring program (docs/scorers.md)."""

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from competitions.api.jobs import OrganizerJobOutput, job_accepted
from competitions.models import OrganizerJob, Task
from competitions.permissions import access_competition, signed_in
from competitions.selectors import organizer_job_latest
from competitions.services.scorers import task_scorer_set


class TaskScorerOutput(serializers.Serializer):
    program = serializers.BooleanField(help_text="An uploaded scoring program is in use")
    program_sha256 = serializers.CharField(allow_null=True)
    image = serializers.CharField()
    images = serializers.ListField(child=serializers.CharField(), help_text="Images allowed")
    logs_visible_to_participants = serializers.BooleanField()
    public = serializers.BooleanField()
    task_version = serializers.IntegerField()
    dry_run = serializers.DictField(allow_null=True, help_text="The last dry run's outcome")
    dry_run_job = OrganizerJobOutput(allow_null=True)


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


def _dry_run_job(task: Task) -> OrganizerJob | None:
    return organizer_job_latest(competition=task.competition, kind=OrganizerJob.Kind.DRY_RUN)


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

    @extend_schema(responses=TaskScorerOutput)
    def get(self, request: Request, slug: str) -> Response:
        competition = access_competition(request.user, slug, organize=True)
        task = competition.task
        body = _scorer_data(task) | {"dry_run_job": _dry_run_job(task)}
        return Response(TaskScorerOutput(body, context={"request": request}).data)

    @extend_schema(
        request=TaskScorerSetInput, responses={202: OrganizerJobOutput, 200: TaskScorerOutput}
    )
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
            body = _scorer_data(task) | {"dry_run_job": _dry_run_job(task)}
            return Response(TaskScorerOutput(body, context={"request": request}).data)
        return job_accepted(job, request)
