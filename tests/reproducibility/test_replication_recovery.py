"""A replication whose real worker is SIGKILLed while the container runs: the reaper puts it
back in the queue once its heartbeat is old, and another worker replicates it. Real Celery
workers and `celery beat` on PostgreSQL and the broker, a real Docker engine."""

from __future__ import annotations

import signal
import socket
from contextlib import ExitStack

import pytest

from competitions.models import Replication, Submission
from competitions.services.replications import replication_request
from competitions.services.teams import competition_join
from judging.services import submission_score
from scoring.sandbox_docker import DockerRunner
from scoring.sandbox_labels import OWNER_LABEL
from tests import factories
from tests.reproducibility.test_replication import DETERMINISTIC, _container_phase, _submit_image
from tests.sandbox import hostile_images as images
from tests.worker_process import beat_process, until, worker_process

pytestmark = [
    pytest.mark.docker,
    pytest.mark.celery_worker,
    pytest.mark.django_db(transaction=True),
]

RECOVER_AFTER_S = 6
RECOVERY = {
    "HELDOUT_HEARTBEAT_S": "1",
    "HELDOUT_RECOVER_AFTER_S": str(RECOVER_AFTER_S),
    "HELDOUT_REAP_EVERY_S": "1",
}
# Takes a few seconds, so the worker can be killed while it runs.
SLOW = DETERMINISTIC.replace("import csv", "import csv, time\ntime.sleep(4)")


def test_a_replication_whose_worker_is_sigkilled_is_replicated_by_another(
    tmp_path, docker_client, scorer_image, organizer, participant
):
    competition = factories.make_competition(organizers=[organizer])
    competition_join(competition=competition, user=participant, accept_rules=True)
    _container_phase(competition, docker_client.images.get(scorer_image).id)
    base = images.slim_python_image(docker_client, scorer_image)
    tag = images.script_image(docker_client, base, "replicate-slow", SLOW)
    archive = images.save_image(docker_client, tag, tmp_path / "slow.tar")
    submission = _submit_image(competition, participant, archive)
    submission_score(submission_id=submission.pk, runner=DockerRunner(docker_client))
    submission.refresh_from_db()
    assert submission.status == Submission.Status.SCORED, submission.error_message

    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log", tmp_path / "beat.log"]
    with ExitStack() as stack:
        stack.enter_context(beat_process(logs[2], RECOVERY))
        doomed = stack.enter_context(worker_process(logs[0], RECOVERY))
        replication = replication_request(submission=submission, user=organizer)
        owner = f"{OWNER_LABEL}={socket.gethostname()}:{doomed.pid}"

        def running() -> bool:
            containers = docker_client.containers.list(filters={"label": owner})
            status = Replication.objects.values_list("status", flat=True).get(pk=replication.pk)
            return status == "running" and bool(containers)

        until(running, "the replication's container", 90, logs)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
        stack.enter_context(worker_process(logs[1], RECOVERY))
        until(
            lambda: Replication.objects.get(pk=replication.pk).status in ("done", "failed"),
            "the replication by the second worker",
            120,
            logs,
        )
        for container in docker_client.containers.list(all=True, filters={"label": owner}):
            container.remove(force=True)  # the dead worker's, left to run out

    replication.refresh_from_db()
    assert (replication.status, replication.outcome) == ("done", "reproduced"), (
        replication.error_message
    )
    assert replication.interruptions == 1
    assert replication.new_run is not None
