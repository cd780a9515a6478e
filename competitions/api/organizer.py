"""Organizer endpoints: import a bundle, rescore, disqualify, ban, finalize, export."""

import tempfile
from pathlib import Path

from django.http import FileResponse
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
from competitions.models import Team
from competitions.permissions import (
    Forbidden,
    NotFound,
    access_competition,
    access_submission,
    is_organizer,
    signed_in,
)
from competitions.services import leaderboard as leaderboard_services
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

    @extend_schema(request=BundleImportInput, responses=OpenApiTypes.OBJECT)
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
        return Response(
            {"slug": competition.slug, "url": url}, status=201, headers={"Location": url}
        )


class BundleExportApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request: Request, slug: str) -> FileResponse:
        competition = access_competition(request.user, slug, organize=True)
        from competitions.services.bundles import bundle_export_file

        stream = bundle_export_file(competition=competition)
        return FileResponse(stream, as_attachment=True, filename=f"{slug}.zip")


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

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, submission_id: int) -> Response:
        submission = _organized_submission(request, submission_id)
        submission = submission_services.submission_rescore(submission=submission)
        return Response({"id": submission.pk, "status": submission.status}, status=202)


class SubmissionDisqualifyApi(APIView):
    permission_classes = [IsAuthenticated]

    class SubmissionDisqualifyInput(serializers.Serializer):
        disqualified = serializers.BooleanField(default=True)
        reason = serializers.CharField(max_length=300, allow_blank=True, default="")

    @extend_schema(request=SubmissionDisqualifyInput, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, submission_id: int) -> Response:
        submission = _organized_submission(request, submission_id)
        data = self.SubmissionDisqualifyInput(data=request.data)
        data.is_valid(raise_exception=True)
        submission = submission_services.submission_set_disqualified(
            submission=submission, **data.validated_data
        )
        return Response({"id": submission.pk, "is_disqualified": submission.is_disqualified})


class TeamBanApi(APIView):
    permission_classes = [IsAuthenticated]

    class TeamBanInput(serializers.Serializer):
        banned = serializers.BooleanField(default=True)
        reason = serializers.CharField(max_length=300, allow_blank=True, default="")

    @extend_schema(request=TeamBanInput, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, slug: str, team_id: int) -> Response:
        competition = access_competition(request.user, slug, organize=True)
        team = Team.objects.filter(competition=competition, pk=team_id).first()
        if team is None:
            raise NotFound("No such team in this competition.")
        data = self.TeamBanInput(data=request.data)
        data.is_valid(raise_exception=True)
        team = team_set_banned(team=team, **data.validated_data)
        return Response({"id": team.pk, "is_banned": team.is_banned})


class FinalizeApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, slug: str) -> Response:
        competition = access_competition(request.user, slug, organize=True)
        competition = leaderboard_services.competition_finalize(competition=competition)
        return Response({"slug": competition.slug, "finalized_at": competition.finalized_at})
