"""Celery adapters of the notifications app: take the id, call one service."""

import smtplib

from celery import shared_task


@shared_task(
    acks_late=True,
    autoretry_for=(OSError, smtplib.SMTPException),
    retry_backoff=30,
    max_retries=8,
)
def notification_email_task(notification_id: int) -> bool:
    from notifications.services import notification_email_send

    # The service claims the e-mail first: a redelivery finds it sent and does nothing.
    return notification_email_send(notification_id=notification_id)
