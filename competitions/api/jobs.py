"""Organizers' background jobs: GET one to follow its progress (docs/site.md)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from competitions.models import OrganizerJob
from competitions.permissions import NotFound, access_competition


class OrganizerJobOutput(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.SerializerMethodField()
    competition = serializers.CharField(source="competition.slug")
    kind = serializers.CharField()
    status = serializers.CharField()
    params = serializers.DictField(help_text="What the job was asked to do")
    progress_done = serializers.IntegerField()
    progress_total = serializers.IntegerField()
    message = serializers.CharField()
    result = serializers.DictField(help_text="What the job did, once finished")
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    heartbeat_at = serializers.DateTimeField(
        allow_null=True, help_text="The running worker's latest heartbeat"
    )
    interruptions = serializers.IntegerField(help_text="Times its worker stopped mid-run")

    def get_url(self, job: OrganizerJob) -> str:
        return reverse("api:job-detail", args=[job.pk], request=self.context.get("request"))


def job_data(job: OrganizerJob, request: Request) -> dict:
    return dict(OrganizerJobOutput(job, context={"request": request}).data)


def job_accepted(job: OrganizerJob, request: Request) -> Response:
    """202 Accepted with the job, its URL in Location."""
    data = job_data(job, request)
    return Response(data, status=202, headers={"Location": data["url"]})


class OrganizerJobApi(APIView):
    """A background job of a competition, for its organizers: status and progress."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=OrganizerJobOutput)
    def get(self, request: Request, job_id: int) -> Response:
        job = (
            OrganizerJob.objects.select_related("competition", "created_by")
            .filter(pk=job_id)
            .first()
        )
        if job is None:
            raise NotFound("No such job.")
        # 404 for who may not see the competition, 403 for who may but does not organize it.
        access_competition(request.user, job.competition.slug, organize=True)
        return Response(job_data(job, request))
