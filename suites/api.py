"""Suite endpoints under /api/v1/suites/: the suite and its tasks, joining, methods,
submitting to a method (one file for one task, or one container fanned out to every task),
the matrix as JSON or CSV and the critical-difference diagram as SVG; PATCH changes the
suite's details (its organizers'; their other endpoints are in suites/api_organize.py).

Access as suites/permissions.py says; errors in the project's JSON format
(competitions/api/errors.py). A task's files are linked at its competition's own file URL
(that competition's rules apply); no suite URL serves a file or a label.
"""

from __future__ import annotations

from django.http import HttpResponse, HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from competitions.api.pagination import PAGE_PARAMETERS, page_of
from competitions.api.renderers import CSVRenderer, DownloadNegotiation
from competitions.permissions import NotFound, signed_in
from competitions.throttles import SUBMISSIONS, ScopeThrottle
from suites import matrix_data, selectors, selectors_web, services
from suites.api_outputs import (
    MatrixOutput,
    MethodDetailOutput,
    MethodInput,
    MethodOutput,
    MethodRunOutput,
    MethodUploadInput,
    SuiteDetailOutput,
    SuiteJoinOutput,
    SuitePageOutput,
    SuiteUpdateInput,
    method_info,
    run_info,
    suite_detail,
    suite_info,
)
from suites.matrix_cache import kept_render
from suites.permissions import access_method, access_suite, access_suite_task


class SuiteListApi(APIView):
    @extend_schema(
        operation_id="suites_list", parameters=PAGE_PARAMETERS, responses=SuitePageOutput
    )
    def get(self, request: Request) -> Response:
        """The suites you may see listed, newest first, a page at a time."""
        rows, envelope = page_of(
            request, selectors_web.suite_list_for(request.user), default_size=100, max_size=1000
        )
        body = envelope | {"results": [suite_info(request, s) for s in rows]}
        return Response(SuitePageOutput(body).data)


class SuiteDetailApi(APIView):
    def get_permissions(self):
        return [IsAuthenticated()] if self.request.method == "PATCH" else []

    @extend_schema(operation_id="suites_retrieve", responses=SuiteDetailOutput)
    def get(self, request: Request, slug: str) -> Response:
        """The suite with its tasks in order, each with its metric and public files."""
        suite = access_suite(request.user, slug)
        return Response(SuiteDetailOutput(suite_detail(request, suite)).data)

    @extend_schema(
        operation_id="suites_partial_update", request=SuiteUpdateInput, responses=SuiteDetailOutput
    )
    def patch(self, request: Request, slug: str) -> Response:
        """Change the title, description, rules or visibility (the suite's organizers only;
        the fields not named keep their values). The competitions the suite made follow
        its visibility."""
        suite = access_suite(request.user, slug, organize=True)
        data = SuiteUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        current = {f: getattr(suite, f) for f in services.SUITE_DETAILS}
        suite = services.suite_update(suite=suite, **(current | data.validated_data))
        return Response(SuiteDetailOutput(suite_detail(request, suite)).data)


class SuiteJoinApi(APIView):
    permission_classes = [IsAuthenticated]

    class SuiteJoinInput(serializers.Serializer):
        accept_rules = serializers.BooleanField()

    @extend_schema(operation_id="suites_join", request=SuiteJoinInput, responses=SuiteJoinOutput)
    def post(self, request: Request, slug: str) -> Response:
        """Join every task's competition (again is harmless)."""
        suite = access_suite(request.user, slug)
        data = self.SuiteJoinInput(data=request.data)
        data.is_valid(raise_exception=True)
        memberships = services.suite_join(
            suite=suite,
            user=signed_in(request.user),
            accept_rules=data.validated_data["accept_rules"],
        )
        return Response(SuiteJoinOutput({"tasks": len(memberships)}).data)


class MethodListCreateApi(APIView):
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    def get_permissions(self):
        return [IsAuthenticated()] if self.request.method == "POST" else []

    @extend_schema(operation_id="suites_methods_list", responses=MethodOutput(many=True))
    def get(self, request: Request, slug: str) -> Response:
        """Every method of the suite, oldest first."""
        suite = access_suite(request.user, slug)
        methods = selectors_web.suite_methods(suite)
        return Response(MethodOutput([method_info(request, m) for m in methods], many=True).data)

    @extend_schema(
        operation_id="suites_methods_create",
        request=MethodInput,
        responses={201: MethodOutput},
    )
    def post(self, request: Request, slug: str) -> Response:
        """Register a method (after joining the suite); `components` maps a tag to a value
        or a list of values, e.g. {"model": "gradient boosting"}."""
        suite = access_suite(request.user, slug)
        data = MethodInput(data=request.data)
        data.is_valid(raise_exception=True)
        method = services.method_create(
            suite=suite, owner=signed_in(request.user), **data.validated_data
        )
        body = method_info(request, method)
        return Response(MethodOutput(body).data, status=201, headers={"Location": body["url"]})


class MethodDetailApi(APIView):
    @extend_schema(operation_id="suites_methods_retrieve", responses=MethodDetailOutput)
    def get(self, request: Request, slug: str, method_id: int) -> Response:
        """The method with every run it made, newest first."""
        suite = access_suite(request.user, slug)
        method = access_method(request.user, suite, method_id)
        runs = [run_info(request, r) for r in selectors_web.method_runs(method)]
        return Response(MethodDetailOutput(method_info(request, method) | {"runs": runs}).data)


class _SubmitApi(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser]
    throttle_scope = SUBMISSIONS  # shared with the competitions' submissions

    def get_throttles(self):
        return [ScopeThrottle()]

    def _upload(self, request: Request):
        data = MethodUploadInput(data=request.data)
        data.is_valid(raise_exception=True)
        return data.validated_data["file"]


class MethodTaskSubmitApi(_SubmitApi):
    @extend_schema(
        operation_id="suites_methods_task_submit",
        request=MethodUploadInput,
        responses={202: MethodRunOutput},
    )
    def post(self, request: Request, slug: str, method_id: int, key: str) -> Response:
        """One prediction file (or container) of your method for one task: a submission of
        the task's competition, its phases and quota applying."""
        suite = access_suite(request.user, slug)
        method = access_method(request.user, suite, method_id, own=True)
        task = access_suite_task(suite, key)
        run = services.method_submit(
            method=method,
            task=task,
            user=signed_in(request.user),
            uploaded_file=self._upload(request),
        )
        row = selectors_web.RunRow(
            task=task,
            submission_id=run.submission_id,
            status=run.submission.status,
            created_at=run.created_at,
            fanout=None,
        )
        return Response(
            MethodRunOutput(run_info(request, row)).data, status=status.HTTP_202_ACCEPTED
        )


class MethodSubmitEverywhereApi(_SubmitApi):
    @extend_schema(
        operation_id="suites_methods_submit_everywhere",
        request=MethodUploadInput,
        responses={202: MethodRunOutput(many=True)},
    )
    def post(self, request: Request, slug: str, method_id: int) -> Response:
        """One container image run once per task: one submission (one sandboxed scoring
        job) per task, all made or none."""
        suite = access_suite(request.user, slug)
        method = access_method(request.user, suite, method_id, own=True)
        runs = services.method_submit_everywhere(
            method=method, user=signed_in(request.user), uploaded_file=self._upload(request)
        )
        rows = [
            run_info(
                request,
                selectors_web.RunRow(
                    task=r.suite_task,
                    submission_id=r.submission_id,
                    status=r.submission.status,
                    created_at=r.created_at,
                    fanout=str(r.fanout),
                ),
            )
            for r in runs
        ]
        return Response(MethodRunOutput(rows, many=True).data, status=status.HTTP_202_ACCEPTED)


MATRIX_PARAMETERS = [
    OpenApiParameter("pivot", str, description="A component tag: the methods grouped by it"),
    OpenApiParameter(
        "tests", str, enum=["wilcoxon"], description="wilcoxon: every pair's Wilcoxon-Holm test"
    ),
]


class MatrixApi(APIView):
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer, CSVRenderer]

    @extend_schema(
        operation_id="suites_matrix",
        parameters=MATRIX_PARAMETERS,
        responses={(200, "application/json"): MatrixOutput, (200, "text/csv"): OpenApiTypes.STR},
    )
    def get(self, request: Request, slug: str) -> HttpResponseBase:
        """Methods x tasks: each cell's score (interval when known), status (scored, or
        imputed: failed, missing), normalized score and rank; the aggregates; the Friedman
        test and the Nemenyi critical difference. `?format=csv` for CSV."""
        suite = access_suite(request.user, slug)
        matrix = selectors.suite_matrix(suite=suite)
        if request.accepted_renderer.format == "csv":
            return Response(matrix_data.csv_table(matrix_data.matrix_data(matrix)))
        tag = request.query_params.get("pivot", "").strip().lower()
        wilcoxon = request.query_params.get("tests") == "wilcoxon"
        diagram = reverse("suites-api:suite-cd-diagram", args=[slug], request=request)

        def output() -> dict:
            data = matrix_data.matrix_data(matrix, pivot_tag=tag, wilcoxon=wilcoxon)
            data["cd_diagram_url"] = diagram if matrix.statistics else None
            return MatrixOutput(data).data

        if request.accepted_renderer.format != "json" or tag not in (
            "",
            *matrix_data.component_tags(matrix),
        ):
            return Response(output())
        # Rendered once per matrix token (suites/matrix_cache.py); the link names the host.
        body = kept_render(
            suite=suite,
            token=matrix.token,
            parts=("json", tag, str(wilcoxon), diagram),
            render=lambda: JSONRenderer().render(output()),
        )
        return HttpResponse(body, content_type="application/json")


class MatrixCsvApi(APIView):
    renderer_classes = [CSVRenderer]
    content_negotiation_class = DownloadNegotiation

    @extend_schema(
        operation_id="suites_matrix_csv", responses={(200, "text/csv"): OpenApiTypes.STR}
    )
    def get(self, request: Request, slug: str) -> Response:
        """The matrix as CSV, a row per method (best first), formula cells neutralized."""
        suite = access_suite(request.user, slug)
        matrix = selectors.suite_matrix(suite=suite)
        return Response(matrix_data.csv_table(matrix_data.matrix_data(matrix)))


class CdDiagramApi(APIView):
    content_negotiation_class = DownloadNegotiation

    @extend_schema(
        operation_id="suites_cd_diagram", responses={(200, "image/svg+xml"): OpenApiTypes.STR}
    )
    def get(self, request: Request, slug: str) -> HttpResponseBase:
        """The critical-difference diagram (SVG, drawn on the server); 404 until two methods
        have results on two tasks."""
        suite = access_suite(request.user, slug)
        svg = matrix_data.cd_svg(selectors.suite_matrix(suite=suite))
        if svg is None:
            raise NotFound("No diagram yet: it needs two methods with results on two tasks.")
        return HttpResponse(svg, content_type="image/svg+xml; charset=utf-8")
