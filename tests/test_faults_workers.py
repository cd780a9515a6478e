"""Faults of the workers' side, with real processes while submissions stream in over
HTTP: workers SIGKILLed ten times, PostgreSQL connections terminated mid-scoring. No
submission is lost, none stays stuck past the recovery target, none is scored twice or
counted twice in its team's quota.

The deployment is the multi-host one (tests/fleet.py): two worker hosts that share
nothing with the web but PostgreSQL, the broker and object storage (moto's S3 server).
The built-in scorer runs in-process: these faults are the workers', not the sandbox's
(tests/test_worker_faults.py kills a worker mid-sandbox). Recovery settings are shrunk so
that the tests take seconds: heartbeat every 1 s, recovery after 6 s, the reaper every 1 s.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from competitions.models import Attempt, Competition, OutboxMessage, Submission
from tests import factories
from tests.fleet import (
    Deployment,
    assert_counted_once,
    assert_scored_once,
    deployment,
    predictions,
    tails,
    token_of,
    unfinished,
    until,
    upload,
    upload_all,
)
from tests.redis_server import redis_server
from tests.worker_process import beat_process

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

HOSTS = ("host-1", "host-2")
HEARTBEAT_S = 1
RECOVER_AFTER_S = 6
REAP_EVERY_S = 1
# A dead worker's claim is back in the queue within the recovery time and a reaper period
# (docs/production.md), plus two seconds for a loaded machine.
RECOVERY_TARGET_S = RECOVER_AFTER_S + REAP_EVERY_S + 2
KILLS = 10
# Past this after the last fault, work still unfinished is stuck (the backlog included).
STUCK_AFTER_S = 45
RECOVERY = {
    "HELDOUT_SCORER": "in-process",
    "HELDOUT_HEARTBEAT_S": str(HEARTBEAT_S),
    "HELDOUT_RECOVER_AFTER_S": str(RECOVER_AFTER_S),
    "HELDOUT_REAP_EVERY_S": str(REAP_EVERY_S),
    "HELDOUT_OUTBOX_SWEEP_S": "1",
    # More than the kills: whichever claims they hit, no submission runs out of attempts
    # (the limit itself is tested in tests/scoring/).
    "HELDOUT_MAX_ATTEMPTS": str(KILLS + 1),
}


def _competition(organizer, teams: int, per_team: int) -> tuple[Competition, list[str]]:
    competition = factories.make_competition(organizers=[organizer], daily_limit=per_team)
    tokens = [
        token_of(factories.team_for(competition, f"team{n}").members.get()) for n in range(teams)
    ]
    return competition, tokens


def _running_claim(fleet: Deployment, ids: list[int], killed: dict) -> str | None:
    """The host of a live worker that is scoring one of `ids` now, if any."""
    live = [host for host, proc in fleet.workers.items() if proc.poll() is None]
    rows = Attempt.objects.filter(submission_id__in=ids, outcome="running", worker__in=live)
    for pk, attempt, host in rows.values_list("submission_id", "number", "worker"):
        if (pk, attempt) not in killed:
            return host
    return None


def _claims_of_the_dead(host: str, ids: list[int], killed: dict) -> list[tuple[int, int]]:
    """The claims left RUNNING on `host` once its worker is dead and before another starts."""
    rows = Attempt.objects.filter(submission_id__in=ids, outcome="running", worker=host)
    return [claim for claim in rows.values_list("submission_id", "number") if claim not in killed]


def _recovered(killed: dict[tuple[int, int], float], back: dict[tuple[int, int], float]) -> bool:
    """Note when each killed claim left RUNNING at its attempt (the reaper requeued it);
    whether all have."""
    for (pk, attempt), at in killed.items():
        if (pk, attempt) in back:
            continue
        if not Attempt.objects.filter(submission_id=pk, number=attempt, outcome="running").exists():
            back[(pk, attempt)] = time.monotonic() - at
    return len(back) == len(killed)


def _pending(ids: list[int], live: list[str], killed: dict) -> bool:
    """Whether some of `ids` is queued, or running on a live worker."""
    if Submission.objects.filter(pk__in=ids, status="queued").exists():
        return True
    rows = Attempt.objects.filter(submission_id__in=ids, outcome="running", worker__in=live)
    return any(claim not in killed for claim in rows.values_list("submission_id", "number"))


def _wait_for_a_claim(fleet: Deployment, ids: list[int], upload_two, killed, back) -> str:
    """The host of a live worker scoring a claim now. Two more uploads whenever nothing is
    left to score: the stream stays short, and there is always work to cut off."""
    deadline = time.monotonic() + 90
    while True:
        _recovered(killed, back)
        host = _running_claim(fleet, ids, killed)
        if host is not None:
            return host
        live = [h for h, proc in fleet.workers.items() if proc.poll() is None]
        if not _pending(ids, live, killed):
            ids += upload_two()
        assert time.monotonic() < deadline, f"no claim to cut off\n{tails(fleet.logs)}"
        time.sleep(0.02)


def test_ten_sigkilled_workers_lose_no_submission_and_score_none_twice(tmp_path, on_s3, organizer):
    competition, tokens = _competition(organizer, teams=2, per_team=200)
    killed: dict[tuple[int, int], float] = {}
    back: dict[tuple[int, int], float] = {}
    ids: list[int] = []
    kills = 0
    with deployment(tmp_path, {**on_s3.env(), **RECOVERY}, HOSTS) as fleet:

        def upload_two() -> list[int]:
            pair = [
                (token, competition.slug, predictions(len(ids) + i))
                for i, token in enumerate(tokens)
            ]
            return upload_all(fleet.base, pair)

        # Until KILLS kills have each cut a claim off (one that finished just before the
        # signal landed cuts nothing and does not count). The reaper runs in beat: a kill
        # may leave no worker alive for a while.
        while len(killed) < KILLS:
            host = _wait_for_a_claim(fleet, ids, upload_two, killed, back)
            fleet.kill_worker(host)
            kills += 1
            at = time.monotonic()
            killed |= dict.fromkeys(_claims_of_the_dead(host, ids, killed), at)
            fleet.start_worker(host, wait=False)
        until(
            lambda: _recovered(killed, back) and not unfinished(ids),
            "scoring after the kills",
            120,
            fleet.logs,
        )
        fleet.alive()
        assert_counted_once(fleet.base, competition, dict.fromkeys(tokens, len(ids) // 2))

    assert kills < 2 * KILLS, f"{kills} kills for {KILLS} claims cut off"
    late = {claim: round(s, 1) for claim, s in back.items() if s > RECOVERY_TARGET_S}
    assert len(back) == len(killed)
    assert late == {}, f"requeued later than {RECOVERY_TARGET_S} s after the kill"
    assert_scored_once(ids)
    # Each claim cut off counted one interruption (a live worker starved of its heartbeat
    # for the whole recovery time on a loaded machine may count one too).
    interrupted = Attempt.objects.filter(submission_id__in=ids, outcome="interrupted")
    assert {pk for pk, _ in killed} <= set(interrupted.values_list("submission_id", flat=True))


def test_beat_requeues_a_dead_workers_job_with_no_worker_free_to_run_the_reaper(
    tmp_path, organizer
):
    # Every worker busy or gone: before, the reaper's message waited in their queue, behind
    # the backlog, and nothing came back until a worker was free.
    competition, _ = _competition(organizer, teams=0, per_team=1)
    team = factories.team_for(competition, "orphans")
    dead = timezone.now() - timedelta(seconds=RECOVER_AFTER_S + 1)
    submission = factories.submission_row(team)
    submission.save()
    factories.claimed(submission, started_s_ago=(timezone.now() - dead).total_seconds())
    with redis_server(tmp_path / "broker") as broker:
        env = {**RECOVERY, "CELERY_BROKER_URL": broker.url()}
        with beat_process(tmp_path / "beat.log", env):
            until(
                lambda: Submission.objects.filter(pk=submission.pk, status="queued").exists(),
                "the requeue",
                RECOVERY_TARGET_S + 10,  # beat's own start
                [tmp_path / "beat.log"],
            )
            sent = OutboxMessage.objects.filter(args=[submission.pk])
            until(
                lambda: sent.exclude(sent_at=None).exists(),
                "the new message",
                10,
                [tmp_path / "beat.log"],
            )
    assert factories.outcomes(submission) == ["interrupted"]


def _terminate_backends() -> int:
    """Terminate every connection to this test database but this process's own."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def test_postgresql_connections_lost_mid_scoring_cost_no_submission_and_score_none_twice(
    tmp_path, on_s3, organizer
):
    assert connection.vendor == "postgresql", "this test terminates PostgreSQL backends"
    competition, tokens = _competition(organizer, teams=2, per_team=40)
    accepted: dict[int, str] = {}  # submission id: the uploader's token
    refused: list[tuple[int, str, str]] = []  # status, Retry-After, body
    stop = threading.Event()

    def stream(base: str) -> None:
        # A client that tries again after a refusal, as the 503's sentence asks.
        n = 0
        while not stop.is_set() and len(accepted) < 60:
            response = upload(base, tokens[n % 2], competition.slug, predictions(n))
            if response.status_code == 202:
                accepted[response.json()["id"]] = tokens[n % 2]
                n += 1
            else:
                retry = response.headers.get("Retry-After", "")
                refused.append((response.status_code, retry, response.text[:300]))
                time.sleep(0.2)

    with deployment(tmp_path, {**on_s3.env(), **RECOVERY}, HOSTS) as fleet:
        uploader = threading.Thread(target=stream, args=(fleet.base,), daemon=True)
        uploader.start()
        terminated = []
        try:
            for _ in range(4):
                until(
                    lambda: Submission.objects.filter(
                        pk__in=list(accepted), status="running"
                    ).exists(),
                    "a claim to cut off",
                    60,
                    fleet.logs,
                )
                terminated.append(_terminate_backends())
                time.sleep(1.5)
        finally:
            stop.set()
            uploader.join(timeout=60)
        # Given back and retried (Celery's first retries wait up to 5 and 10 s), or sent by
        # the outbox's next sweep: none waits for a lease or a resend (minutes).
        until(
            lambda: not unfinished(list(accepted)),
            "scoring after the cuts",
            STUCK_AFTER_S,
            fleet.logs,
        )
        fleet.alive()
        counts = {token: list(accepted.values()).count(token) for token in tokens}
        assert_counted_once(fleet.base, competition, counts)

    assert all(terminated), terminated
    # An upload that met a cut was refused as an outage, never a 500.
    assert [r for r in refused if r[:2] != (503, "30")] == []
    # Nothing but the accepted uploads became submissions (a 503 stored nothing).
    assert Submission.objects.filter(competition=competition).count() == len(accepted)
    assert_scored_once(list(accepted))
