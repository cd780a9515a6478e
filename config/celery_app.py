import logging
import os
from typing import Any

from celery import Celery
from celery.beat import PersistentScheduler, ScheduleEntry
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


log = logging.getLogger(__name__)
# The option of a CELERY_BEAT_SCHEDULE entry that the scheduler runs itself.
IN_SCHEDULER = "heldout_in_scheduler"


def _quiet_success(record: logging.LogRecord) -> bool:
    """Drops Celery's INFO line "Task ... succeeded" for the entries the scheduler runs
    itself: they run every few seconds and would fill the log; a failure still logs."""
    return record.levelno > logging.INFO


class Scheduler(PersistentScheduler):
    """`celery beat`'s scheduler (CELERY_BEAT_SCHEDULER). It runs the entries whose options
    say IN_SCHEDULER (the reaper, the outbox's sweep) in its own process instead of sending
    them: in a worker's queue they would wait behind the whole backlog of scorings, or for a
    free slot among long ones, and a dead worker's job would come back long after
    HELDOUT_RECOVER_AFTER_S. The other entries are sent to the workers as usual."""

    def apply_entry(self, entry: ScheduleEntry, producer: Any = None) -> None:
        """Celery's, without its INFO line "Sending due task" for the entries run here: it
        is untrue of them, and the outbox's sweep would write it every few seconds. Each
        says once that it runs here; after that only its failures are logged."""
        if not entry.options.get(IN_SCHEDULER):
            super().apply_entry(entry, producer=producer)
            return
        try:
            self.apply_async(entry, producer=producer, advance=False)
        except Exception:
            log.exception("%s could not run", entry.name)
        started = self.__dict__.setdefault("_heldout_started", set())
        if entry.name not in started:
            started.add(entry.name)
            log.info(
                "%s runs in the scheduler (%s); its failures are logged", entry.name, entry.schedule
            )

    def apply_async(
        self, entry: ScheduleEntry, producer: Any = None, advance: bool = True, **kwargs: Any
    ) -> Any:
        if not entry.options.get(IN_SCHEDULER):
            return super().apply_async(entry, producer=producer, advance=advance, **kwargs)
        from django.db import close_old_connections

        entry = self.reserve(entry) if advance else entry
        close_old_connections()  # as a worker does around each task
        trace_log = logging.getLogger("celery.app.trace")
        trace_log.addFilter(_quiet_success)
        try:
            result = self.app.tasks[entry.task].apply(entry.args, entry.kwargs)
        finally:
            trace_log.removeFilter(_quiet_success)
            close_old_connections()
        if result.failed():
            log.error("%s failed: %r", entry.name, result.result, exc_info=result.result)
        return result
