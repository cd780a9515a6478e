"""An outage of the broker, the cache or file storage raised in a request is a 503 with
Retry-After and a sentence (JSON on the API, a page elsewhere), like the database's
(tests/test_ops_live.py); any other error stays a 500."""

from __future__ import annotations

import kombu.exceptions
import pytest
import redis.exceptions
from django.test import Client

from competitions import selectors
from competitions.outages import BROKER, CACHE, DATABASE, STORAGE, outage_of

pytestmark = pytest.mark.django_db


def _failing(monkeypatch, exc: Exception) -> Client:
    def fail(*args, **kwargs):
        raise exc

    monkeypatch.setattr(selectors, "competition_list_for_user", fail)
    return Client(raise_request_exception=False)


@pytest.mark.parametrize(
    ("exc", "service"),
    [
        (kombu.exceptions.OperationalError("Error 111 connecting"), "the job queue"),
        (redis.exceptions.ConnectionError("Connection refused"), "the cache"),
        (ConnectionRefusedError(111, "Connection refused"), "file storage"),
    ],
)
def test_an_outage_raised_in_an_api_view_is_a_503_naming_the_service(monkeypatch, exc, service):
    response = _failing(monkeypatch, exc).get("/api/v1/competitions/")
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    body = response.json()
    assert body["code"] == "service_unavailable"
    assert body["retry_after_s"] == 30
    assert f"cannot reach {service}" in body["detail"]


def test_an_outage_raised_in_a_page_is_a_503_page(monkeypatch):
    response = _failing(monkeypatch, redis.exceptions.TimeoutError("timed out")).get("/")
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response["Content-Type"].startswith("text/html")
    assert "cannot reach the cache" in response.content.decode()


def test_any_other_error_stays_a_500(monkeypatch):
    client = _failing(monkeypatch, ValueError("a bug"))
    assert client.get("/api/v1/competitions/").status_code == 500
    assert client.get("/").status_code == 500


def test_an_outage_is_recognised_through_the_errors_raised_from_it():
    from django.db import OperationalError

    def save() -> None:
        try:
            raise OperationalError("server closed the connection unexpectedly")
        except OperationalError as exc:
            raise RuntimeError("while saving") from exc

    with pytest.raises(RuntimeError) as wrapped:
        save()
    assert outage_of(wrapped.value) == DATABASE
    assert outage_of(kombu.exceptions.OperationalError()) == BROKER
    assert outage_of(redis.exceptions.ConnectionError()) == CACHE
    assert outage_of(ConnectionResetError()) == STORAGE
    assert outage_of(KeyError("x")) is None


def test_json_log_lines_carry_the_submission_and_request_ids():
    import json
    import logging

    from competitions.ops.logs import ContextFilter, JsonFormatter, log_context, request_id

    record = logging.LogRecord("scoring", logging.INFO, __file__, 1, "scored %s", (7,), None)
    token = request_id.set("req-1")
    try:
        with log_context(submission=7):
            ContextFilter().filter(record)
    finally:
        request_id.reset(token)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "scored 7"
    assert line["level"] == "INFO"
    assert (line["request_id"], line["submission_id"]) == ("req-1", "7")
    assert line["time"]
