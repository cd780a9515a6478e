"""Who may see or do what on a suite: the one place the suite's pages and API ask.

As competitions/permissions.py, each access_* raises instead of returning a flag:
NotFound for what the user may not know exists (an invite-only suite, a method or task
not in it), Forbidden for what is visible but not theirs to do (organizer views, another
owner's method). A suite is visible as a competition is: public and unlisted suites to
anyone with the link (only public ones are listed), invite-only ones to their organizers,
the invited and the participants. A task's files, hidden labels and submissions are never
served by a suite's URL: its links lead to the task competition's own URLs, which keep
that competition's rules (the ground truth is for its organizers only).

The organizer's console (/s/<slug>/organize/..., and the API's writes on a suite) is for
the suite's organizers (and superusers): access_suite(..., organize=True). A task is added
from a competition the organizer organizes as well (access_competition_to_add): organizing
a suite gives no power over another organizer's competition.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Q, QuerySet

from competitions.models import Competition, Membership
from competitions.permissions import Forbidden, NotFound, access_competition
from suites.models import Method, Suite, SuiteTask


def is_suite_organizer(user: User | AnonymousUser, suite: Suite) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    return suite.organizers.filter(pk=user.pk).exists()


def is_suite_participant(user: User | AnonymousUser, suite: Suite) -> bool:
    """Whether the user joined one of the suite's tasks at least (suite_join joins them all)."""
    if not user.is_authenticated:
        return False
    return Membership.objects.filter(user=user, competition__suite_tasks__suite=suite).exists()


def can_view_suite(user: User | AnonymousUser, suite: Suite) -> bool:
    if suite.visibility != Competition.Visibility.INVITE_ONLY:
        return True
    if not user.is_authenticated:
        return False
    return (
        is_suite_organizer(user, suite)
        or suite.invited.filter(pk=user.pk).exists()
        or is_suite_participant(user, suite)
    )


def suites_listed_for(user: User | AnonymousUser) -> QuerySet[Suite]:
    """Public suites, plus the unlisted and invite-only ones the user organizes, was
    invited to or takes part in."""
    qs = Suite.objects.all()
    if user.is_authenticated and user.is_superuser:
        return qs
    visible = Q(visibility=Competition.Visibility.PUBLIC)
    if user.is_authenticated:
        participating = Suite.objects.filter(tasks__competition__membership__user=user)
        visible |= Q(organizers=user) | Q(invited=user) | Q(pk__in=participating.values("pk"))
    return qs.filter(visible).distinct()


def access_suite(user: User | AnonymousUser, slug: str, *, organize: bool = False) -> Suite:
    """The suite named `slug` if `user` may view it (and organize it, if asked)."""
    suite = Suite.objects.filter(slug=slug).first()
    if suite is None or not can_view_suite(user, suite):
        raise NotFound(f"No suite named {slug!r}.")
    if organize and not is_suite_organizer(user, suite):
        raise Forbidden("Only this suite's organizers can do that.")
    return suite


def access_suite_task(suite: Suite, key: str) -> SuiteTask:
    task = suite.tasks.select_related("competition__task").filter(key=key).first()
    if task is None:
        raise NotFound(f"The suite has no task {key!r}.")
    return task


def access_method(
    user: User | AnonymousUser, suite: Suite, method_id: int, *, own: bool = False
) -> Method:
    """A method of the suite (anyone who may see the suite sees its methods); with `own`,
    only its owner may act on it."""
    method = suite.methods.select_related("owner").filter(pk=method_id).first()
    if method is None:
        raise NotFound("The suite has no such method.")
    if own and (not user.is_authenticated or method.owner_id != user.pk):
        raise Forbidden("Only the method's owner submits to it.")
    return method


def access_competition_to_add(user: User | AnonymousUser, slug: str) -> Competition:
    """The competition named `slug`, to add to a suite: NotFound if the user may not know
    it exists, Forbidden unless they organize it."""
    try:
        return access_competition(user, slug, organize=True)
    except Forbidden:
        raise Forbidden("Add a competition you organize.") from None
