"""Webhooks: register, remove and ping a user's endpoints, and send one delivery.

A delivery is a POST of its stored JSON body, signed like Stripe's: the header
`Heldout-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed by the secret>`.
Each attempt is claimed with a conditional UPDATE (a redelivered task does nothing) and
answered 2xx or counted as failed; the task retries with exponential backoff until
HELDOUT_WEBHOOK_MAX_ATTEMPTS. Redirects are not followed and, unless
HELDOUT_WEBHOOKS_ALLOW_PRIVATE, an endpoint that resolves to a private, loopback or reserved
address is refused, when registered and again before each attempt, which connects to the
address it vetted (competitions.webhook_http).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import secrets
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from competitions.errors import ApplicationError
from competitions.models import Competition, Webhook, WebhookDelivery
from competitions.webhook_http import Refused, post, target_for

HOOKS_PER_USER = 20
EVENTS = set(Webhook.Event.values)
PING = "ping"
Status = WebhookDelivery.Status


def webhook_secret() -> str:
    return "whsec_" + secrets.token_hex(24)


def webhook_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """The Heldout-Signature header's value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def url_refusal(url: str) -> str | None:
    """Why a hook may not POST to `url` (None: it may). Resolves the host name."""
    try:
        target_for(url, allow_private=settings.HELDOUT_WEBHOOKS_ALLOW_PRIVATE)
    except Refused as exc:
        return str(exc)
    return None


def webhook_create(
    *, owner: User, url: str, events: list[str], competition: Competition | None = None
) -> tuple[Webhook, str]:
    """A new active hook and its secret (the only time the secret is given out)."""
    unknown = sorted(set(events) - EVENTS)
    if unknown or not events:
        raise ApplicationError(f"Events are one or more of: {', '.join(sorted(EVENTS))}.")
    refusal = url_refusal(url)
    if refusal:
        raise ApplicationError(refusal)
    with transaction.atomic(durable=True):
        # The owner's row serializes concurrent creations, so the limit holds.
        User.objects.select_for_update().filter(pk=owner.pk).first()
        if Webhook.objects.filter(owner=owner).count() >= HOOKS_PER_USER:
            raise ApplicationError(f"A user has at most {HOOKS_PER_USER} webhooks.")
        secret = webhook_secret()
        hook = Webhook(
            owner=owner,
            competition=competition,
            url=url,
            secret=secret,
            events=sorted(set(events)),
        )
        hook.full_clean()
        hook.save()
    return hook, secret


def webhook_update(*, webhook: Webhook, active: bool) -> Webhook:
    Webhook.objects.filter(pk=webhook.pk).update(active=active)
    webhook.active = active
    return webhook


def webhook_delete(*, webhook: Webhook) -> None:
    webhook.delete()  # its deliveries with it


def delivery_send(delivery_id: int) -> None:
    """Send a delivery's task to HELDOUT_WEBHOOK_QUEUE (its retries stay there), through
    the outbox (sent once the current transaction commits)."""
    from competitions.services.outbox import enqueue

    queue = settings.HELDOUT_WEBHOOK_QUEUE or settings.CELERY_TASK_DEFAULT_QUEUE
    enqueue("competitions.tasks.webhook_deliver_task", [delivery_id], queue=queue)


def deliveries_enqueue(delivery_ids: list[int]) -> None:
    """Send each delivery from a task, once the transaction that made it commits."""
    for delivery_id in delivery_ids:
        delivery_send(delivery_id)


def webhook_ping(*, webhook: Webhook) -> WebhookDelivery:
    """A test delivery ("ping") to the hook, whatever events it subscribes to."""
    now = timezone.now()
    event_id = uuid.uuid4().hex
    body = {"event": PING, "id": event_id, "created_at": now.isoformat(), "data": {}}
    with transaction.atomic(durable=True):
        delivery = WebhookDelivery.objects.create(
            webhook=webhook, event=PING, event_id=event_id, body=json.dumps(body), created_at=now
        )
        deliveries_enqueue([delivery.pk])
    return delivery


def retry_delay_s(attempts: int) -> float:
    """Seconds between the `attempts`-th try and the next one."""
    return float(settings.HELDOUT_WEBHOOK_RETRY_BASE_S * 2 ** (attempts - 1))


def webhook_delivery_attempt(*, delivery_id: int) -> float | None:
    """Try a pending, due delivery once. Returns the seconds until its next try, or None
    when there is none (delivered, given up, or not this task's to try)."""
    now = timezone.now()
    # The claim lapses after the request's time-out, so a lost attempt is tried again.
    lease = now + timedelta(seconds=settings.HELDOUT_WEBHOOK_TIMEOUT_S + 60)
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status=Status.PENDING, next_try_at__lte=now + timedelta(seconds=1)
    ).update(attempts=F("attempts") + 1, next_try_at=lease)
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("webhook").get(pk=delivery_id)
    if delivery.webhook.active:
        code, error = _post(delivery)
    else:
        code, error = None, "The webhook is inactive."
    done = timezone.now()
    fields: dict[str, object] = {"last_status_code": code, "last_error": error[:2000]}
    delay = None
    if code is not None and 200 <= code < 300:
        fields |= {"status": Status.SUCCEEDED, "finished_at": done, "next_try_at": None}
    elif delivery.attempts >= settings.HELDOUT_WEBHOOK_MAX_ATTEMPTS or not delivery.webhook.active:
        fields |= {"status": Status.FAILED, "finished_at": done, "next_try_at": None}
    else:
        delay = retry_delay_s(delivery.attempts)
        fields["next_try_at"] = done + timedelta(seconds=delay)
    WebhookDelivery.objects.filter(pk=delivery_id, attempts=delivery.attempts).update(**fields)
    return delay


def _post(delivery: WebhookDelivery) -> tuple[int | None, str]:
    """(HTTP status or None, what went wrong or "")."""
    try:
        # Vetted again: the name may resolve elsewhere by now.
        target = target_for(
            delivery.webhook.url, allow_private=settings.HELDOUT_WEBHOOKS_ALLOW_PRIVATE
        )
    except Refused as exc:
        return None, str(exc)
    body = delivery.body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Heldout-Webhooks/1",
        "Heldout-Event": delivery.event,
        "Heldout-Delivery": str(delivery.pk),
        "Heldout-Signature": webhook_signature(
            secret=delivery.webhook.secret, timestamp=int(time.time()), body=body
        ),
    }
    try:
        code = post(target, body=body, headers=headers, timeout=settings.HELDOUT_WEBHOOK_TIMEOUT_S)
    except (OSError, http.client.HTTPException) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    return code, "" if 200 <= code < 300 else f"The endpoint answered HTTP {code}."


def webhook_deliveries_resend(*, overdue_s: float = 60.0) -> int:
    """Send again the pending deliveries overdue by `overdue_s` (their message was lost:
    broker down at enqueue, worker gone mid-attempt). A duplicate finds no claim."""
    cutoff = timezone.now() - timedelta(seconds=overdue_s)
    ids = list(
        WebhookDelivery.objects.filter(status=Status.PENDING, next_try_at__lt=cutoff)
        .order_by("next_try_at")
        .values_list("pk", flat=True)[:1000]
    )
    for delivery_id in ids:
        delivery_send(delivery_id)
    return len(ids)
