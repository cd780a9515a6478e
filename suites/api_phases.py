"""The suite's phases in the API: GET and PUT /api/v1/suites/<slug>/phases/ for its
organizers (suites/services_phases.py's suite_phases_set: the whole schedule at once, every
task the suite made following it), and the schedule as the suite's detail shows it to
everyone who sees the suite (suites/api_outputs.py).

Access as the other organizer endpoints (suites/api_organize.py): 404 where the suite is
hidden from the caller, 403 `forbidden` for others; a schedule breaking a rule is 400
`invalid` (`problems` lists each), a phase that can't be deleted from a task 409
`invalid_state`.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from competitions.permissions import signed_in
from suites.models import Suite, SuiteTask
from suites.permissions import access_suite
from suites.selectors_web import schedule_followers, suite_schedule
from suites.services_phases import SchedulePhase, suite_phases_set


class SuitePhaseInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    start_at = serializers.DateTimeField()
    end_at = serializers.DateTimeField(allow_null=True, required=False, default=None)
    daily_limit = serializers.IntegerField(
        min_value=1, default=5, help_text="Submissions per team per UTC day, on each task"
    )
    total_limit = serializers.IntegerField(
        min_value=1,
        allow_null=True,
        required=False,
        default=None,
        help_text="Submissions per team in the phase, on each task (null: no limit)",
    )
    late_submissions_scored = serializers.BooleanField(default=False)
    kind = serializers.ChoiceField(
        choices=["predictions", "container"],
        default="predictions",
        help_text="What participants submit (a competition phase's `kind`)",
    )
    allow_build_context = serializers.BooleanField(default=False)


class SuitePhasesInput(serializers.Serializer):
    phases = SuitePhaseInput(many=True, help_text="In the order they start; [] clears them")


class SuitePhaseOutput(serializers.Serializer):
    name = serializers.CharField()
    start_at = serializers.DateTimeField()
    end_at = serializers.DateTimeField(allow_null=True)
    daily_limit = serializers.IntegerField(help_text="Per team per UTC day, on each task")
    total_limit = serializers.IntegerField(
        allow_null=True, help_text="Per team in the phase, on each task"
    )
    late_submissions_scored = serializers.BooleanField()
    kind = serializers.ChoiceField(choices=["predictions", "container"])
    allow_build_context = serializers.BooleanField()
    current = serializers.BooleanField(help_text="Open now")
    quota = serializers.CharField(help_text="The limits in words")


class SuitePhasesOutput(serializers.Serializer):
    phases = SuitePhaseOutput(many=True)
    following = serializers.ListField(
        child=serializers.CharField(), help_text="The tasks the suite made: they follow it"
    )
    own_phases = serializers.ListField(
        child=serializers.CharField(),
        help_text="The tasks attached from competitions of their own: they keep their phases",
    )


def schedule_data(suite: Suite, tasks: list[SuiteTask] | None = None) -> dict:
    """The schedule as SuitePhasesOutput shows it; `tasks`: the suite's, if already read."""
    if tasks is None:
        following, own = schedule_followers(suite)
    else:
        following = [t.key for t in tasks if t.owned]
        own = [t.key for t in tasks if not t.owned]
    phases = [
        {
            "name": p.name,
            "start_at": p.start_at,
            "end_at": p.end_at,
            "daily_limit": p.daily_limit,
            "total_limit": p.total_limit,
            "late_submissions_scored": p.late_submissions_scored,
            "kind": p.submission_kind,
            "allow_build_context": p.allow_build_context,
            "current": p.current,  # type: ignore[attr-defined]  # selectors_web.suite_schedule
            "quota": p.quota,  # type: ignore[attr-defined]
        }
        for p in suite_schedule(suite)
    ]
    return {"phases": phases, "following": following, "own_phases": own}


class SuitePhasesApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="suites_phases_retrieve", responses=SuitePhasesOutput)
    def get(self, request: Request, slug: str) -> Response:
        """The suite's phases in order, and which tasks follow them."""
        suite = access_suite(request.user, slug, organize=True)
        return Response(SuitePhasesOutput(schedule_data(suite)).data)

    @extend_schema(
        operation_id="suites_phases_update", request=SuitePhasesInput, responses=SuitePhasesOutput
    )
    def put(self, request: Request, slug: str) -> Response:
        """Replace the schedule: every task the suite made follows it at once (its phases
        matched by name are changed, missing ones made, unlisted ones deleted; 409 if one
        has submissions or released files, and then nothing changes)."""
        suite = access_suite(request.user, slug, organize=True)
        data = SuitePhasesInput(data=request.data)
        data.is_valid(raise_exception=True)
        phases = [
            SchedulePhase(
                submission_kind=item["kind"], **{k: v for k, v in item.items() if k != "kind"}
            )
            for item in data.validated_data["phases"]
        ]
        suite_phases_set(suite=suite, phases=phases, by=signed_in(request.user))
        return Response(SuitePhasesOutput(schedule_data(suite)).data)
