"""Operating a real gunicorn: /healthz and /readyz, 503 with Retry-After when the database
goes away (its connections go through a loopback proxy the test cuts), /metrics behind its
token, and the request id in the response header and the log lines."""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime
from logging.config import dictConfig

import pytest
import requests
from django.db import connection
from django.test import override_settings

from competitions.models import OrganizerJob, OutboxMessage
from competitions.ops.logs import log_context, logging_config
from competitions.services import outbox
from competitions.services.submissions import submission_create
from tests import factories
from tests.registry_server import free_port, registry_server
from tests.s3_server import s3_server
from tests.test_ops_metrics import scrape, worker_ages
from tests.test_worker_faults import HeldProxy
from tests.web_process import web_process
from tests.worker_process import database_url, worker_process

pytestmark = pytest.mark.django_db(transaction=True)
TOKEN = "metrics-test-token"


@pytest.fixture
def site(tmp_path) -> Iterator[tuple[str, HeldProxy, object]]:
    """A gunicorn whose database connections go through a cuttable proxy."""
    db = connection.settings_dict
    port = int(db.get("PORT") or 5432)
    proxy = HeldProxy((db.get("HOST") or "127.0.0.1", port))
    proxied = database_url().replace(f":{port}/", f":{proxy.port}/")
    assert str(proxy.port) in proxied
    log = tmp_path / "gunicorn.log"
    env = {"DATABASE_URL": proxied, "HELDOUT_METRICS_TOKEN": TOKEN}
    try:
        with web_process(log, extra_env=env) as base:
            yield base, proxy, log
    finally:
        proxy.close()


def test_readyz_reports_each_dependency_and_names_the_database_when_it_is_gone(site):
    base, proxy, _ = site
    ready = requests.get(f"{base}/readyz", timeout=30)
    assert ready.status_code == 200, ready.text
    checks = ready.json()["checks"]
    assert set(checks) == {"database", "broker", "storage", "private_storage", "cache"}
    assert all(check["status"] == "ok" for check in checks.values())
    assert all(isinstance(check["latency_ms"], float) for check in checks.values())
    proxy.hold()
    try:
        gone = requests.get(f"{base}/readyz", timeout=30)
        assert gone.status_code == 503
        assert gone.json()["checks"]["database"]["status"] == "unavailable"
        assert gone.json()["checks"]["storage"]["status"] == "ok"
        assert "database" in gone.json()["detail"]
        alive = requests.get(f"{base}/healthz", timeout=30)  # liveness needs no database
        assert alive.status_code == 200
        assert alive.json() == {"status": "ok"}
    finally:
        proxy.restore()
    assert requests.get(f"{base}/readyz", timeout=30).status_code == 200


def test_readyz_checks_both_buckets_and_the_registry_and_names_each_that_goes(tmp_path):
    """moto's S3 server and Debian's docker-registry on loopback, then each stopped."""
    with ExitStack() as servers:
        s3 = servers.enter_context(s3_server(tmp_path / "moto.log"))
        registry = servers.enter_context(
            registry_server(tmp_path / "registry", free_port(), tmp_path / "registry.log")
        )
        env = {**s3.env(), "HELDOUT_IMAGE_REGISTRY": f"{registry}/heldout"}
        with web_process(tmp_path / "gunicorn.log", extra_env=env) as base:
            ready = requests.get(f"{base}/readyz", timeout=60)
            assert ready.status_code == 200, ready.text
            checks = ready.json()["checks"]
            assert checks.keys() == {
                "database",
                "broker",
                "storage",
                "private_storage",
                "cache",
                "registry",
            }
            assert s3.keys(s3.bucket) == []  # the probes were deleted again
            assert s3.keys(s3.private_bucket) == []
            s3.client().delete_bucket(Bucket=s3.private_bucket)
            gone = requests.get(f"{base}/readyz", timeout=60)
            assert gone.status_code == 503
            assert gone.json()["checks"]["private_storage"]["status"] == "unavailable"
            assert gone.json()["checks"]["storage"]["status"] == "ok"
            assert gone.json()["checks"]["registry"]["status"] == "ok"
            servers.close()  # both servers stop; gunicorn stays
            down = requests.get(f"{base}/readyz", timeout=120).json()
            assert down["checks"]["registry"]["status"] == "unavailable"
            assert down["checks"]["storage"]["status"] == "unavailable"
            assert down["checks"]["database"]["status"] == "ok"
            assert down["detail"] == ("Not ready: storage, private_storage, registry unavailable.")


def test_losing_the_database_answers_503_with_retry_after_never_a_500_page(site, competition):
    base, proxy, _ = site
    assert requests.get(f"{base}/api/v1/competitions/", timeout=30).status_code == 200
    proxy.hold()
    try:
        api = requests.get(f"{base}/api/v1/competitions/", timeout=30)
        page = requests.get(f"{base}/c/{competition.slug}/", timeout=30)
    finally:
        proxy.restore()
    assert api.status_code == 503
    assert api.headers["Retry-After"] == "30"
    assert api.json()["code"] == "service_unavailable"
    assert "the database" in api.json()["detail"]
    assert page.status_code == 503
    assert page.headers["Retry-After"] == "30"
    assert page.headers["Content-Type"].startswith("text/html")
    assert "cannot reach the database" in page.text
    assert requests.get(f"{base}/api/v1/competitions/", timeout=30).status_code == 200


def test_the_request_id_is_returned_and_on_the_requests_log_line(site):
    base, _, log = site
    given = requests.get(f"{base}/no-such-page", headers={"X-Request-ID": "trace-42"}, timeout=30)
    assert given.status_code == 404
    assert given.headers["X-Request-ID"] == "trace-42"
    made = requests.get(f"{base}/healthz", timeout=30).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    odd = requests.get(f"{base}/healthz", headers={"X-Request-ID": "a b\tc"}, timeout=30)
    assert re.fullmatch(r"[0-9a-f]{32}", odd.headers["X-Request-ID"])  # not echoed as given
    lines = [line for line in log.read_text().splitlines() if "Not Found: /no-such-page" in line]
    assert lines
    assert "request=trace-42" in lines[0]
    assert "WARNING" in lines[0]


def test_metrics_need_the_token_and_report_queues_failures_and_the_outbox(
    site, competition, participant, organizer, monkeypatch
):
    base, _, _ = site
    monkeypatch.setattr(outbox, "publish", lambda message: None)  # no worker here
    submission_create(
        competition=competition,
        user=participant,
        uploaded_file=factories.upload(factories.perfect_predictions()),
    )
    OrganizerJob.objects.create(competition=competition, kind="rescore_all", status="running")
    OutboxMessage.objects.create(
        task="competitions.tasks.organizer_job_task", args=[1], queue="cpu"
    )
    assert requests.get(f"{base}/metrics", timeout=30).status_code == 403
    wrong = {"Authorization": "Bearer not-the-token"}
    assert requests.get(f"{base}/metrics", headers=wrong, timeout=30).status_code == 403
    session = requests.Session()  # a signed-in organizer is no scraper
    session.post(
        f"{base}/accounts/login/", data={"username": "orga", "password": "pw-orga"}, timeout=30
    )
    assert session.get(f"{base}/metrics", timeout=30).status_code == 403
    right = {"Authorization": f"Bearer {TOKEN}"}
    scraped = requests.get(f"{base}/metrics", headers=right, timeout=30)
    assert scraped.status_code == 200
    text = scraped.text
    assert 'heldout_queue_depth{kind="submission",queue="cpu",status="queued"} 1.0' in text
    assert 'heldout_queue_depth{kind="job",queue="cpu",status="running"} 1.0' in text
    assert "heldout_outbox_backlog 1.0" in text
    assert "heldout_scoring_duration_seconds_bucket" in text
    assert 'heldout_oldest_heartbeat_age_seconds{kind="submission"} 0.0' in text
    assert "# TYPE heldout_submissions_failed gauge" in text


def test_metrics_do_not_exist_without_a_token_setting(client):
    with override_settings(HELDOUT_METRICS_TOKEN=""):
        response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer ")
    assert response.status_code == 404


def test_json_logs_carry_time_level_and_the_request_id_on_every_django_line(tmp_path):
    log = tmp_path / "gunicorn.log"
    with web_process(log, extra_env={"HELDOUT_LOG_JSON": "1"}) as base:
        answer = requests.get(
            f"{base}/no-such-page", headers={"X-Request-ID": "json-7"}, timeout=30
        )
        assert answer.status_code == 404
    lines = [line for line in log.read_text().splitlines() if "Not Found: /no-such-page" in line]
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["level"] == "WARNING"
    assert record["logger"] == "django.request"
    assert record["request_id"] == "json-7"
    assert record["submission_id"] == "-"
    assert datetime.strptime(record["time"], "%Y-%m-%dT%H:%M:%S%z").tzinfo is not None


def test_a_json_line_written_within_a_submissions_work_names_it():
    stream = io.StringIO()
    config = logging_config(level="INFO", json_lines=True)
    config["handlers"]["console"]["stream"] = stream
    # The settings' handler, filter and formatter on a logger of this test's own.
    del config["root"]
    config["loggers"] = {"heldout-test-json": {"handlers": ["console"], "propagate": False}}
    dictConfig(config)
    logger = logging.getLogger("heldout-test-json")
    logger.setLevel(logging.INFO)
    with log_context(submission=42):
        logger.info("scored")
    logger.info("idle")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (first["message"], first["submission_id"], first["level"]) == ("scored", "42", "INFO")
    assert first["request_id"] == "-"
    assert second["submission_id"] == "-"


def _worker_series(client, recover_after_s: float) -> tuple[dict[str, float], float]:
    samples = scrape(client, recover_after_s=recover_after_s)
    return worker_ages(samples), samples[("heldout_workers_alive", ())]


def _wait_for_a_beat(client, proc, log) -> str:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        ages, _ = _worker_series(client, recover_after_s=90)
        if ages:
            (name,) = ages
            return name
        time.sleep(0.5)
    pytest.fail(f"the worker never beat:\n{log.read_text()[-3000:]}")


@pytest.mark.celery_worker
def test_a_real_worker_beats_leaves_when_stopped_and_ages_when_killed(client, tmp_path):
    log = tmp_path / "worker.log"
    with worker_process(log, extra_env={"HELDOUT_HEARTBEAT_S": "0.5"}) as proc:
        name = _wait_for_a_beat(client, proc, log)
        assert name.startswith("celery@")
        ages, alive = _worker_series(client, recover_after_s=90)
        assert ages[name] < 10
        assert alive == 1
    # Stopped cleanly (SIGTERM, a warm shutdown): its series is gone at once.
    assert proc.returncode is not None
    assert _worker_series(client, recover_after_s=90) == ({}, 0)
    with worker_process(log, extra_env={"HELDOUT_HEARTBEAT_S": "0.5"}) as proc:
        name = _wait_for_a_beat(client, proc, log)
        proc.kill()  # dies without a word
        proc.wait(timeout=20)
        time.sleep(3)
        ages, alive = _worker_series(client, recover_after_s=2)
        assert ages[name] >= 2.5
        assert alive == 0
