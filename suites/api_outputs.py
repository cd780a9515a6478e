"""The suite API's input and output serializers (typed for the OpenAPI schema), and the
functions that shape a suite, a method and a run for them."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.reverse import reverse

from competitions.models import Competition
from suites.api_phases import SuitePhasesOutput, schedule_data
from suites.models import Method, Suite, SuiteTask
from suites.selectors_console import STATES
from suites.selectors_web import STATUSES, RunRow, suite_tasks_with_files


class SuiteOutput(serializers.Serializer):
    slug = serializers.CharField()
    title = serializers.CharField()
    visibility = serializers.CharField()
    tasks = serializers.IntegerField(help_text="How many tasks")
    methods = serializers.IntegerField(help_text="How many methods")
    created_at = serializers.DateTimeField()
    url = serializers.URLField()
    page_url = serializers.URLField()


class SuitePageOutput(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = SuiteOutput(many=True)


def suite_info(request: Request, suite: Suite) -> dict:
    return {
        "slug": suite.slug,
        "title": suite.title,
        "visibility": suite.visibility,
        "tasks": suite.task_count,  # type: ignore[attr-defined]  # selectors_web.suite_list_for
        "methods": suite.method_count,  # type: ignore[attr-defined]
        "created_at": suite.created_at,
        "url": reverse("suites-api:suite-detail", args=[suite.slug], request=request),
        "page_url": reverse("suite", args=[suite.slug], request=request),
    }


class SuiteFileOutput(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.CharField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()
    url = serializers.URLField(help_text="The task competition's own file URL")


class SuiteTaskOutput(serializers.Serializer):
    key = serializers.CharField()
    position = serializers.IntegerField()
    competition = serializers.CharField(help_text="The slug of the task's competition")
    competition_url = serializers.URLField()
    task_type = serializers.CharField()
    metric = serializers.CharField(help_text="The primary metric")
    files = SuiteFileOutput(many=True)


class SuiteDetailOutput(serializers.Serializer):
    slug = serializers.CharField()
    title = serializers.CharField()
    visibility = serializers.CharField()
    description = serializers.CharField()
    rules = serializers.CharField()
    created_at = serializers.DateTimeField()
    tasks = SuiteTaskOutput(many=True)
    schedule = SuitePhasesOutput(
        help_text="The suite's phases (each task it made follows them; an attached task keeps "
        "its own competition's)"
    )
    join_url = serializers.URLField()
    methods_url = serializers.URLField()
    matrix_url = serializers.URLField()
    page_url = serializers.URLField()


def suite_detail(request: Request, suite: Suite) -> dict:
    tasks = []
    read = suite_tasks_with_files(suite, request.user)
    for t in read:
        slug, task = t.competition.slug, t.competition.task
        files = [
            {
                "name": f.name,
                "kind": f.kind,
                "size": f.size,
                "sha256": f.sha256,
                "url": reverse("api:competition-file", args=[slug, f.name], request=request),
            }
            for f in t.visible_files  # type: ignore[attr-defined]
        ]
        tasks.append(
            {
                "key": t.key,
                "position": t.position,
                "competition": slug,
                "competition_url": reverse("api:competition-detail", args=[slug], request=request),
                "task_type": task.task_type,
                "metric": task.primary_metric,
                "files": files,
            }
        )
    args = [suite.slug]
    return {
        "slug": suite.slug,
        "title": suite.title,
        "visibility": suite.visibility,
        "description": suite.description,
        "rules": suite.rules,
        "created_at": suite.created_at,
        "tasks": tasks,
        "schedule": schedule_data(suite, read),
        "join_url": reverse("suites-api:suite-join", args=args, request=request),
        "methods_url": reverse("suites-api:method-list", args=args, request=request),
        "matrix_url": reverse("suites-api:suite-matrix", args=args, request=request),
        "page_url": reverse("suite", args=args, request=request),
    }


class SuiteJoinOutput(serializers.Serializer):
    tasks = serializers.IntegerField(help_text="The task competitions you are a member of now")


class ComponentsField(serializers.DictField):
    """tag -> list of values (a single value is accepted as a list of one)."""

    child = serializers.ListField(child=serializers.CharField())


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {
            "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
        },
    }
)
class ComponentsInputField(serializers.JSONField):
    """tag -> a value or a list of values; services.components_clean checks them."""


class MethodInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(max_length=10_000, required=False, allow_blank=True)
    paper_url = serializers.URLField(required=False, allow_blank=True)
    code_url = serializers.URLField(required=False, allow_blank=True)
    hardware_declared = serializers.CharField(max_length=300, required=False, allow_blank=True)
    # Checked by services.components_clean, which names every bad tag at once.
    components = ComponentsInputField(
        required=False, help_text='tag -> value or list of values, e.g. {"model": "ridge"}'
    )


class MethodOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    owner = serializers.CharField()
    description = serializers.CharField()
    paper_url = serializers.CharField()
    code_url = serializers.CharField()
    hardware_declared = serializers.CharField()
    components = ComponentsField()
    created_at = serializers.DateTimeField()
    url = serializers.URLField()
    page_url = serializers.URLField()


def method_info(request: Request, method: Method) -> dict:
    args = [method.suite.slug, method.pk]
    return {
        "id": method.pk,
        "name": method.name,
        "owner": method.owner.username,
        "description": method.description,
        "paper_url": method.paper_url,
        "code_url": method.code_url,
        "hardware_declared": method.hardware_declared,
        "components": method.components,
        "created_at": method.created_at,
        "url": reverse("suites-api:method-detail", args=args, request=request),
        "page_url": reverse("suite-method", args=args, request=request),
    }


class MethodRunOutput(serializers.Serializer):
    task = serializers.CharField(help_text="The task's key")
    competition = serializers.CharField()
    submission_id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=STATUSES)
    created_at = serializers.DateTimeField()
    fanout = serializers.CharField(
        allow_null=True, help_text="Shared by the submissions made from one container upload"
    )
    submission_url = serializers.URLField(help_text="Its owner's and organizers' API view")
    entry_url = serializers.URLField(help_text="The submission's entry page (manifest, replay)")


class MethodDetailOutput(MethodOutput):
    runs = MethodRunOutput(many=True)


def run_info(request: Request, row: RunRow) -> dict:
    return {
        "task": row.task.key,
        "competition": row.task.competition.slug,
        "submission_id": row.submission_id,
        "status": row.status,
        "created_at": row.created_at,
        "fanout": row.fanout,
        "submission_url": reverse(
            "api:submission-detail", args=[row.submission_id], request=request
        ),
        "entry_url": reverse(
            "entry", args=[row.task.competition.slug, row.submission_id], request=request
        ),
    }


class MethodUploadInput(serializers.Serializer):
    file = serializers.FileField(
        allow_empty_file=True,
        help_text="The predictions; on a container phase, the `docker save` archive",
    )


class MatrixTaskOutput(serializers.Serializer):
    key = serializers.CharField()
    position = serializers.IntegerField()
    competition = serializers.CharField()
    metric = serializers.CharField()
    higher_is_better = serializers.BooleanField()
    constant = serializers.FloatField(help_text="The constant predictor's score (normalized 0)")
    best = serializers.FloatField(help_text="The score normalized to 1")


class MatrixCellsOutput(serializers.ListSerializer):
    """A row's cells as suites.matrix_data made them, already of the declared types: only
    the declared fields are copied (DRF's field-by-field representation of a 500 x 50
    matrix took 0.4 s, most of its JSON's render). The schema is the child's."""

    def to_representation(self, data: list[dict]) -> list[dict]:  # type: ignore[override]
        names = list(self.child.fields)  # type: ignore[union-attr]
        return [{name: cell[name] for name in names} for cell in data]


class MatrixCellOutput(serializers.Serializer):
    task = serializers.CharField()
    score = serializers.FloatField(help_text="The constant predictor's when imputed")
    status = serializers.ChoiceField(choices=["scored", "failed", "missing"])
    rank = serializers.FloatField(help_text="1 = best on the task; ties share the average")
    normalized = serializers.FloatField()
    win = serializers.BooleanField()
    low = serializers.FloatField(allow_null=True)
    high = serializers.FloatField(allow_null=True)
    normalized_low = serializers.FloatField(allow_null=True)
    normalized_high = serializers.FloatField(allow_null=True)
    submission_id = serializers.IntegerField(allow_null=True, help_text="The counted submission")
    pending = serializers.IntegerField(help_text="Newer submissions still in the queue")
    stale = serializers.BooleanField(
        help_text="Shown from its scores while a worker computes it anew (no interval yet)"
    )

    class Meta:
        list_serializer_class = MatrixCellsOutput


class MatrixRowOutput(serializers.Serializer):
    method = serializers.CharField()
    method_id = serializers.IntegerField()
    components = ComponentsField()
    cells = MatrixCellOutput(many=True)
    mean_rank = serializers.FloatField()
    mean_normalized = serializers.FloatField()
    wins = serializers.IntegerField()
    complete = serializers.BooleanField(help_text="No cell is missing (a failure is a result)")
    imputed = serializers.IntegerField(help_text="Cells counted as the constant predictor's")


class SuiteFriedmanOutput(serializers.Serializer):
    tasks = serializers.IntegerField()
    methods = serializers.IntegerField()
    mean_ranks = serializers.ListField(child=serializers.FloatField(), help_text="Rows' order")
    chi2 = serializers.FloatField()
    chi2_p = serializers.FloatField()
    f = serializers.FloatField(
        allow_null=True, help_text="Iman-Davenport; null: infinite (every task ranks alike)"
    )
    f_p = serializers.FloatField()
    df1 = serializers.IntegerField()
    df2 = serializers.IntegerField()


class SuiteStatisticsOutput(serializers.Serializer):
    friedman = SuiteFriedmanOutput()
    alpha = serializers.FloatField()
    cd = serializers.FloatField(help_text="Nemenyi's critical difference of mean ranks")
    groups = serializers.ListField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Methods not significantly different, best first",
    )
    sentence = serializers.CharField()


class PivotGroupOutput(serializers.Serializer):
    value = serializers.CharField(allow_null=True, help_text="null: methods without the tag")
    methods = serializers.ListField(child=serializers.CharField())
    mean_rank = serializers.FloatField()
    mean_normalized = serializers.FloatField()
    wins = serializers.IntegerField()
    best = serializers.CharField()


class PivotOutput(serializers.Serializer):
    tag = serializers.CharField()
    groups = PivotGroupOutput(many=True)


class WilcoxonPairOutput(serializers.Serializer):
    a = serializers.CharField()
    b = serializers.CharField()
    statistic = serializers.FloatField()
    p_value = serializers.FloatField()
    p_holm = serializers.FloatField()
    significant = serializers.BooleanField()
    a_better = serializers.BooleanField(allow_null=True)


class MatrixOutput(serializers.Serializer):
    suite = serializers.CharField()
    tasks = MatrixTaskOutput(many=True, help_text="The aggregated tasks, the cells' order")
    waiting = serializers.ListField(
        child=serializers.CharField(), help_text="Tasks whose constant predictor is not scored yet"
    )
    rows = MatrixRowOutput(many=True, help_text="Best first")
    statistics = SuiteStatisticsOutput(allow_null=True, help_text="null below 2 methods x 2 tasks")
    pivot = PivotOutput(allow_null=True, help_text="With ?pivot=<tag>")
    wilcoxon = WilcoxonPairOutput(many=True, allow_null=True, help_text="With ?tests=wilcoxon")
    cd_diagram_url = serializers.URLField(allow_null=True)


# --- The organizer's endpoints (suites/api_organize.py) ----------------------------------


class SuiteUpdateInput(serializers.Serializer):
    """Only the fields named change (PATCH)."""

    title = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(max_length=100_000, required=False, allow_blank=True)
    rules = serializers.CharField(max_length=100_000, required=False, allow_blank=True)
    visibility = serializers.ChoiceField(choices=Competition.Visibility.choices, required=False)


class SuiteTaskInput(serializers.Serializer):
    competition = serializers.SlugField(help_text="The slug of a competition you organize")
    key = serializers.SlugField(
        max_length=80,
        required=False,
        allow_blank=True,
        help_text="The matrix's column name; by default the competition's slug",
    )


class SuiteTaskMoveInput(serializers.Serializer):
    direction = serializers.ChoiceField(
        choices=["up", "down"], help_text="Swap with the task before (up) or after (down)"
    )


class SuiteTaskOrganizerOutput(serializers.Serializer):
    key = serializers.CharField()
    position = serializers.IntegerField(help_text="From 0, the matrix's column order")
    competition = serializers.CharField(help_text="The slug of the task's competition")
    owned = serializers.BooleanField(help_text="The suite made the competition")
    runs = serializers.IntegerField(help_text="The methods' runs on the task")
    state = serializers.ChoiceField(
        choices=STATES, help_text="The constant predictor: the column shows once scored"
    )
    state_reason = serializers.CharField(help_text="Why it failed, when it did")
    competition_url = serializers.URLField()
    organize_url = serializers.URLField(help_text="The competition's organizer pages")


def task_organizer_info(request: Request, task: SuiteTask) -> dict:
    slug = task.competition.slug
    return {
        "key": task.key,
        "position": task.position,
        "competition": slug,
        "owned": task.owned,
        "runs": task.run_count,  # type: ignore[attr-defined]  # selectors_console.console_tasks
        "state": task.state,  # type: ignore[attr-defined]
        "state_reason": task.state_reason,  # type: ignore[attr-defined]
        "competition_url": reverse("api:competition-detail", args=[slug], request=request),
        "organize_url": reverse("organize", args=[slug], request=request),
    }


class MatrixRefreshOutput(serializers.Serializer):
    detail = serializers.CharField()
    matrix_url = serializers.URLField()
