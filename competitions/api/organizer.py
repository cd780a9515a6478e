"""Organizer endpoints: import a bundle, rescore, disqualify, ban, finalize, reopen, export."""

import tempfile
from pathlib import Path

from django.http import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from competitions.api.jobs import OrganizerJobOutput, job_accepted
from competitions.api.renderers import DownloadNegotiation
from competitions.downloads import file_download
from competitions.models import Team
from competitions.permissions import (
    Forbidden,
    NotFound,
    access_competition,
    access_submission,
    is_organizer,
    signed_in,
)
from competitions.services import lifecycle
from competitions.services import submissions as submission_services
from competitions.services.jobs import rescore_all_start
from competitions.services.teams import team_set_banned


def _organized_submission(request: Request, submission_id: int):
    submission = access_submission(request.user, submission_id)
    if not is_organizer(request.user, submission.competition):
        raise Forbidden("Only this competition's organizers can do that.")
    return submission


class BundleImportApi(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [MultiPartParser]

    class BundleImportInput(serializers.Serializer):
        bundle = serializers.FileField(help_text="A zip holding competition.yaml and its files")

    class BundleImportOutput(serializers.Serializer):
        slug = serializers.CharField()
        url = serializers.URLField()

    @extend_schema(request=BundleImportInput, responses={201: BundleImportOutput})
    def post(self, request: Request) -> Response:
        from competitions.services.bundles import bundle_import

        if not request.user.is_staff:
            raise Forbidden("Only organizer accounts can import competitions.")
        data = self.BundleImportInput(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["bundle"]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bundle.zip"
            with path.open("wb") as out:
                for chunk in upload.chunks():
                    out.write(chunk)
            competition = bundle_import(source=path, organizer=request.user)
        url = reverse("api:competition-detail", args=[competition.slug], request=request)
        body = self.BundleImportOutput({"slug": competition.slug, "url": url}).data
        return Response(body, status=201, headers={"Location": url})


class BundleExportApi(APIView):
    permission_classes = [IsAuthenticated]
    content_negotiation_class = DownloadNegotiation

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request: Request, slug: str) -> HttpResponseBase:
        competition = access_competition(request.user, slug, organize=True)
        from competitions.services.bundles import bundle_export_file

        stream = bundle_export_file(competition=competition)
        return file_download(request, stream, filename=f"{slug}.zip")


class RescoreAllApi(APIView):
    """Queue every finished submission again, as a background job: 202 with the job."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={202: OrganizerJobOutput})
    def post(self, request: Request, slug: str) -> Response:
        competition = access_competition(request.user, slug, organize=True)
        job = rescore_all_start(competition=competition, user=signed_in(request.user))
        return job_accepted(job, request)


class SubmissionRescoreApi(APIView):
    permission_classes = [IsAuthenticated]

    class SubmissionRescoreOutput(serializers.Serializer):
        id = serializers.IntegerField()
        status = serializers.CharField()

    @extend_schema(request=None, responses={202: SubmissionRescoreOutput})
    def post(self, request: Request, submission_id: int) -> Response:
        submission = _organized_submission(request, submission_id)
        submission = submission_services.submission_rescore(
            submission=submission, by=signed_in(request.user)
        )
        return Response(self.SubmissionRescoreOutput(submission).data, status=202)


class SubmissionDisqualifyApi(APIView):
    permission_classes = [IsAuthenticated]

    class SubmissionDisqualifyInput(serializers.Serializer):
        disqualified = serializers.BooleanField(default=True)
        reason = serializers.CharField(max_length=300, allow_blank=True, default="")

    class SubmissionDisqualifyOutput(serializers.Serializer):
        id = serializers.IntegerField()
        is_disqualified = serializers.BooleanField()

    @extend_schema(request=SubmissionDisqualifyInput, responses=SubmissionDisqualifyOutput)
    def post(self, request: Request, submission_id: int) -> Response:
        submission = _organized_submission(request, submission_id)
        data = self.SubmissionDisqualifyInput(data=request.data)
        data.is_valid(raise_exception=True)
        submission = submission_services.submission_set_disqualified(
            submission=submission, by=signed_in(request.user), **data.validated_data
        )
        return Response(self.SubmissionDisqualifyOutput(submission).data)


class TeamBanApi(APIView):
    permission_classes = [IsAuthenticated]

    class TeamBanInput(serializers.Serializer):
        banned = serializers.BooleanField(default=True)
        reason = serializers.CharField(max_length=300, allow_blank=True, default="")

    class TeamBanOutput(serializers.Serializer):
        id = serializers.IntegerField()
        is_banned = serializers.BooleanField()

    @extend_schema(request=TeamBanInput, responses=TeamBanOutput)
    def post(self, request: Request, slug: str, team_id: int) -> Response:
        competition = access_competition(request.user, slug, organize=True)
        team = Team.objects.filter(competition=competition, pk=team_id).first()
        if team is None:
            raise NotFound("No such team in this competition.")
        data = self.TeamBanInput(data=request.data)
        data.is_valid(raise_exception=True)
        team = team_set_banned(team=team, by=signed_in(request.user), **data.validated_data)
        return Response(self.TeamBanOutput(team).data)


class LifecycleOutput(serializers.Serializer):
    slug = serializers.CharField(source="competition.slug")
    finalized_at = serializers.DateTimeField(source="competition.finalized_at", allow_null=True)
    reopened_at = serializers.DateTimeField(source="competition.reopened_at", allow_null=True)
    reopen_reason = serializers.CharField(source="competition.reopen_reason")
    event = serializers.CharField(source="kind")
    ended_phases = serializers.ListField(
        child=serializers.CharField(), help_text="Phases still open that finalize ended"
    )


class FinalizeApi(APIView):
    """Reveal the private board and freeze the competition; open phases end now."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses=LifecycleOutput)
    def post(self, request: Request, slug: str) -> Response:
        competition = access_competition(request.user, slug, organize=True)
        event = lifecycle.competition_finalize(competition=competition, by=signed_in(request.user))
        return Response(LifecycleOutput(event).data)


class ReopenApi(APIView):
    """Lift the freeze of a finalized competition; the reason is shown with the leaderboard."""

    permission_classes = [IsAuthenticated]

    class ReopenInput(serializers.Serializer):
        reason = serializers.CharField(max_length=lifecycle.REASON_MAX)

    @extend_schema(request=ReopenInput, responses=LifecycleOutput)
    def post(self, request: Request, slug: str) -> Response:
        competition = access_competition(request.user, slug, organize=True)
        data = self.ReopenInput(data=request.data)
        data.is_valid(raise_exception=True)
        event = lifecycle.competition_reopen(
            competition=competition, by=signed_in(request.user), **data.validated_data
        )
        return Response(LifecycleOutput(event).data)
