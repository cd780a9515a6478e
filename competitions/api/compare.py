"""Pairwise comparison of two entries of a board (competitions/selectors_compare.py)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from competitions import selectors
from competitions.permissions import access_competition
from competitions.selectors_compare import (
    NotComparable,
    NotOnBoard,
    WithheldByLadder,
    board_leader,
    entries_compare,
)


class SideOutput(serializers.Serializer):
    submission_id = serializers.IntegerField()
    team = serializers.CharField()
    score = serializers.FloatField()
    rank_best = serializers.IntegerField(allow_null=True)
    rank_worst = serializers.IntegerField(allow_null=True)


class DifferenceOutput(serializers.Serializer):
    estimate = serializers.FloatField(help_text="A's score minus B's")
    low = serializers.FloatField(help_text="Paired bootstrap interval of the difference")
    high = serializers.FloatField()
    p_a_better = serializers.FloatField(help_text="Share of resamples where A beats B")


class TestOutput(serializers.Serializer):
    name = serializers.ChoiceField(choices=["mcnemar", "delong", "permutation"])
    title = serializers.CharField()
    statistic = serializers.FloatField()
    p_value = serializers.FloatField()


class ComparisonOutput(serializers.Serializer):
    split = serializers.ChoiceField(choices=["public", "private"])
    metric = serializers.CharField()
    higher_is_better = serializers.BooleanField()
    a = SideOutput()
    b = SideOutput()
    difference = DifferenceOutput()
    test = TestOutput()
    rows = serializers.IntegerField(help_text="Test rows of the split")
    seed = serializers.IntegerField()
    resamples = serializers.IntegerField()
    level = serializers.FloatField()


def _id(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


class CompareApi(APIView):
    """Compare entry `a` with entry `b` (default: the board's leader) on one split."""

    @extend_schema(
        parameters=[
            OpenApiParameter("split", str, enum=["public", "private"]),
            OpenApiParameter("a", int, required=True, description="A submission on the board"),
            OpenApiParameter("b", int, description="Another one (default: the leader's)"),
        ],
        responses={200: ComparisonOutput},
    )
    def get(self, request: Request, slug: str) -> Response:
        competition = access_competition(request.user, slug)
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
        a = _id(request.query_params.get("a"))
        b = _id(request.query_params.get("b")) or board_leader(competition=competition, split=split)
        if a is None or b is None:
            return Response({"detail": "a (and b) must be submission ids.", "code": "invalid"}, 400)
        try:
            found = entries_compare(
                competition=competition, split=split, a_submission_id=a, b_submission_id=b
            )
        except NotOnBoard:
            return Response(
                {"detail": "Both submissions must be on this leaderboard.", "code": "not_found"},
                404,
            )
        except NotComparable:
            return Response(
                {"detail": "These entries have no per-row values to compare.", "code": "conflict"},
                409,
            )
        except WithheldByLadder:
            return Response({"detail": WithheldByLadder.message, "code": "ladder"}, 403)
        body = {
            "split": found.split,
            "metric": found.metric,
            "higher_is_better": found.higher_is_better,
            "a": found.a.__dict__,
            "b": found.b.__dict__,
            "difference": found.difference.__dict__,
            "test": found.test.__dict__ | {"title": found.test_label},
            "rows": found.rows,
            "seed": found.seed,
            "resamples": found.resamples,
            "level": found.level,
        }
        return Response(ComparisonOutput(body).data)
