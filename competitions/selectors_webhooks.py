"""Reads of webhooks: each hook and its deliveries are its owner's alone."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from competitions.errors import NotJoined
from competitions.models import Competition, Webhook, WebhookDelivery
from competitions.permissions import NotFound, access_competition, is_organizer, membership_for


def webhook_list_for_user(*, user: User) -> QuerySet[Webhook]:
    return Webhook.objects.filter(owner=user).select_related("competition").order_by("-pk")


def access_webhook(user: User | AnonymousUser, webhook_id: int) -> Webhook:
    """The user's own hook; anyone else's is not found."""
    hook = Webhook.objects.select_related("competition").filter(pk=webhook_id).first()
    if hook is None or not user.is_authenticated or hook.owner_id != user.pk:
        raise NotFound("No such webhook.")
    return hook


def webhook_competition(user: User | AnonymousUser, slug: str) -> Competition:
    """The competition a hook of `user` may be limited to: one they take part in or organize."""
    competition = access_competition(user, slug)
    if is_organizer(user, competition):
        return competition
    if membership_for(user, competition) is not None:
        return competition
    raise NotJoined("Join or organize the competition to receive its events.")


def delivery_list(*, webhook: Webhook) -> QuerySet[WebhookDelivery]:
    return webhook.deliveries.order_by("-created_at", "-pk")
