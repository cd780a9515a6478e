"""Reads of notifications. What the pages read is always the signed-in user's own."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet
from django.http import HttpRequest

from notifications.models import DEFAULTS, Kind, Notification, NotificationPreference


def notifications_unread_count(*, user: User | AnonymousUser) -> int:
    """The bell's number: one COUNT on a partial index (none for an anonymous visitor)."""
    if not user.is_authenticated:
        return 0
    return Notification.objects.filter(user=user, shown=True, read_at__isnull=True).count()


def notifications_unread_for_request(request: HttpRequest) -> int:
    """`notifications_unread_count` of the request's user, counted once per request (the
    header's bell and a kept page's key ask for it both)."""
    cached = getattr(request, "_notifications_unread", None)
    if cached is None:
        cached = notifications_unread_count(user=request.user)
        request._notifications_unread = cached  # type: ignore[attr-defined]
    return cached


def notifications_for(*, user: User) -> QuerySet[Notification]:
    """The user's notifications shown in the site, newest first."""
    return Notification.objects.filter(user=user, shown=True)


def preferences_for(*, user_ids: Iterable[int], kind: str) -> dict[int, tuple[bool, bool]]:
    """Each user's (in the site, by e-mail) choice for `kind`, DEFAULTS where unset."""
    ids = list(user_ids)
    chosen = {
        user_id: (in_site, email)
        for user_id, in_site, email in NotificationPreference.objects.filter(
            user_id__in=ids, kind=kind
        ).values_list("user_id", "in_site", "email")
    }
    return {user_id: chosen.get(user_id, DEFAULTS[kind]) for user_id in ids}


def preferences_table(*, user: User) -> list[tuple[str, str, bool, bool]]:
    """(kind, its label, in the site, by e-mail) for every kind, for the account page."""
    rows = {p.kind: (p.in_site, p.email) for p in NotificationPreference.objects.filter(user=user)}
    return [(kind, label, *rows.get(kind, DEFAULTS[kind])) for kind, label in Kind.choices]
