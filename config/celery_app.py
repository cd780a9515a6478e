import os

from celery import Celery
from celery.signals import setup_logging, worker_ready, worker_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("heldout")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect
def _django_logging(**kwargs) -> None:
    """Workers and beat log as the web does (settings.LOGGING: time, level, the request or
    submission id, JSON as an option), not in Celery's own format."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)


@worker_ready.connect
def _worker_beat_start(sender=None, **kwargs) -> None:
    """Each worker beats into the shared cache, for /metrics (competitions/ops/workers.py)."""
    from competitions.ops.workers import on_worker_ready

    on_worker_ready(sender=sender)


@worker_shutdown.connect
def _worker_beat_stop(**kwargs) -> None:
    from competitions.ops.workers import on_worker_shutdown

    on_worker_shutdown()
