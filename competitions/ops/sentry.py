"""Error reporting through Sentry's SDK when HELDOUT_SENTRY_DSN is set, and only then (the
SDK's own SENTRY_DSN is not read). Both locks pin the SDK (the `sentry` extra); a DSN set
where it is missing stops the process at start-up instead of being ignored.

`sentry_tag` names the request or submission on whatever the current request or Celery
task reports (the integrations give each its own scope); it does nothing without a DSN.
"""

from __future__ import annotations

from django.conf import settings
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


def sentry_tag(*, name: str, value: str) -> None:
    if not settings.HELDOUT_SENTRY_DSN:
        return
    import sentry_sdk  # there: sentry_init ran at start-up, or the process stopped

    sentry_sdk.set_tag(name, value)
