"""The beat scheduler (config.celery_app.Scheduler) runs the housekeeping entries itself:
their routine success is not logged every few seconds, their failures are."""

from __future__ import annotations

import logging

import pytest
from celery.beat import ScheduleEntry

from config.celery_app import Scheduler
from config.celery_app import app as celery_app


@celery_app.task(name="tests.scheduler_ok")
def _ok() -> str:
    return "swept"


@celery_app.task(name="tests.scheduler_broken")
def _broken() -> None:
    raise RuntimeError("sweep broke")


def _run_in_scheduler(tmp_path, task: str) -> None:
    scheduler = Scheduler(app=celery_app, schedule_filename=str(tmp_path / "beat"), lazy=True)
    entry = ScheduleEntry(
        name=task, task=task, schedule=5.0, options={"heldout_in_scheduler": True}, app=celery_app
    )
    scheduler.apply_async(entry, advance=False)


def _trace_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "celery.app.trace"]


@pytest.mark.django_db
def test_it_does_not_log_each_success_of_an_entry_it_runs_itself(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    _run_in_scheduler(tmp_path, "tests.scheduler_ok")
    assert not [r for r in _trace_lines(caplog) if "succeeded" in r.getMessage()]
    # Only while the scheduler runs an entry: a worker's task success is still logged.
    assert not logging.getLogger("celery.app.trace").filters


@pytest.mark.django_db
def test_it_logs_the_failure_of_an_entry_it_runs_itself(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    _run_in_scheduler(tmp_path, "tests.scheduler_broken")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("sweep broke" in r.getMessage() or "sweep broke" in str(r.exc_info) for r in errors)


@pytest.mark.django_db
def test_it_says_once_that_it_runs_an_entry_and_never_that_it_sends_it(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    scheduler = Scheduler(app=celery_app, schedule_filename=str(tmp_path / "beat"), lazy=True)
    entry = ScheduleEntry(
        name="sweep",
        task="tests.scheduler_ok",
        schedule=5.0,
        options={"heldout_in_scheduler": True},
        app=celery_app,
    )
    for _ in range(3):
        scheduler.apply_entry(entry)
    lines = [r.getMessage() for r in caplog.records]
    assert [line for line in lines if "runs in the scheduler" in line] == [
        "sweep runs in the scheduler (<freq: 5.00 seconds>); its failures are logged"
    ]
    assert not [line for line in lines if "Sending due task" in line]
