"""/healthz and /readyz for load balancers and orchestrators.

/healthz: liveness; the process answers, nothing else is consulted (200 always).
/readyz: readiness; the database (a query), the broker (a connection), file storage (a
tiny object written, read back and deleted through default_storage) and the cache (a value
set and read). JSON with each check's status and latency; 503 naming what failed if any
check fails, so the balancer stops sending traffic to this process.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

BROKER_TIMEOUT_S = 3.0


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_broker() -> None:
    from config.celery_app import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_S)


def check_storage() -> None:
    name = default_storage.save(f"readyz/{uuid.uuid4().hex}", ContentFile(b"ready"))
    try:
        with default_storage.open(name, "rb") as handle:
            if handle.read() != b"ready":
                raise OSError("storage returned other bytes than were written")
    finally:
        default_storage.delete(name)


def check_cache() -> None:
    key = f"readyz:{uuid.uuid4().hex}"
    cache.set(key, "ready", 10)
    try:
        if cache.get(key) != "ready":
            raise OSError("the cache did not keep a value")
    finally:
        cache.delete(key)


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "broker": check_broker,
    "storage": check_storage,
    "cache": check_cache,
}


def _run(check: Callable[[], None]) -> dict[str, object]:
    start = time.perf_counter()
    try:
        check()
    except Exception as exc:  # any failure means "not ready"; say which kind
        outcome: dict[str, object] = {"status": "unavailable", "error": type(exc).__name__}
    else:
        outcome = {"status": "ok"}
    outcome["latency_ms"] = round((time.perf_counter() - start) * 1000, 1)
    return outcome


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks = {name: _run(check) for name, check in CHECKS.items()}
    failed = [name for name, outcome in checks.items() if outcome["status"] != "ok"]
    body: dict[str, object] = {"status": "unavailable" if failed else "ok", "checks": checks}
    if failed:
        body["detail"] = f"Not ready: {', '.join(failed)} unavailable."
    return JsonResponse(body, status=503 if failed else 200)
