"""Each Celery worker's own heartbeat, for /metrics: which workers are alive, busy or idle.

Contract: a worker process (its main process, on Celery's worker_ready; config/celery_app.py
connects it) writes its last beat, wall-clock seconds, under its Celery hostname into the
shared cache every HELDOUT_HEARTBEAT_S, and removes it when it shuts down cleanly. The cache
is the one every host shares (HELDOUT_CACHE_URL, else the database's table), so any web
process reads every worker's beat. A worker that died stops beating: its age grows until
KEEP_S after its last beat, then it is forgotten. Running work beats on its own row
(scoring.heartbeat); this beat says the worker itself is up, busy or not.

The index of hostnames is read, changed and written back: two workers registering at the
same instant may drop one another, and each adds itself back at its next beat.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.core.cache import cache
from django.db import connections

log = logging.getLogger(__name__)
# A worker silent this long is forgotten (its series leaves /metrics).
KEEP_S = 3600


def _index_key() -> str:
    return f"heldout:workers:{settings.HELDOUT_DEPLOYMENT_ID}"


def _beat_key(hostname: str) -> str:
    return f"heldout:worker:{settings.HELDOUT_DEPLOYMENT_ID}:{hostname}"


def worker_beat(*, hostname: str, at: float | None = None) -> None:
    """Record that `hostname` is alive now (or `at`, wall-clock seconds)."""
    cache.set(_beat_key(hostname), time.time() if at is None else at, KEEP_S)
    known: list[str] = cache.get(_index_key()) or []
    if hostname not in known:
        alive = cache.get_many([_beat_key(name) for name in known])
        kept = [name for name in known if _beat_key(name) in alive]  # forgotten ones go
        cache.set(_index_key(), sorted({*kept, hostname}), KEEP_S)
    else:
        cache.touch(_index_key(), KEEP_S)


def worker_forget(*, hostname: str) -> None:
    """A worker that stops cleanly leaves no series that looks like a dead one."""
    cache.delete(_beat_key(hostname))


def worker_beats() -> dict[str, float]:
    """{hostname: its last beat, wall-clock seconds} of the workers not yet forgotten."""
    known: list[str] = cache.get(_index_key()) or []
    beats = cache.get_many([_beat_key(name) for name in known])
    return {name: beats[_beat_key(name)] for name in known if _beat_key(name) in beats}


class WorkerBeat(threading.Thread):
    def __init__(self, *, hostname: str, every_s: float) -> None:
        super().__init__(name="heldout-worker-beat", daemon=True)
        self.hostname = hostname
        self.every_s = every_s
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                worker_beat(hostname=self.hostname)
            except Exception:  # the cache is down: /readyz and the outage pages say so
                log.warning("Could not record this worker's heartbeat.", exc_info=True)
            finally:
                # The database cache's connection, closed between beats: a pool process
                # forked meanwhile must not inherit an open one (as scoring.cleanup does).
                connections.close_all()
            self._stop_event.wait(self.every_s)

    def stop(self) -> None:
        self._stop_event.set()


_beat: WorkerBeat | None = None


def on_worker_ready(sender: object = None, **kwargs: object) -> None:
    global _beat
    hostname = str(getattr(sender, "hostname", "") or "unknown")
    if _beat is None or not _beat.is_alive():
        _beat = WorkerBeat(hostname=hostname, every_s=settings.HELDOUT_HEARTBEAT_S)
        _beat.start()


def on_worker_shutdown(**kwargs: object) -> None:
    global _beat
    if _beat is not None:
        _beat.stop()
        try:
            worker_forget(hostname=_beat.hostname)
        except Exception:
            log.warning("Could not remove this worker's heartbeat.", exc_info=True)
        _beat = None
