"""Organizer endpoints for a competition's phases: each phase's dates, quotas and the task
version it pins (docs/api.md#phases), and setting that pin.

Organizers only: others who may see the competition get 403, those who may not 404 (as
every organizer endpoint). The pin's rules are the model's, applied by one service
(services/phase_versions.py's phase_version_set): a version of the competition's task,
usable; a finalized competition refuses (409 `finalized`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from competitions.api.pagination import PAGE_PARAMETERS, page_of
from competitions.models import Competition, Phase
from competitions.permissions import NotFound, access_competition, signed_in
from competitions.services.phase_versions import phase_version_set


class OrganizerPhaseOutput(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.URLField()
    name = serializers.CharField()
    start_at = serializers.DateTimeField()
    end_at = serializers.DateTimeField(allow_null=True)
    is_open = serializers.BooleanField(help_text="It takes submissions now (start <= now < end)")
    daily_limit = serializers.IntegerField()
    total_limit = serializers.IntegerField(allow_null=True)
    late_submissions_scored = serializers.BooleanField()
    kind = serializers.ChoiceField(choices=["predictions", "container"])
    board_metrics = serializers.ListField(
        child=serializers.CharField(),
        help_text="The leaderboard's columns while this phase is the board's (empty: all)",
    )
    task_version = serializers.IntegerField(
        allow_null=True,
        help_text="The task version the phase pins: its submissions are scored under it, "
        "and the leaderboard ranks it while the phase is open (null: no pin)",
    )
    scores_under = serializers.IntegerField(
        help_text="The version its submissions are scored under now: the pinned one, or "
        "the ranked one"
    )


class OrganizerPhaseListOutput(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = OrganizerPhaseOutput(many=True)


def _phase_data(
    request: Request, competition: Competition, phase: Phase, now: datetime
) -> dict[str, Any]:
    return {
        "id": phase.pk,
        "url": reverse("api:phase-detail", args=[competition.slug, phase.pk], request=request),
        "name": phase.name,
        "start_at": phase.start_at,
        "end_at": phase.end_at,
        "is_open": phase.is_open_at(now),
        "daily_limit": phase.daily_limit,
        "total_limit": phase.total_limit,
        "late_submissions_scored": phase.late_submissions_scored,
        "kind": phase.submission_kind,
        "board_metrics": phase.board_metrics,
        "task_version": phase.task_version,
        "scores_under": phase.task_version or competition.task.version,
    }


def _organized_phase(request: Request, slug: str, phase_id: int) -> tuple[Competition, Phase]:
    competition = access_competition(request.user, slug, organize=True)
    phase = Phase.objects.filter(pk=phase_id, competition=competition).first()
    if phase is None:
        raise NotFound("No such phase in this competition.")
    return competition, phase


class PhaseListApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="competitions_phases_list",
        parameters=PAGE_PARAMETERS,
        responses=OrganizerPhaseListOutput,
    )
    def get(self, request: Request, slug: str) -> Response:
        """The competition's phases in date order, with the version each pins."""
        competition = access_competition(request.user, slug, organize=True)
        phases = competition.phases.order_by("start_at")
        rows, envelope = page_of(request, phases, default_size=100, max_size=1000)
        now = timezone.now()
        envelope["results"] = [_phase_data(request, competition, p, now) for p in rows]
        return Response(OrganizerPhaseListOutput(envelope).data)


class PhaseDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    class PhaseUpdateInput(serializers.Serializer):
        task_version = serializers.IntegerField(
            required=False,
            allow_null=True,
            min_value=1,
            help_text="Pin this version of the task (null: no pin, the ranked version). "
            "Refused (400) for a version the task does not have or can't score under; "
            "while the phase is open the leaderboard ranks the new pin at once",
        )

    @extend_schema(responses=OrganizerPhaseOutput)
    def get(self, request: Request, slug: str, phase_id: int) -> Response:
        competition, phase = _organized_phase(request, slug, phase_id)
        return Response(
            OrganizerPhaseOutput(_phase_data(request, competition, phase, timezone.now())).data
        )

    @extend_schema(request=PhaseUpdateInput, responses=OrganizerPhaseOutput)
    def patch(self, request: Request, slug: str, phase_id: int) -> Response:
        """Change what the body names; today, the task version the phase pins (the dates
        and quotas are the organizer pages')."""
        competition, phase = _organized_phase(request, slug, phase_id)
        data = self.PhaseUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        if "task_version" in data.validated_data:
            phase = phase_version_set(
                phase=phase,
                task_version=data.validated_data["task_version"],
                by=signed_in(request.user),
            )
            competition.task.refresh_from_db(fields=["version"])
        return Response(
            OrganizerPhaseOutput(_phase_data(request, competition, phase, timezone.now())).data
        )
