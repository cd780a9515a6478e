"""Warm scorers (scoring.warm): the cold scorer's results, nothing of one submission in the
next, the sandbox's limits, replacement of a dead container, idle expiry, clean-up after a
killed worker. Real containers of the scorer image (it must hold scoring.warm_server)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from competitions.models import Attempt, SandboxRun
from competitions.sandboxes import sandbox_runner
from competitions.services.submissions import submission_create
from judging.services import docker_available, submission_score
from scoring.docker_scorer import COMMAND, DockerScorer
from scoring.sandbox import Mount, SandboxLimits
from scoring.sandbox_docker import DockerRunner
from scoring.sandbox_labels import (
    DEADLINE_LABEL,
    DEPLOYMENT_LABEL,
    OWNER_LABEL,
    SANDBOX_LABEL,
    STARTED_LABEL,
    WARM_LABEL,
    _is_stale,
    process_started,
)
from scoring.spec import TaskSpec
from scoring.warm import WarmDockerRunner, builtin_request, warm_folders_cleanup
from tests import factories
from tests.sandbox import hostile_images as h

ROOT = Path(__file__).resolve().parents[2]
SPEC = TaskSpec(
    id_column="id",
    target_columns=("target",),
    task_type="binary",
    primary_metric="roc_auc",
    secondary_metrics=("log_loss", "accuracy"),
)
LIMITS = SandboxLimits(
    memory_bytes=512 * 1024**2, cpus=1.0, pids=64, timeout_s=60, log_bytes=16 * 1024
)

# Stands in for scoring.cli in a probe image: reports what a child of the warm server can
# see and do (on stdout, so in the run's log), and leaves all it can behind.
PROBE_CLI = r"""
import errno, json, os, socket, time

def main(argv=None, *, preloaded=None):
    def attempt(action):
        try:
            action()
            return "allowed"
        except OSError as exc:
            return errno.errorcode.get(exc.errno, str(exc.errno))

    predictions = open("/input/predictions").read()
    seen = {
        "pid": os.getpid(),
        "uid": os.getuid(),
        "preloaded": preloaded is not None,
        "predictions": predictions,
        "tmp": sorted(os.listdir("/tmp")),
        "shm": sorted(os.listdir("/dev/shm")),
        "output": sorted(os.listdir("/output")),
        "input": sorted(os.listdir("/input")),
        "processes": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        "interfaces": sorted(os.listdir("/sys/class/net")),
        "server_memory": attempt(lambda: open("/proc/1/mem", "rb").close()),
        "server_fds": attempt(lambda: os.listdir("/proc/1/fd")),
        "write_root": attempt(lambda: open("/opt/heldout/left", "w").close()),
    }
    started = time.monotonic()
    sock = socket.socket()
    sock.settimeout(10)
    seen["connect"] = attempt(lambda: sock.connect(("1.1.1.1", 53)))
    seen["connect_s"] = time.monotonic() - started
    for path in (f"/tmp/left-{os.getpid()}", "/dev/shm/left", "/output/left"):
        with open(path, "w") as f:
            f.write(predictions)
    if os.fork() == 0:  # a process that would outlive the submission
        os.setsid()
        time.sleep(3600)
    print(json.dumps(seen), flush=True)
    if predictions.startswith("sleep"):
        time.sleep(3600)
    if predictions.startswith("hog"):
        hog = b"x" * (1024**3)
    return 0
"""


@pytest.fixture(scope="module")
def probe_image(docker_client: docker.DockerClient, scorer_image: str) -> str:
    scorer_id = docker_client.images.get(scorer_image).id
    return h.build_image(
        docker_client,
        name="warm-probe",
        dockerfile=f"FROM {scorer_id}\nCOPY cli.py /opt/heldout/scoring/cli.py\n",
        files={"cli.py": PROBE_CLI.encode()},
        scorer_id=scorer_id,
    )


@pytest.fixture
def warm_runner(docker_client, tmp_path: Path) -> Iterator[WarmDockerRunner]:
    runner = WarmDockerRunner(docker_client, root=tmp_path / "warm", idle_s=600)
    yield runner
    runner.close()


@pytest.fixture
def task_files(tmp_path: Path) -> tuple[Path, Path]:
    """A 300-row binary task: (predictions, truth); the truth private, like stored."""
    truth_lines, prediction_lines = ["id,target,Usage"], ["id,target"]
    for i in range(300):
        label = int(i % 3 == 0)
        truth_lines.append(f"{i},{label},{'Public' if i % 2 else 'Private'}")
        prediction_lines.append(f"{i},{(0.3 + 0.4 * label + (i * 37 % 100) / 300) % 1:.4f}")
    truth, predictions = tmp_path / "truth.csv", tmp_path / "predictions.csv"
    truth.write_text("\n".join(truth_lines) + "\n")
    predictions.write_text("\n".join(prediction_lines) + "\n")
    truth.chmod(0o600)
    return predictions, truth


def _score(runner: DockerRunner, image: str, files: tuple[Path, Path], folder: Path):
    workdir = folder
    workdir.mkdir(mode=0o700, parents=True)
    scorer = DockerScorer(runner=runner, image=image, limits=LIMITS)
    outcome = scorer.score(
        predictions_path=files[0], truth_path=files[1], spec=SPEC, workdir=workdir
    )
    return outcome, workdir / "output"


def _probe(
    runner: WarmDockerRunner,
    image: str,
    tmp_path: Path,
    name: str,
    content: str,
    limits: SandboxLimits = LIMITS,
):
    """One warm run of the probe on a predictions file holding `content`."""
    folder = tmp_path / name
    folder.mkdir()
    truth = "id,target,Usage\n1,1,Public\n2,0,Private\n"
    spec = json.dumps(SPEC.to_dict())
    for file, text in (("spec.json", spec), ("predictions", content), ("truth", truth)):
        (folder / file).write_text(text)
        (folder / file).chmod(0o644)
    mounts = [
        Mount(folder / file, f"/input/{file}") for file in ("spec.json", "predictions", "truth")
    ]
    return runner.run(
        image=image,
        command=COMMAND,
        mounts=mounts,
        output_dir=folder / "output",
        limits=limits,
    )


def _seen(result) -> dict:
    line = next(line for line in result.log.splitlines() if line.startswith("{"))
    return json.loads(line)


def _warm_containers(client: docker.DockerClient) -> list:
    mine = f"{OWNER_LABEL}={socket.gethostname()}:{os.getpid()}"
    return client.containers.list(all=True, filters={"label": [SANDBOX_LABEL, WARM_LABEL, mine]})


@pytest.mark.docker
def test_warm_scoring_writes_the_cold_scorers_result_byte_for_byte(
    docker_client, scorer_image, warm_runner, task_files, tmp_path
):
    cold, cold_out = _score(DockerRunner(docker_client), scorer_image, task_files, tmp_path / "c")
    first, first_out = _score(warm_runner, scorer_image, task_files, tmp_path / "w1")
    second, second_out = _score(warm_runner, scorer_image, task_files, tmp_path / "w2")

    assert len(_warm_containers(docker_client)) == 1  # the second run was served warm
    for name in ("result.json", "rows.npy"):
        expected = (cold_out / name).read_bytes()
        assert (first_out / name).read_bytes() == expected
        assert (second_out / name).read_bytes() == expected
    assert first.scorer_image == second.scorer_image == cold.scorer_image
    assert first.evaluation.scores == cold.evaluation.scores
    assert first.log == cold.log == ""


@pytest.mark.docker
def test_an_invalid_file_gets_the_cold_scorers_problems(
    docker_client, scorer_image, warm_runner, task_files, tmp_path
):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,target\n1,not-a-number\n1,0.5\n")
    files = (bad, task_files[1])
    cold, cold_out = _score(DockerRunner(docker_client), scorer_image, files, tmp_path / "c")
    _warm, warm_out = _score(warm_runner, scorer_image, files, tmp_path / "w")

    assert not cold.evaluation.ok
    assert (warm_out / "result.json").read_bytes() == (cold_out / "result.json").read_bytes()


@pytest.mark.docker
def test_two_consecutive_submissions_see_nothing_of_each_other(
    docker_client, probe_image, warm_runner, tmp_path
):
    first = _seen(_probe(warm_runner, probe_image, tmp_path, "one", "first team's secret"))
    second = _seen(_probe(warm_runner, probe_image, tmp_path, "two", "second team's file"))

    assert len(_warm_containers(docker_client)) == 1
    assert first["preloaded"] is second["preloaded"] is True
    assert second["predictions"] == "second team's file"
    assert second["pid"] != first["pid"]
    # Only its own scratch folder and output folder, none of the first one's leftovers...
    # (each is named by the run's id).
    assert len(second["output"]) == 1
    assert second["tmp"] == second["output"] != first["output"]
    assert second["shm"] == []
    # ...and no process but the server and itself: the first one's background one is gone.
    assert second["processes"] == [1, second["pid"]]
    assert second["input"] == ["predictions", "spec.json", "truth"]
    # Nor can a child reach into the server, which holds the protocol.
    assert first["server_memory"] in ("EACCES", "EPERM")
    assert first["server_fds"] in ("EACCES", "EPERM")


@pytest.mark.docker
def test_the_warm_container_keeps_the_sandbox_limits(
    docker_client, probe_image, warm_runner, tmp_path
):
    seen = _seen(_probe(warm_runner, probe_image, tmp_path, "one", "x"))

    assert seen["uid"] == 65534
    assert seen["interfaces"] == ["lo"]
    assert seen["connect"] in ("ENETUNREACH", "EHOSTUNREACH", "EPERM", "EACCES")
    assert seen["connect_s"] < 1
    assert seen["write_root"] == "EROFS"
    (container,) = _warm_containers(docker_client)
    host = container.attrs["HostConfig"]
    assert container.attrs["Config"]["User"] == "65534:65534"
    assert host["NetworkMode"] == "none"
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert host["Memory"] == LIMITS.memory_bytes
    assert host["MemorySwap"] == LIMITS.memory_bytes
    assert host["PidsLimit"] == LIMITS.pids
    assert host["NanoCpus"] == int(LIMITS.cpus * 1e9)
    assert "no-new-privileges" in host["SecurityOpt"]
    assert any(option.startswith("seccomp=") for option in host["SecurityOpt"])


@pytest.mark.docker
def test_a_run_past_the_time_limit_is_killed_and_its_container_replaced(
    docker_client, probe_image, warm_runner, tmp_path
):
    _probe(warm_runner, probe_image, tmp_path, "one", "x")
    (container,) = _warm_containers(docker_client)
    limits = dataclasses.replace(LIMITS, timeout_s=2)
    started = time.monotonic()

    result = _probe(warm_runner, probe_image, tmp_path, "two", "sleep", limits=limits)

    assert result.timed_out is True
    assert 2 <= time.monotonic() - started < 15
    assert result.failure_reason(limits) == "exceeded time limit of 2 s"
    assert _seen(result)["processes"][0] == 1  # it ran warm, and printed before its sleep
    # In doubt, the container is not kept.
    assert warm_runner.warm_containers() == 0
    with pytest.raises(docker.errors.NotFound):
        container.reload()


@pytest.mark.docker
def test_a_run_past_the_memory_limit_is_killed_and_reported(
    docker_client, probe_image, warm_runner, tmp_path
):
    result = _probe(warm_runner, probe_image, tmp_path, "one", "hog")

    assert result.oom_killed is True
    assert result.failure_reason(LIMITS) == "exceeded memory limit of 512 MiB"
    assert _seen(result)["processes"][0] == 1  # it ran warm
    assert warm_runner.warm_containers() == 0


@pytest.mark.docker
def test_a_killed_warm_container_is_replaced_and_the_submission_still_scores(
    docker_client, scorer_image, warm_runner, task_files, tmp_path
):
    expected, _ = _score(warm_runner, scorer_image, task_files, tmp_path / "w1")
    (killed,) = _warm_containers(docker_client)
    killed.kill()

    outcome, output = _score(warm_runner, scorer_image, task_files, tmp_path / "w2")

    assert outcome.evaluation.scores == expected.evaluation.scores
    assert (output / "result.json").is_file()
    # Scored once, in a fresh container; the next submission gets a new warm one.
    _score(warm_runner, scorer_image, task_files, tmp_path / "w3")
    (replacement,) = _warm_containers(docker_client)
    assert replacement.id != killed.id


@pytest.mark.docker
def test_an_idle_warm_container_is_removed(docker_client, scorer_image, task_files, tmp_path):
    runner = WarmDockerRunner(docker_client, root=tmp_path / "warm", idle_s=1)
    try:
        _score(runner, scorer_image, task_files, tmp_path / "w1")
        assert len(_warm_containers(docker_client)) == 1
        deadline = time.monotonic() + 30
        while _warm_containers(docker_client) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _warm_containers(docker_client) == []
        assert runner.warm_containers() == 0
        assert list((tmp_path / "warm").iterdir()) == []  # its /input folder went too
    finally:
        runner.close()


@pytest.mark.docker
def test_an_image_without_a_warm_server_scores_cold(
    docker_client, scorer_image, task_files, tmp_path
):
    scorer_id = docker_client.images.get(scorer_image).id
    old = h.build_image(
        docker_client,
        name="no-warm-server",
        dockerfile=f"FROM {scorer_id}\nUSER 0\nRUN rm /opt/heldout/scoring/warm_server.py\n"
        "USER 65534\n",
        files={},
        scorer_id=scorer_id,
    )
    runner = WarmDockerRunner(docker_client, root=tmp_path / "warm", idle_s=600)
    try:
        outcome, _output = _score(runner, old, task_files, tmp_path / "w")
        assert outcome.evaluation.ok
        assert runner.warm_containers() == 0
    finally:
        runner.close()


# Scores once warm as a worker would, says so, and waits to be SIGKILLed.
_DOOMED_WORKER = """
import sys
from pathlib import Path
from scoring.docker_scorer import DockerScorer
from scoring.sandbox import SandboxLimits
from scoring.spec import TaskSpec
from scoring.warm import WarmDockerRunner

image, predictions, truth, root, workdir = sys.argv[1:]
spec = TaskSpec(id_column="id", target_columns=("target",), task_type="binary",
                primary_metric="roc_auc")
runner = WarmDockerRunner(deployment="warm-doomed", root=Path(root))
scorer = DockerScorer(runner=runner, image=image, limits=SandboxLimits(timeout_s=60))
scorer.score(predictions_path=Path(predictions), truth_path=Path(truth), spec=spec,
             workdir=Path(workdir))
print("scored", flush=True)
sys.stdin.read()
"""


@pytest.mark.docker
def test_the_warm_container_of_a_killed_worker_goes_with_it(
    docker_client, scorer_image, task_files, tmp_path
):
    workdir = tmp_path / "work"
    workdir.mkdir(mode=0o700)
    root = tmp_path / "warm"
    proc = subprocess.Popen(
        [sys.executable, "-c", _DOOMED_WORKER, scorer_image, *map(str, task_files), str(root),
         str(workdir)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"scored\n"
        owner = f"{OWNER_LABEL}={socket.gethostname()}:{proc.pid}"
        (container,) = docker_client.containers.list(filters={"label": [WARM_LABEL, owner]})
        labels = container.labels
        assert not _is_stale(labels, "running", time.time(), 30)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # Its server reads the end of its stdin and stops; the engine removes it.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            docker_client.containers.get(container.id)
        except docker.errors.NotFound:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the warm container outlived its worker by 30 s")
    # A clean-up on this host would have taken it anyway, and takes its /input folder.
    assert _is_stale(labels, "running", time.time(), 30)
    assert warm_folders_cleanup(root) == 1
    assert list(root.iterdir()) == []


@pytest.mark.docker
def test_the_clean_up_removes_a_warm_container_whose_worker_process_is_gone(
    docker_client, scorer_image
):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, check=True)  # fmt: skip
    deployment = f"warm-cleanup-{os.getpid()}"
    now = time.time()
    leftover = docker_client.containers.run(
        scorer_image,
        ["sleep", "600"],
        network_mode="none",
        detach=True,
        labels={
            SANDBOX_LABEL: "1",
            DEPLOYMENT_LABEL: deployment,
            OWNER_LABEL: f"{socket.gethostname()}:{int(gone.stdout)}",
            WARM_LABEL: "12345",
            STARTED_LABEL: f"{now:.0f}",
            DEADLINE_LABEL: f"{now + 3600:.0f}",  # an hour left: only its owner says stale
        },
    )
    try:
        assert DockerRunner(docker_client, deployment=deployment).cleanup_stale() == 1
        with pytest.raises(docker.errors.NotFound):
            leftover.reload()
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            leftover.remove(force=True)


@pytest.mark.docker
def test_a_worker_scores_submissions_one_after_the_other_in_one_warm_container(
    docker_client, scorer_image, settings, competition, participant
):
    settings.HELDOUT_SCORER = "docker"
    settings.HELDOUT_SCORER_IMAGE = scorer_image
    settings.HELDOUT_SANDBOX_WARM = True
    docker_available.cache_clear()
    ids = []
    for _ in range(3):
        upload = factories.upload(factories.perfect_predictions())
        submission = submission_create(
            competition=competition, user=participant, uploaded_file=upload
        )
        assert submission_score(submission_id=submission.pk) is True
        ids.append(submission.pk)
        runner = sandbox_runner()
        assert isinstance(runner, WarmDockerRunner)
        assert runner.warm_containers() == 1

    digest = docker_client.images.get(scorer_image).id
    rows = Attempt.objects.filter(submission_id__in=ids).values_list("outcome", "scorer_image")
    assert set(rows) == {("scored", f"{scorer_image}@{digest}")}
    assert SandboxRun.objects.filter(submission_id__in=ids).count() == 3  # one run each


def test_a_warm_container_of_a_live_owner_is_stale_only_past_its_deadline():
    me = {
        SANDBOX_LABEL: "1",
        OWNER_LABEL: f"{socket.gethostname()}:{os.getpid()}",
        WARM_LABEL: process_started(os.getpid()),
        DEADLINE_LABEL: f"{time.time() + 100:.0f}",
    }
    assert not _is_stale(me, "running", time.time(), 30)
    assert _is_stale(me, "running", time.time() + 200, 30)
    reused = {**me, WARM_LABEL: "1"}  # the pid now belongs to another process
    assert _is_stale(reused, "running", time.time(), 30)
    elsewhere = {**me, OWNER_LABEL: f"another-host:{os.getpid()}", WARM_LABEL: "1"}
    assert not _is_stale(elsewhere, "running", time.time(), 30)


def test_only_the_builtin_scorers_command_is_served_warm(tmp_path):
    files = {name: tmp_path / name for name in ("spec.json", "predictions", "truth")}
    mounts = [Mount(path, f"/input/{name}") for name, path in files.items()]
    request = builtin_request([*COMMAND, "--max-problems", "7"], mounts)
    assert request is not None
    assert (request.predictions, request.max_problems) == (files["predictions"], 7)
    assert builtin_request(["python", "/program/score.py"], mounts) is None
    extra = [*mounts, Mount(tmp_path, "/program")]
    assert builtin_request(COMMAND, extra) is None
    assert builtin_request([*COMMAND, "--max-problems", "x"], mounts) is None


def test_warm_scorers_are_on_by_default_and_a_setting_turns_them_off(settings):
    sandbox_runner.cache_clear()
    try:
        assert isinstance(sandbox_runner(), WarmDockerRunner)
        settings.HELDOUT_SANDBOX_WARM = False
        sandbox_runner.cache_clear()
        assert type(sandbox_runner()) is DockerRunner
    finally:
        sandbox_runner.cache_clear()
