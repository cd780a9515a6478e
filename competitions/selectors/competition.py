"""Reads of a competition itself: which competitions a user may list, whether the private
split shows to them (organizers, or anyone once finalized), and its tie rule as a sentence."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Q, QuerySet

from competitions.models import Competition
from competitions.permissions import is_organizer
from competitions.rules import tie_rule_sentence
from scoring.metrics import metric_get


def competition_list_for_user(user: User | AnonymousUser) -> QuerySet[Competition]:
    """Public competitions, plus unlisted and invite-only ones the user belongs to."""
    qs = Competition.objects.all()
    if user.is_authenticated and user.is_superuser:
        return qs
    visible = Q(visibility=Competition.Visibility.PUBLIC)
    if user.is_authenticated:
        visible |= Q(organizers=user) | Q(invited=user) | Q(membership__user=user)
    return qs.filter(visible).distinct().select_related("task")


def private_split_visible(user: User | AnonymousUser, competition: Competition) -> bool:
    return competition.is_finalized or is_organizer(user, competition)


def tie_rule_text(competition: Competition) -> str:
    """The rules page's sentence on ties for prizes (rules.tie_rule_sentence)."""
    metric = competition.tie_break_metric
    label = metric_get(metric).label if metric else ""
    return tie_rule_sentence(tie_rule=competition.tie_rule, metric_label=label)
