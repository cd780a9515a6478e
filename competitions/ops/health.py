"""/healthz and /readyz for load balancers and orchestrators.

/healthz: liveness; the process answers, nothing else is consulted (200 always).
/readyz: readiness; the database (a query), the broker (a connection), both file storages
(`storage`: public files, `private_storage`: the rest; a tiny object written, read back and
deleted through each, so an S3 bucket is proved reachable and writable with these
credentials), the cache (a value set and read) and, when HELDOUT_IMAGE_REGISTRY is set, the
image registry (its /v2/ endpoint answers). JSON with each check's status and latency; 503
naming what failed if any check fails, so the balancer stops sending traffic to this process.
"""

from __future__ import annotations

import ipaddress
import time
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, default_storage, storages
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

BROKER_TIMEOUT_S = 3.0
REGISTRY_TIMEOUT_S = 3.0


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_broker() -> None:
    from config.celery_app import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_S)


def _round_trip(storage: Storage) -> None:
    name = storage.save(f"readyz/{uuid.uuid4().hex}", ContentFile(b"ready"))
    try:
        with storage.open(name, "rb") as handle:
            if handle.read() != b"ready":
                raise OSError("storage returned other bytes than were written")
    finally:
        storage.delete(name)


def check_storage() -> None:
    _round_trip(default_storage)


def check_private_storage() -> None:
    _round_trip(storages["private"])


def check_cache() -> None:
    key = f"readyz:{uuid.uuid4().hex}"
    cache.set(key, "ready", 10)
    try:
        if cache.get(key) != "ready":
            raise OSError("the cache did not keep a value")
    finally:
        cache.delete(key)


def registry_base_url(registry: str) -> str:
    """`https://host[:port]` of `host[:port]/prefix`; plain http on loopback, as the Docker
    engine itself trusts a registry there without TLS."""
    host = registry.split("/", 1)[0]
    name = urlsplit(f"//{host}").hostname or ""
    try:
        loopback = name == "localhost" or ipaddress.ip_address(name).is_loopback
    except ValueError:
        loopback = False
    return f"{'http' if loopback else 'https'}://{host}"


class RegistryUnreachable(Exception):
    pass


def check_registry() -> None:
    # The distribution API's version check: 200, or 401 when it wants credentials (the
    # workers' Docker clients hold those). Anything else is not a registry that serves us.
    url = f"{registry_base_url(settings.HELDOUT_IMAGE_REGISTRY)}/v2/"
    answer = requests.get(url, timeout=REGISTRY_TIMEOUT_S, allow_redirects=False)
    if answer.status_code not in (200, 401):
        raise RegistryUnreachable(f"{url} answered {answer.status_code}")


def checks() -> dict[str, Callable[[], None]]:
    """What /readyz consults: the registry only where one is configured."""
    chosen: dict[str, Callable[[], None]] = {
        "database": check_database,
        "broker": check_broker,
        "storage": check_storage,
        "private_storage": check_private_storage,
        "cache": check_cache,
    }
    if settings.HELDOUT_IMAGE_REGISTRY:
        chosen["registry"] = check_registry
    return chosen


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
    results = {name: _run(check) for name, check in checks().items()}
    failed = [name for name, outcome in results.items() if outcome["status"] != "ok"]
    body: dict[str, object] = {"status": "unavailable" if failed else "ok", "checks": results}
    if failed:
        body["detail"] = f"Not ready: {', '.join(failed)} unavailable."
    return JsonResponse(body, status=503 if failed else 200)
