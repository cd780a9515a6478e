"""Competition endpoints: list, detail, join, public files and the leaderboard."""

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

from django.http import HttpResponseBase
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from competitions import boardcache, selectors
from competitions.api.pagination import PAGE_PARAMETERS, page_links, page_of, page_params
from competitions.api.renderers import CSVRenderer, DownloadNegotiation
from competitions.downloads import stored_download
from competitions.models import Competition
from competitions.permissions import (
    access_competition,
    access_ground_truth,
    access_task_file,
    membership_for,
    signed_in,
    task_files_visible,
)
from competitions.rules import TIE_RULE_CHOICES
from competitions.selectors_boards import board_columns_of, board_phase_key, with_board_phase
from competitions.services.teams import competition_join


class CompetitionOutput(serializers.Serializer):
    slug = serializers.CharField()
    title = serializers.CharField()
    visibility = serializers.CharField()
    start_at = serializers.DateTimeField(allow_null=True)
    end_at = serializers.DateTimeField(allow_null=True)
    is_finalized = serializers.BooleanField()
    url = serializers.SerializerMethodField()

    def get_url(self, obj) -> str:
        return reverse("api:competition-detail", args=[obj.slug], request=self.context["request"])


class CompetitionPageOutput(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = CompetitionOutput(many=True)


class CompetitionListApi(APIView):
    @extend_schema(
        operation_id="competitions_list",
        parameters=PAGE_PARAMETERS,
        responses=CompetitionPageOutput,
    )
    def get(self, request: Request) -> Response:
        """Newest first, a page at a time (100 by default, at most 1000)."""
        qs = selectors.competition_list_for_user(request.user)
        # A total order, so pages neither skip nor repeat.
        rows, envelope = page_of(
            request, qs.order_by("-created_at", "-pk"), default_size=100, max_size=1000
        )
        body = envelope | {"results": rows}
        return Response(CompetitionPageOutput(body, context={"request": request}).data)


class TeamRefOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class ReopenedOutput(serializers.Serializer):
    at = serializers.DateTimeField()
    reason = serializers.CharField()


class CompetitionDetailOutput(CompetitionOutput):
    class TaskOutput(serializers.Serializer):
        type = serializers.CharField()
        id_column = serializers.CharField()
        target_columns = serializers.ListField(child=serializers.CharField())
        classes = serializers.ListField(child=serializers.CharField())
        primary_metric = serializers.CharField()
        secondary_metrics = serializers.ListField(child=serializers.CharField())
        version = serializers.IntegerField()

    class FileOutput(serializers.Serializer):
        name = serializers.CharField()
        kind = serializers.CharField()
        description = serializers.CharField()
        size = serializers.IntegerField()
        sha256 = serializers.CharField()
        url = serializers.URLField()
        released_with = serializers.CharField(
            allow_null=True, help_text="The phase whose start releases the file (null: public)"
        )
        released = serializers.BooleanField(
            help_text="false only in an organizer's view, before that phase starts: the "
            "file does not exist for anyone else yet"
        )

    class PhaseOutput(serializers.Serializer):
        name = serializers.CharField()
        start_at = serializers.DateTimeField()
        end_at = serializers.DateTimeField(allow_null=True)
        daily_limit = serializers.IntegerField()
        total_limit = serializers.IntegerField(allow_null=True)
        late_submissions_scored = serializers.BooleanField()
        board_metrics = serializers.ListField(
            child=serializers.CharField(),
            help_text="The leaderboard's columns while this phase is the board's (empty: all)",
        )

    url = serializers.URLField()  # type: ignore[assignment]  # made by CompetitionOutput
    description = serializers.CharField()
    rules = serializers.CharField()
    selection_limit = serializers.IntegerField()
    tie_rule = serializers.ChoiceField(
        choices=TIE_RULE_CHOICES, help_text="How ties are resolved for prizes"
    )
    tie_break_metric = serializers.CharField(
        allow_null=True, help_text="The metric that decides ties, when tie_rule is metric"
    )
    tie_rule_text = serializers.CharField(help_text="The rules page's sentence on ties")
    public_board = serializers.ChoiceField(
        choices=["plain", "ladder"],
        help_text="ladder: a new public score is shown only when it beats the team's shown "
        "score by more than the noise (docs/leaderboard.md)",
    )
    finalized_at = serializers.DateTimeField(allow_null=True)
    reopened = ReopenedOutput(allow_null=True, help_text="The latest reopen, if any")
    task = TaskOutput()
    files = FileOutput(many=True)
    phases = PhaseOutput(many=True)
    my_team = TeamRefOutput(allow_null=True, help_text="null: not a member")
    leaderboard_url = serializers.URLField()
    submissions_url = serializers.URLField()
    quota_url = serializers.URLField()


def _file_info(request: Request, slug: str, f, now) -> dict:
    return {
        "name": f.name,
        "kind": f.kind,
        "description": f.description,
        "size": f.size,
        "sha256": f.sha256,
        "url": reverse("api:competition-file", args=[slug, f.name], request=request),
        "released_with": f.released_with.name if f.released_with else None,
        "released": f.is_released_at(now),
    }


class CompetitionDetailApi(APIView):
    @extend_schema(responses=CompetitionDetailOutput)
    def get(self, request: Request, slug: str) -> Response:
        competition = access_competition(request.user, slug)
        task = competition.task
        membership = membership_for(request.user, competition)
        now = timezone.now()
        data = {
            **CompetitionOutput(competition, context={"request": request}).data,
            "description": competition.description,
            "rules": competition.rules,
            "selection_limit": competition.selection_limit,
            "tie_rule": competition.tie_rule,
            "tie_break_metric": competition.tie_break_metric or None,
            "tie_rule_text": selectors.tie_rule_text(competition),
            "public_board": competition.public_board,
            "finalized_at": competition.finalized_at,
            "reopened": _reopened(competition),
            "task": {
                "type": task.task_type,
                "id_column": task.id_column,
                "target_columns": task.target_columns,
                "classes": task.classes,
                "primary_metric": task.primary_metric,
                "secondary_metrics": task.secondary_metrics,
                "version": task.version,
            },
            "files": [
                _file_info(request, slug, f, now)
                for f in task_files_visible(request.user, competition)
            ],
            "phases": [
                {
                    "name": p.name,
                    "start_at": p.start_at,
                    "end_at": p.end_at,
                    "daily_limit": p.daily_limit,
                    "total_limit": p.total_limit,
                    "late_submissions_scored": p.late_submissions_scored,
                    "board_metrics": p.board_metrics,
                }
                for p in competition.phases.all()
            ],
            "my_team": (
                {"id": membership.team_id, "name": membership.team.name} if membership else None
            ),
            "leaderboard_url": reverse("api:leaderboard", args=[slug], request=request),
            "submissions_url": reverse("api:submission-list", args=[slug], request=request),
            "quota_url": reverse("api:quota", args=[slug], request=request),
        }
        return Response(CompetitionDetailOutput(data, context={"request": request}).data)


class JoinApi(APIView):
    permission_classes = [IsAuthenticated]

    class JoinInput(serializers.Serializer):
        accept_rules = serializers.BooleanField()

    class JoinOutput(serializers.Serializer):
        team = TeamRefOutput()

    @extend_schema(request=JoinInput, responses=JoinOutput)
    def post(self, request: Request, slug: str) -> Response:
        competition = access_competition(request.user, slug)
        data = self.JoinInput(data=request.data)
        data.is_valid(raise_exception=True)
        membership = competition_join(
            competition=competition,
            user=signed_in(request.user),
            accept_rules=data.validated_data["accept_rules"],
        )
        team = {"id": membership.team_id, "name": membership.team.name}
        return Response(self.JoinOutput({"team": team}).data)


class FileDownloadApi(APIView):
    content_negotiation_class = DownloadNegotiation

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request: Request, slug: str, name: str) -> HttpResponseBase:
        task_file = access_task_file(request.user, slug, name)
        return stored_download(
            request, task_file.file, filename=task_file.name, sha256=task_file.sha256
        )


class GroundTruthDownloadApi(APIView):
    """Organizers only; for everyone else this URL does not exist."""

    content_negotiation_class = DownloadNegotiation

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request: Request, slug: str) -> HttpResponseBase:
        competition = access_ground_truth(request.user, slug)
        task = competition.task
        return stored_download(
            request,
            task.ground_truth,
            filename="ground_truth.csv",
            sha256=task.ground_truth_sha256,
        )


class LeaderboardRowOutput(serializers.Serializer):
    rank = serializers.IntegerField()
    team = serializers.CharField()
    team_id = serializers.IntegerField()
    submission_id = serializers.IntegerField()
    score = serializers.FloatField(help_text="The primary metric")
    scores = serializers.DictField(child=serializers.FloatField(allow_null=True))
    submitted_at = serializers.DateTimeField()
    entries = serializers.IntegerField()
    last_submission_at = serializers.DateTimeField()
    replication = serializers.CharField(
        allow_null=True, help_text="The latest finished replication's outcome"
    )
    entry_url = serializers.URLField(help_text="The entry's claim page")
    ci_low = serializers.FloatField(
        allow_null=True, help_text="Lower end of the score's 95 % bootstrap interval"
    )
    ci_high = serializers.FloatField(allow_null=True, help_text="Upper end of that interval")
    rank_best = serializers.IntegerField(
        allow_null=True, help_text="Best plausible rank: 1 + the entries surely better"
    )
    rank_worst = serializers.IntegerField(
        allow_null=True, help_text="Worst plausible rank: the entries not surely worse"
    )
    tied_with_leader = serializers.BooleanField(
        help_text="Statistically indistinguishable from #1 (its best plausible rank is 1)"
    )
    public_rank = serializers.IntegerField(
        allow_null=True, help_text="Private board after finalize: the team's public rank"
    )
    rank_change = serializers.IntegerField(
        allow_null=True, help_text="Places gained since the public board (negative: lost)"
    )
    beyond_sampling = serializers.BooleanField(
        allow_null=True,
        help_text="The change is beyond row sampling: the plausible ranks on the two boards "
        "do not overlap (null: unknown)",
    )
    normalized_score = serializers.FloatField(
        allow_null=True,
        help_text="0 = the constant predictor's score, 1 = a perfect score (null: no constant "
        "predictor scored yet)",
    )


class ReferenceOutput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["constant", "model"])
    name = serializers.CharField(help_text='What the board calls it: "Constant predictor (…)"')
    score = serializers.FloatField(help_text="The primary metric")
    scores = serializers.DictField(child=serializers.FloatField(allow_null=True))
    ci_low = serializers.FloatField(allow_null=True)
    ci_high = serializers.FloatField(allow_null=True)
    normalized_score = serializers.FloatField(allow_null=True)
    position = serializers.IntegerField(
        help_text="How many teams are listed above it (those scoring at least as well)"
    )
    reason = serializers.CharField(help_text="What it learnt from")


class ReferenceMissingOutput(serializers.Serializer):
    name = serializers.CharField()
    reason = serializers.CharField(help_text="Why the task's files allow no such reference")

    def to_representation(self, instance: dict) -> dict:
        # Serializer's own loop, minus its per-field getter chain: the rows are dicts with
        # every field, a page has up to 1,000 of them, and it was most of a board's render.
        # Same values: a None stays None, anything else goes through its field.
        return {
            name: None if (value := instance[name]) is None else represent(value)
            for name, represent in self._representers
        }

    @functools.cached_property
    def _representers(self) -> list[tuple[str, Callable[[Any], Any]]]:
        fields = self.fields.items()
        return [(name, f.to_representation) for name, f in fields if not f.write_only]


class BootstrapOutput(serializers.Serializer):
    seed = serializers.IntegerField()
    resamples = serializers.IntegerField()
    level = serializers.FloatField()


class LeaderboardOutput(serializers.Serializer):
    task_version = serializers.IntegerField(help_text="The task version whose scores are ranked")
    finalized_at = serializers.DateTimeField(allow_null=True)
    reopened = ReopenedOutput(allow_null=True)
    split = serializers.ChoiceField(choices=["public", "private"])
    metric = serializers.CharField()
    higher_is_better = serializers.BooleanField()
    secondary_metrics = serializers.ListField(child=serializers.CharField())
    count = serializers.IntegerField()
    page = serializers.IntegerField()
    page_size = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    bootstrap = BootstrapOutput(
        allow_null=True,
        help_text="How the intervals were drawn (paired bootstrap over the split's rows)",
    )
    results = LeaderboardRowOutput(many=True)
    references = ReferenceOutput(
        many=True,
        help_text="The platform's reference rows (never ranked, not teams), best first",
    )
    references_missing = ReferenceMissingOutput(many=True)


class LeaderboardApi(APIView):
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer, CSVRenderer]
    throttle_classes: list = []

    @extend_schema(
        parameters=[
            OpenApiParameter("split", str, enum=["public", "private"]),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ]
    )
    @extend_schema(
        responses={
            (200, "application/json"): LeaderboardOutput,
            (200, "text/csv"): OpenApiTypes.STR,
        }
    )
    def get(self, request: Request, slug: str) -> HttpResponseBase:
        competitions = boardcache.with_board_token(Competition.objects.all())
        competitions = with_board_phase(competitions, timezone.now())
        competition = access_competition(request.user, slug, competitions=competitions)
        split = request.query_params.get("split", "public")
        if split not in ("public", "private"):
            return Response({"detail": "split must be public or private.", "code": "invalid"}, 400)
        if split == "private" and not selectors.private_split_visible(request.user, competition):
            return Response(
                {
                    "detail": "The private leaderboard appears when the competition is finalized.",
                    "code": "not_finalized",
                },
                403,
            )
        fmt = request.accepted_renderer.format
        if fmt not in ("json", "csv"):  # the browsable API shows who is signed in
            return _board(request, competition, split)
        # Everyone who may see this split sees the same answer; before finalize only the
        # organizers may see the private one.
        public = split == "public" or competition.is_finalized
        key = boardcache.BoardKey(
            token=boardcache.board_token_of(competition),
            competition=competition,
            viewer="public" if public else "organizer",
            fmt=fmt,
            # The JSON's links repeat the request's URL, every parameter included.
            params=(
                split if fmt == "csv" else request.build_absolute_uri(),
                board_phase_key(competition),
            ),
            shared=public and competition.visibility == Competition.Visibility.PUBLIC,
            until=getattr(competition, "board_phase_until", None),
        )
        return boardcache.board_response(request, key, lambda: _board(request, competition, split))


_ID_MARK = "987654321"


def _board(request: Request, competition: Competition, split: str) -> Response:
    as_csv = request.accepted_renderer.format == "csv"
    page, page_size = page_params(request, default_size=100, max_size=1000)
    board = selectors.leaderboard_page(
        competition=competition,
        split=split,
        offset=0 if as_csv else (page - 1) * page_size,
        limit=None if as_csv else page_size,
        columns=board_columns_of(competition),
    )
    if as_csv:
        return Response(_csv(board))
    # The task version whose scores this board ranks (GET .../versions/ describes it).
    body = {
        "task_version": competition.task.version,
        # Final: the board no longer changes. A reopen (docs/lifecycle.md) says when and why.
        "finalized_at": competition.finalized_at,
        "reopened": _reopened(competition),
    } | _json(board, page, page_size)
    body |= page_links(request, page=page, page_size=page_size, count=board.count)
    # Each row's claim page (manifest, bundle): reversed once, a stand-in id replaced per row.
    head, tail = reverse("entry", args=[competition.slug, _ID_MARK], request=request).rsplit(
        _ID_MARK, 1
    )
    for row in body["results"]:
        row["entry_url"] = f"{head}{row['submission_id']}{tail}"
    return Response(LeaderboardOutput(body).data)


def _reopened(competition) -> dict | None:
    """The latest reopen of a finalized competition (docs/lifecycle.md), or None."""
    if competition.reopened_at is None:
        return None
    return {"at": competition.reopened_at, "reason": competition.reopen_reason}


def _json(board: selectors.LeaderboardPage, page: int, page_size: int) -> dict:
    return {
        "split": board.split,
        "metric": board.metric,
        "higher_is_better": board.higher_is_better,
        "secondary_metrics": board.secondary_metrics,
        "count": board.count,
        "page": page,
        "page_size": page_size,
        "bootstrap": dataclasses.asdict(board.bootstrap) if board.bootstrap else None,
        "results": [
            {
                "rank": r.rank,
                "team": r.team,
                "team_id": r.team_id,
                "submission_id": r.submission_id,
                "score": r.score,
                "scores": r.scores,
                "submitted_at": r.submitted_at,
                "entries": r.entries,
                "last_submission_at": r.last_submission_at,
                "replication": r.replication or None,
                "ci_low": r.ci_low,
                "ci_high": r.ci_high,
                "rank_best": r.rank_best,
                "rank_worst": r.rank_worst,
                "tied_with_leader": r.tied_with_leader,
                "public_rank": r.public_rank,
                "rank_change": r.rank_change,
                "beyond_sampling": r.beyond_sampling,
                "normalized_score": r.normalized_score,
            }
            for r in board.rows
        ],
        "references": [
            {
                "kind": r.kind,
                "name": r.label,
                "score": r.score,
                "scores": r.scores,
                "ci_low": r.ci_low,
                "ci_high": r.ci_high,
                "normalized_score": r.normalized_score,
                "position": r.position,
                "reason": r.reason,
            }
            for r in board.references
        ],
        "references_missing": [
            {"name": m.label, "reason": m.reason} for m in board.references_missing
        ],
    }


def _csv(board: selectors.LeaderboardPage) -> dict:
    columns = ["rank", "team", board.metric, *board.secondary_metrics]
    columns += ["submission_id", "submitted_at", "entries"]
    columns += ["ci_low", "ci_high", "rank_best", "rank_worst", "tied_with_leader"]
    shakeup = board.split == "private"  # filled once the competition is final
    if shakeup:
        columns += ["public_rank", "rank_change", "beyond_sampling"]
    columns += ["normalized_score", "reference"]
    rows = [
        _csv_reference(r, shakeup)
        if isinstance(r, selectors.ReferenceRow)
        else [
            r.rank,
            r.team,
            r.score,
            *r.secondary,
            r.submission_id,
            r.submitted_at.isoformat(),
            r.entries,
            r.ci_low,
            r.ci_high,
            r.rank_best,
            r.rank_worst,
            r.tied_with_leader,
            *([r.public_rank, r.rank_change, r.beyond_sampling] if shakeup else []),
            r.normalized_score,
            "",
        ]
        for r in board.with_references(board.rows, 0)
    ]
    return {"csv_columns": columns, "csv_rows": rows}


def _csv_reference(r: selectors.ReferenceRow, shakeup: bool) -> list:
    """A reference row: no rank, no submission, no plausible rank; its kind last."""
    no_entry = [None, None, None]  # submission_id, submitted_at, entries
    no_ranks = [None, None, None] + ([None, None, None] if shakeup else [])
    return [
        None, r.label, r.score, *r.secondary, *no_entry, r.ci_low, r.ci_high, *no_ranks,
        r.normalized_score, r.kind,
    ]  # fmt: skip
