"""Notification e-mails end to end: a real Celery worker fails a submission, and the e-mail
task its outbox message starts writes the e-mail (Django's file backend) once, even when the
task is delivered again."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from notifications.models import Kind, Notification
from notifications.services import EMAIL_TASK
from tests import factories
from tests.worker_process import wait_for_status, worker_process

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

BAD_FILE = b"id,label\nid0,0.1\nid0,0.2\nid1,banana\n"


@pytest.fixture
def mailbox(tmp_path) -> Path:
    folder = tmp_path / "emails"
    folder.mkdir()
    return folder


@pytest.fixture
def worker(tmp_path, mailbox):
    log = tmp_path / "worker.log"
    env = {
        "HELDOUT_TEST_EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mailbox),
    }
    with worker_process(log, extra_env=env) as proc:
        yield proc, log


def _emails(mailbox: Path) -> list[str]:
    return [path.read_text() for path in sorted(mailbox.iterdir())]


def _task_runs(log: Path, task_id: str = "") -> list[str]:
    """The results the worker logged for the e-mail task ("True", "False"), of the message
    `task_id` if given (the broker may hold messages of earlier tests)."""
    return [
        line.rsplit(": ", 1)[-1].strip()
        for line in log.read_text().splitlines()
        if f"{EMAIL_TASK}[{task_id}" in line and " succeeded in " in line
    ]


def _wait(predicate, log: Path, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    pytest.fail(f"{what}; worker log:\n{log.read_text()[-3000:]}")


def test_a_failed_submission_is_emailed_once_by_the_worker_even_when_redelivered(
    worker, mailbox, organizer, participant, api
):
    from config.celery_app import app

    proc, log = worker
    competition = factories.make_competition(organizers=[organizer])
    api(participant).post(f"/api/v1/competitions/{competition.slug}/join/", {"accept_rules": True})
    response = api(participant).post(
        f"/api/v1/competitions/{competition.slug}/submissions/",
        {"file": factories.upload(BAD_FILE)},
        format="multipart",
    )
    submission_id = response.json()["id"]
    assert wait_for_status(submission_id, {"scored", "failed"}, proc, log) == "failed"
    _wait(lambda: "True" in _task_runs(log), log, "the e-mail task did not run")
    notice = Notification.objects.get(user=participant)
    assert notice.kind == Kind.SUBMISSION_FAILED
    assert notice.email_sent_at is not None
    [email] = _emails(mailbox)
    assert "To: alice@example.org" in email
    assert f"Submission #{submission_id}" in email
    assert "banana" not in email  # the file's content, which an error may quote

    # The broker delivers the task again (a worker lost before its acknowledgement).
    again = app.send_task(EMAIL_TASK, args=[notice.pk], queue="cpu")
    _wait(lambda: _task_runs(log, again.id) == ["False"], log, "the redelivery did not run")
    assert len(_emails(mailbox)) == 1
    assert _task_runs(log).count("True") == 1
