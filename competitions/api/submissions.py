"""Submission endpoints: upload, list my team's, detail, download, select."""

import math

from django.http import HttpResponseBase
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from competitions import selectors
from competitions.api.pagination import page_links, page_params
from competitions.api.renderers import DownloadNegotiation
from competitions.downloads import stored_download
from competitions.errors import ApplicationError, NotJoined, PhaseClosed
from competitions.models import Attempt, Score, Submission
from competitions.permissions import (
    NotFound,
    access_competition,
    access_submission,
    membership_for,
    signed_in,
)
from competitions.services.submissions import (
    current_phase,
    submission_create,
    submission_set_selected,
)
from competitions.services.uploads import submission_create_from_upload
from competitions.throttles import SUBMISSIONS, ScopeThrottle
from competitions.waiting import FINISHED, TERMINAL, WAIT_MAX_S, submission_wait

IN_PROCESS_NOTE = "scored in-process (no sandbox)"


def _scorer_data(attempt: Attempt | None) -> dict | None:
    if attempt is None or not attempt.scorer_name:
        return None
    in_process = attempt.scorer_name == "in-process"
    return {
        "name": attempt.scorer_name,
        "image": attempt.scorer_image or None,
        "sandboxed": not in_process,
        "note": IN_PROCESS_NOTE if in_process else None,
    }


class ScorerInfoOutput(serializers.Serializer):
    name = serializers.CharField()
    image = serializers.CharField(allow_null=True)
    sandboxed = serializers.BooleanField()
    note = serializers.CharField(allow_null=True)


class SandboxRunOutput(serializers.Serializer):
    stage = serializers.CharField()
    attempt = serializers.IntegerField()
    image = serializers.CharField()
    image_digest = serializers.CharField()
    limits = serializers.DictField()
    exit_code = serializers.IntegerField(allow_null=True)
    timed_out = serializers.BooleanField()
    oom_killed = serializers.BooleanField()
    duration_s = serializers.FloatField(allow_null=True)
    peak_memory_bytes = serializers.IntegerField(allow_null=True)
    failure_reason = serializers.CharField(allow_null=True)
    log_visible = serializers.BooleanField()
    log = serializers.CharField(allow_null=True)
    log_truncated = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class SubmissionOutput(serializers.Serializer):
    """One submission as its team and the organizers see it (submission_data builds it)."""

    id = serializers.IntegerField()
    url = serializers.URLField()
    competition = serializers.CharField()
    team = serializers.CharField()
    submitter = serializers.CharField()
    kind = serializers.CharField()
    file_name = serializers.CharField()
    sha256 = serializers.CharField()
    size = serializers.IntegerField()
    method_name = serializers.CharField()
    description = serializers.CharField()
    paper_url = serializers.CharField()
    code_url = serializers.CharField()
    hardware_declared = serializers.CharField()
    status = serializers.CharField(help_text="queued, running, scored, invalid or error")
    failure = serializers.CharField(allow_null=True)
    error_message = serializers.CharField()
    problems = serializers.ListField(
        child=serializers.DictField(), help_text="The first problems found in the file"
    )
    total_problems = serializers.IntegerField()
    scores = serializers.DictField(
        child=serializers.DictField(child=serializers.FloatField(allow_null=True)),
        help_text="Per split (public, private when visible): metric -> value",
    )
    is_late = serializers.BooleanField()
    is_disqualified = serializers.BooleanField()
    is_selected = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    duration_s = serializers.FloatField(allow_null=True)
    task_version = serializers.IntegerField(allow_null=True)
    scorer = ScorerInfoOutput(allow_null=True)
    runs = SandboxRunOutput(many=True)
    container_image_digest = serializers.CharField(allow_null=True)
    has_predictions = serializers.BooleanField()


class SubmissionPageOutput(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = SubmissionOutput(many=True)


def submission_data(
    request: Request,
    submission: Submission,
    scores: dict,
    runs: list | None = None,
    *,
    new: bool = False,
) -> dict:
    # Who scored it and when: its latest attempt (selectors.with_attempts prefetches them).
    # A `new` submission has none yet: no query after its commit, where a lost database
    # connection would turn the answer for a stored submission into a 503.
    attempt = None if new else submission.latest_attempt
    data = {
        "id": submission.pk,
        "url": reverse("api:submission-detail", args=[submission.pk], request=request),
        "competition": submission.competition.slug,
        "team": submission.team.name,
        "submitter": submission.submitter.get_username(),
        "kind": submission.kind,
        "file_name": submission.original_name,
        "sha256": submission.sha256,
        "size": submission.size,
        "method_name": submission.method_name,
        "description": submission.description,
        "paper_url": submission.paper_url,
        "code_url": submission.code_url,
        "hardware_declared": submission.hardware_declared,
        "status": submission.status,
        "failure": submission.failure or None,
        "error_message": submission.error_message,
        "problems": submission.problems,
        "total_problems": submission.total_problems,
        "scores": scores,
        "is_late": submission.is_late,
        "is_disqualified": submission.is_disqualified,
        "is_selected": submission.is_selected,
        "created_at": submission.created_at,
        "started_at": attempt.started_at if attempt else None,
        "finished_at": attempt.finished_at if attempt else None,
        "duration_s": attempt.duration_s if attempt else None,
        "task_version": submission.task_version,
        "scorer": _scorer_data(attempt),
        # Sandbox runs, their logs filtered by selectors.sandbox_runs_for_user.
        "runs": runs or [],
        # Container submissions: the image that ran, and whether its predictions can be
        # downloaded (GET .../file/?part=predictions).
        "container_image_digest": submission.container_image_digest or None,
        "has_predictions": bool(submission.predictions),
    }
    return dict(SubmissionOutput(data).data)


class SubmissionCreateInput(serializers.Serializer):
    file = serializers.FileField(
        allow_empty_file=True,
        required=False,
        help_text="The predictions; on a container phase, the `docker save` archive (docs/containers.md)",
    )
    upload = serializers.CharField(
        required=False,
        help_text="Instead of `file`: a complete resumable upload of yours, its id or URL "
        "(docs/uploads.md)",
    )
    method_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    description = serializers.CharField(max_length=10_000, required=False, allow_blank=True)
    paper_url = serializers.URLField(required=False, allow_blank=True)
    code_url = serializers.URLField(required=False, allow_blank=True)
    hardware_declared = serializers.CharField(
        max_length=300,
        required=False,
        allow_blank=True,
        help_text="The hardware the method was trained on, as you declare it",
    )

    def validate(self, attrs: dict) -> dict:
        if ("file" in attrs) == ("upload" in attrs):
            raise serializers.ValidationError(
                {"file": "Send the file, or instead `upload`: a complete upload of yours."}
            )
        if "upload" in attrs:
            attrs["upload"] = upload_id_from(attrs["upload"])
        return attrs


def upload_id_from(value: str) -> str:
    """An upload's id, given as itself or as its URL (the tus Location)."""
    return value.rstrip("/").rsplit("/", 1)[-1]


class SubmissionListCreateApi(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    throttle_scope = SUBMISSIONS  # shared with the submit page (competitions/throttles.py)

    def get_throttles(self):
        return [ScopeThrottle()] if self.request.method == "POST" else []

    @extend_schema(
        parameters=[OpenApiParameter("page", int), OpenApiParameter("page_size", int)],
        responses=SubmissionPageOutput,
    )
    def get(self, request: Request, slug: str) -> Response:
        """Newest first, a page at a time (`next` is null on the last page)."""
        competition = access_competition(request.user, slug)
        page, page_size = page_params(request, default_size=500, max_size=500)
        qs = selectors.submission_list_for_user(competition=competition, user=request.user)
        qs = qs.order_by("-created_at", "-pk")  # a total order, so pages neither skip nor repeat
        count = qs.count()
        offset = (page - 1) * page_size
        submissions = list(selectors.with_attempts(qs)[offset : offset + page_size])
        splits = ["public", "private"]
        if not selectors.private_split_visible(request.user, competition):
            splits = ["public"]
        scores: dict[int, dict] = {}
        for sub_id, version, split, metric, value in Score.objects.filter(
            submission__in=submissions, split__in=splits
        ).values_list("submission_id", "task_version", "split", "metric", "value"):
            scores.setdefault(sub_id, {}).setdefault((version, split), {})[metric] = value
        runs = selectors.sandbox_runs_for_user(
            competition=competition, submission_ids=[s.pk for s in submissions], user=request.user
        )
        results = []
        for s in submissions:
            s.competition = competition
            mine = scores.get(s.pk, {})
            current = {split: m for (v, split), m in mine.items() if v == s.task_version}
            current = selectors.ladder_masked(competition=competition, submission=s, scores=current)
            results.append(submission_data(request, s, current, runs.get(s.pk)))
        links = page_links(request, page=page, page_size=page_size, count=count)
        return Response(SubmissionPageOutput({"count": count, **links, "results": results}).data)

    @extend_schema(request=SubmissionCreateInput, responses={202: SubmissionOutput})
    def post(self, request: Request, slug: str) -> Response:
        competition = access_competition(request.user, slug)
        data = SubmissionCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        if "upload" in fields:
            submission = submission_create_from_upload(
                competition=competition,
                user=signed_in(request.user),
                upload_id=fields.pop("upload"),
                **fields,
            )
        else:
            submission = submission_create(
                competition=competition,
                user=signed_in(request.user),
                uploaded_file=fields.pop("file"),
                **fields,
            )
        body = submission_data(request, submission, {}, new=True)
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})


def wait_seconds(request: Request) -> float | None:
    """The `wait` parameter, capped (None: absent). Raises ApplicationError if malformed."""
    raw = request.query_params.get("wait")
    if raw is None or raw == "":
        return None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds < math.inf:
        raise ApplicationError("wait is a number of seconds, from 0 to 60.")
    return min(seconds, WAIT_MAX_S)


class SubmissionDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "wait",
                float,
                description="Long-poll: answer once the status is scored, failed or "
                "cancelled, or after this many seconds (at most 60). The Heldout-Wait header "
                "says finished, timeout or busy (no wait: the server's waits are all taken)",
            )
        ],
        responses=SubmissionOutput,
    )
    def get(self, request: Request, submission_id: int) -> Response:
        submission = access_submission(request.user, submission_id)
        seconds = wait_seconds(request)
        waited = None
        if seconds is not None and submission.status not in TERMINAL:
            waited = submission_wait(submission_id=submission.pk, seconds=seconds)
            submission = access_submission(request.user, submission_id)
        scores = selectors.submission_scores(submission=submission, user=request.user)
        runs = selectors.sandbox_runs_for_user(
            competition=submission.competition, submission_ids=[submission.pk], user=request.user
        )
        body = submission_data(request, submission, scores, runs.get(submission.pk))
        headers = {"Heldout-Wait": waited if waited else FINISHED} if seconds is not None else None
        return Response(body, headers=headers)


class SubmissionFileApi(APIView):
    permission_classes = [IsAuthenticated]
    content_negotiation_class = DownloadNegotiation

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "part",
                enum=["upload", "predictions"],
                description="predictions: what a container submission's inference wrote",
            )
        ],
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
    )
    def get(self, request: Request, submission_id: int) -> HttpResponseBase:
        submission = access_submission(request.user, submission_id)
        if request.query_params.get("part") == "predictions":
            if not submission.predictions:
                raise NotFound("This submission has no predictions from a container.")
            name = (submission.predictions.name or "predictions.csv").rsplit("/", 1)[-1]
            return stored_download(request, submission.predictions, filename=name)
        return stored_download(
            request,
            submission.file,
            filename=submission.original_name,
            sha256=submission.sha256,
        )


class SubmissionSelectApi(APIView):
    permission_classes = [IsAuthenticated]

    class SubmissionSelectInput(serializers.Serializer):
        selected = serializers.BooleanField()

    class SubmissionSelectOutput(serializers.Serializer):
        id = serializers.IntegerField()
        is_selected = serializers.BooleanField()

    @extend_schema(request=SubmissionSelectInput, responses=SubmissionSelectOutput)
    def post(self, request: Request, submission_id: int) -> Response:
        submission = access_submission(request.user, submission_id, team_only=True)
        data = self.SubmissionSelectInput(data=request.data)
        data.is_valid(raise_exception=True)
        submission = submission_set_selected(
            submission=submission, selected=data.validated_data["selected"]
        )
        return Response(self.SubmissionSelectOutput(submission).data)


class QuotaCountOutput(serializers.Serializer):
    used = serializers.IntegerField()
    limit = serializers.IntegerField(allow_null=True, help_text="null: no limit")


class DailyQuotaOutput(QuotaCountOutput):
    resets_at = serializers.DateTimeField(help_text="The next UTC midnight")


class QuotaOutput(serializers.Serializer):
    phase = serializers.CharField(help_text="The phase taking submissions now")
    is_late = serializers.BooleanField(help_text="The phase has ended; late entries are unranked")
    remaining = serializers.IntegerField(help_text="Submissions the team may still make now")
    daily = DailyQuotaOutput(help_text="Submissions today (UTC), not counting invalid files")
    total = QuotaCountOutput(help_text="Submissions in the phase, not counting invalid files")
    invalid_today = QuotaCountOutput(help_text="Files that failed validation today (UTC)")


class QuotaApi(APIView):
    """The requesting participant's team's use of the current phase's limits: the numbers
    the submission rule checks (selectors.team_quota)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=QuotaOutput)
    def get(self, request: Request, slug: str) -> Response:
        competition = access_competition(request.user, slug)
        membership = membership_for(request.user, competition)
        if membership is None:
            raise NotJoined("Join the competition to have a submission quota.")
        now = timezone.now()
        found = current_phase(competition, now)
        if found is None:
            raise PhaseClosed("No phase of this competition is accepting submissions now.")
        phase, is_late = found
        quota = selectors.team_quota(team=membership.team_id, phase=phase, now=now)
        data = {
            "phase": phase.name,
            "is_late": is_late,
            "remaining": quota.remaining,
            "daily": {
                "used": quota.daily_used,
                "limit": quota.daily_limit,
                "resets_at": quota.resets_at,
            },
            "total": {"used": quota.total_used, "limit": quota.total_limit},
            "invalid_today": {"used": quota.invalid_used, "limit": quota.invalid_limit},
        }
        return Response(QuotaOutput(data).data)
