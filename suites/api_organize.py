"""The suite organizer's endpoints under /api/v1/suites/<slug>/ (what the console's pages
do, suites/views_console.py): add a task from a competition you organize, remove a task no
method has run on, move a task up or down, and ask the workers to compute the matrix's
stale cells. PATCH on the suite itself is in suites/api.py.

Access as suites/permissions.py says: the suite's organizers only (404 where the suite is
invite-only and hidden from the caller, 403 `forbidden` otherwise); adding a competition
you do not organize is 403 `forbidden` too. Refusals in the project's JSON format: a task
with runs, 409 `invalid_state`; a key or competition already in the suite, 400 `invalid`.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from competitions.permissions import signed_in
from suites import selectors_console, services
from suites.api_outputs import (
    MatrixRefreshOutput,
    SuiteTaskInput,
    SuiteTaskMoveInput,
    SuiteTaskOrganizerOutput,
    task_organizer_info,
)
from suites.models import Suite
from suites.permissions import access_competition_to_add, access_suite, access_suite_task


def _task_body(request: Request, suite: Suite, key: str) -> dict:
    """The task as the organizer reads it (its state and run count), read afresh."""
    [task] = [
        t for t in selectors_console.console_tasks(suite, signed_in(request.user)) if t.key == key
    ]
    return task_organizer_info(request, task)


class SuiteTaskListApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="suites_tasks_create",
        request=SuiteTaskInput,
        responses={201: SuiteTaskOrganizerOutput},
    )
    def post(self, request: Request, slug: str) -> Response:
        """Add a competition you organize as the suite's last task (it stays its own
        competition: its visibility and organizers do not change)."""
        suite = access_suite(request.user, slug, organize=True)
        data = SuiteTaskInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = signed_in(request.user)
        competition = access_competition_to_add(user, data.validated_data["competition"])
        task = services.suite_task_attach(
            suite=suite, competition=competition, by=user, key=data.validated_data.get("key", "")
        )
        body = _task_body(request, suite, task.key)
        location = reverse("suites-api:suite-task-detail", args=[slug, task.key], request=request)
        return Response(
            SuiteTaskOrganizerOutput(body).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": location},
        )


class SuiteTaskDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="suites_tasks_retrieve", responses=SuiteTaskOrganizerOutput)
    def get(self, request: Request, slug: str, key: str) -> Response:
        """The task with its state (its constant predictor) and the methods' run count."""
        suite = access_suite(request.user, slug, organize=True)
        task = access_suite_task(suite, key)
        return Response(SuiteTaskOrganizerOutput(_task_body(request, suite, task.key)).data)

    @extend_schema(operation_id="suites_tasks_destroy", responses={204: None})
    def delete(self, request: Request, slug: str, key: str) -> Response:
        """Remove the task (409 once a method has a run on it); its competition stays, the
        tasks after it move up one place."""
        suite = access_suite(request.user, slug, organize=True)
        services.suite_task_remove(task=access_suite_task(suite, key))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SuiteTaskMoveApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="suites_tasks_move",
        request=SuiteTaskMoveInput,
        responses=SuiteTaskOrganizerOutput,
    )
    def post(self, request: Request, slug: str, key: str) -> Response:
        """Swap the task with the one before (up) or after (down) it; at either end nothing
        moves."""
        suite = access_suite(request.user, slug, organize=True)
        task = access_suite_task(suite, key)
        data = SuiteTaskMoveInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.suite_task_move(task=task, up=data.validated_data["direction"] == "up")
        return Response(SuiteTaskOrganizerOutput(_task_body(request, suite, task.key)).data)


class MatrixRefreshApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="suites_matrix_refresh",
        request=None,
        responses={202: MatrixRefreshOutput},
    )
    def post(self, request: Request, slug: str) -> Response:
        """Ask the workers to compute the matrix's stale cells; answers at once (202)."""
        suite = access_suite(request.user, slug, organize=True)
        services.suite_cells_refresh_request(suite=suite)
        body = {
            "detail": "The workers will compute the matrix's stale cells.",
            "matrix_url": reverse("suites-api:suite-matrix", args=[slug], request=request),
        }
        return Response(MatrixRefreshOutput(body).data, status=status.HTTP_202_ACCEPTED)
