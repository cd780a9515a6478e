"""Error reporting through Sentry's SDK when HELDOUT_SENTRY_DSN is set (optional extra
`sentry`: the SDK is not in requirements.lock)."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured


def sentry_init(*, dsn: str) -> None:
    try:
        import sentry_sdk
        from sentry_sdk.integrations.celery import CeleryIntegration
        from sentry_sdk.integrations.django import DjangoIntegration
    except ImportError as exc:
        raise ImproperlyConfigured(
            "HELDOUT_SENTRY_DSN is set but sentry-sdk is not installed: "
            "pip install 'sentry-sdk[django,celery]' (the `sentry` extra)."
        ) from exc
    sentry_sdk.init(
        dsn=dsn,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        send_default_pii=False,
    )
