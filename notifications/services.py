"""Writes of notifications: create them for a fact, mark them read, send one's e-mail,
set a user's choices.

Contract: `notifications_create` runs in the caller's transaction (the fact's) and returns
the rows it made; those with `email_wanted` need their e-mail sent by
`notifications.tasks.notification_email_task`, which the caller enqueues on commit (the
domain does it through its outbox). The texts are final when written: the caller puts in
them only what every recipient may read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from notifications.models import Kind, Notification, NotificationPreference
from notifications.selectors import preferences_for

log = logging.getLogger(__name__)
EMAIL_TASK = "notifications.tasks.notification_email_task"


@dataclass(frozen=True)
class Notice:
    """What to tell: the same text to every recipient."""

    kind: str
    title: str
    body: str = ""
    url: str = ""
    key: str = ""  # once per user per key (see Notification.key)


def notifications_create(*, notice: Notice, user_ids: Iterable[int]) -> list[Notification]:
    """One notification per user who wants `notice.kind` in the site or by e-mail (an
    e-mail needs an address). With a key, users who already had it are skipped."""
    ids = sorted(set(user_ids))
    if notice.key:
        had = set(
            Notification.objects.filter(user_id__in=ids, key=notice.key).values_list(
                "user_id", flat=True
            )
        )
        ids = [i for i in ids if i not in had]
    choices = preferences_for(user_ids=ids, kind=notice.kind)
    with_email = set(User.objects.filter(pk__in=ids).exclude(email="").values_list("pk", flat=True))
    now = timezone.now()
    rows = []
    for user_id in ids:
        in_site, email = choices[user_id]
        email = email and user_id in with_email
        if not (in_site or email):
            continue
        row = Notification(
            user_id=user_id,
            kind=notice.kind,
            title=notice.title[:200],
            body=notice.body,
            url=notice.url,
            key=notice.key,
            created_at=now,
            shown=in_site,
            email_wanted=email,
        )
        row.full_clean(validate_unique=False, validate_constraints=False)
        rows.append(row)
    return Notification.objects.bulk_create(rows)


def notifications_mark_read(*, user: User, notification_id: int | None = None) -> int:
    """Mark one of the user's notifications read, or all of them (None). Another user's
    id marks nothing. Returns how many changed."""
    rows = Notification.objects.filter(user=user, read_at__isnull=True)
    if notification_id is not None:
        rows = rows.filter(pk=notification_id)
    return rows.update(read_at=timezone.now())


def preferences_set(*, user: User, choices: dict[str, tuple[bool, bool]]) -> None:
    """Record the user's (in the site, by e-mail) choice for each kind given."""
    unknown = set(choices) - set(Kind.values)
    if unknown:
        raise ValueError(f"unknown notification kinds: {sorted(unknown)}")
    with transaction.atomic(durable=True):
        for kind, (in_site, email) in choices.items():
            NotificationPreference.objects.update_or_create(
                user=user, kind=kind, defaults={"in_site": in_site, "email": email}
            )


def notification_email_send(*, notification_id: int) -> bool:
    """Send a notification's e-mail unless it was sent (or is not wanted). Returns whether
    this call sent it. The claim comes first, so a redelivered task sends nothing; a send
    that fails gives the claim back and raises, for the task's retry."""
    claimed_at = timezone.now()
    claimed = Notification.objects.filter(
        pk=notification_id, email_wanted=True, email_sent_at__isnull=True
    ).update(email_sent_at=claimed_at)
    if not claimed:
        return False
    notification = Notification.objects.select_related("user").get(pk=notification_id)
    try:
        send_mail(
            subject=f"[Heldout] {notification.title}",
            message=email_text(notification),
            from_email=None,  # DEFAULT_FROM_EMAIL
            recipient_list=[notification.user.email],
        )
    except Exception:
        Notification.objects.filter(pk=notification_id, email_sent_at=claimed_at).update(
            email_sent_at=None
        )
        raise
    log.info("notification %s e-mailed", notification_id)
    return True


def email_text(notification: Notification) -> str:
    site = settings.HELDOUT_SITE_URL
    lines = [f"Hello {notification.user.get_username()},", "", notification.title]
    if notification.body:
        lines += ["", notification.body]
    if notification.url:
        lines += ["", f"{site}{notification.url}"]
    lines += [
        "",
        "--",
        "Choose which notifications you get, in the site and by e-mail, on your account "
        f"page: {site}{reverse('account')}#notifications",
    ]
    return "\n".join(lines)
