"""Hostile container submissions on a real Docker engine.

Each image is built offline from the scorer image (tests/sandbox/hostile_images.py), saved
with the engine's own `docker save`, uploaded through the submission service and scored by
submission_score with the real DockerRunner. Each test asserts that the submission fails
cleanly, with a reason a participant can act on, and that the host is unharmed: no
container left (the autouse fixture of conftest.py), the engine answering, host files and
other images untouched. Hostile archives are refused before anything is stored or loaded.

Network rule: the only addresses any of this touches are 127.0.0.1 and ::1, and the
network scripts stop before sending anything if the container has any interface but `lo`.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import re
import socket
import tarfile
import time
import uuid
from pathlib import Path

import docker
import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile

from competitions.models import SandboxRun, Submission
from judging.images import DockerImages
from judging.services import submission_score
from scoring.sandbox import Mount, SandboxError
from scoring.scorers import InProcessScorer
from tests.sandbox import hostile_images as h
from tests.sandbox.hostile_setup import TEST_CSV, make_container_phase, submit_archive, truth_probe

pytestmark = pytest.mark.docker

LIMITS = {
    "memory_mb": 128,
    "pids": 32,
    "timeout_s": 5,
    "output_mb": 1,
    "log_kb": 4,
    "tmpfs_mb": 4,
}


@pytest.fixture(scope="module")
def base_image(docker_client, scorer_image) -> str:
    return h.slim_python_image(docker_client, scorer_image)


@pytest.fixture(scope="module")
def archives(docker_client, base_image, tmp_path_factory):
    """`archives(name, script, extra="")`: the saved archive of that hostile image."""
    folder = tmp_path_factory.mktemp("hostile")

    def archive(name: str, script: str, extra: str = "") -> Path:
        path = folder / f"{name}.tar"
        if not path.exists():
            tag = h.script_image(docker_client, base_image, name, script, extra)
            h.save_image(docker_client, tag, path)
        return path

    return archive


@pytest.fixture
def listener_port():
    """Host sockets listening on 127.0.0.1 and (where the host has it) ::1, on one port."""
    v4 = socket.create_server(("127.0.0.1", 0))
    port = v4.getsockname()[1]
    sockets = [v4]
    with contextlib.suppress(OSError):
        sockets.append(socket.create_server(("::1", port), family=socket.AF_INET6))
    for s in sockets:
        s.setblocking(False)
    yield port, sockets
    for s in sockets:
        s.close()


@pytest.fixture
def hostile_competition(competition, listener_port):
    port, _ = listener_port
    files = {
        "test.csv": TEST_CSV.encode(),
        "target.txt": str(port).encode(),
        "probe.txt": truth_probe(),
    }
    return make_container_phase(competition, files=files, limits=LIMITS)


@pytest.fixture
def run_hostile(hostile_competition, participant, runner, docker_client):
    """Submit an archive, score it for real; returns (submission, its inference run)."""
    loaded: list[str] = []

    def run(archive: Path) -> tuple[Submission, SandboxRun]:
        submission = submit_archive(hostile_competition, participant, archive)
        assert submission_score(
            submission_id=submission.pk, runner=runner, scorer=InProcessScorer()
        )
        submission.refresh_from_db()
        loaded.append(submission.container_image)
        docker_client.ping()  # the engine still answers
        return submission, SandboxRun.objects.get(submission=submission, stage="inference")

    yield run
    for tag in loaded:
        with contextlib.suppress(docker.errors.ImageNotFound, docker.errors.NullResource):
            docker_client.images.remove(tag)


def assert_failed(submission: Submission, reason: str) -> None:
    assert submission.status == Submission.Status.FAILED, submission.status
    assert submission.failure == Submission.Failure.ERROR
    assert submission.error_message.startswith(reason), submission.error_message
    assert not submission.predictions
    assert not submission.scores.exists()


# --- Hostile containers ------------------------------------------------------------------------


def test_network_egress_reaches_nothing_and_the_only_interface_is_loopback(
    run_hostile, archives, listener_port
):
    _, sockets = listener_port

    submission, run = run_hostile(archives("egress", h.NETWORK_EGRESS))

    assert_failed(submission, "Your container exited with code 1: ")
    assert "interfaces: lo\n" in run.log
    assert "connect to 127.0.0.1 port" in run.log
    assert "reached: nothing" in run.log
    for s in sockets:  # the host's loopback listeners never saw a connection
        with pytest.raises(BlockingIOError):
            s.accept()


def test_a_dns_lookup_fails_without_a_network(run_hostile, archives):
    submission, run = run_hostile(archives("dns", h.DNS_LOOKUP))

    assert_failed(submission, "Your container exited with code 1: ")
    assert "interfaces: lo\n" in run.log
    assert "lookup failed:" in run.log
    assert "resolved:" not in run.log


def test_a_fork_bomb_hits_the_process_limit(run_hostile, archives):
    submission, run = run_hostile(archives("fork-bomb", h.FORK_BOMB))

    assert_failed(submission, "Your container exited with code 1: ")
    children = int(run.log.split("fork refused after ")[1].split()[0])
    assert 0 < children < LIMITS["pids"]


def test_a_memory_hog_is_killed_at_the_memory_limit(run_hostile, archives):
    submission, run = run_hostile(archives("memory-hog", h.MEMORY_HOG))

    assert_failed(submission, "Your container exceeded memory limit of 128 MiB")
    assert run.oom_killed
    held = [int(line.split()[1]) for line in run.log.splitlines() if line.startswith("holding")]
    assert held
    assert max(held) <= 128


def test_a_cpu_spin_is_killed_at_the_time_limit_not_waited_for(run_hostile, archives):
    submission, run = run_hostile(archives("cpu-spin", h.CPU_SPIN))

    assert_failed(submission, "Your container exceeded time limit of 5 s")
    assert run.timed_out
    assert 5 <= run.duration_s < 15


def test_a_flood_of_stdout_keeps_only_the_logs_tail(run_hostile, archives):
    submission, run = run_hostile(archives("stdout-flood", h.HUGE_STDOUT))

    assert_failed(submission, "Your container exceeded time limit of 5 s")
    first, rest = run.log.split("\n", 1)
    assert first.startswith("[log truncated: ")
    assert int(first.split()[2]) > 10 * 1024**2  # megabytes went by ...
    assert len(rest.encode()) <= LIMITS["log_kb"] * 1024  # ... 4 KiB were kept


def test_a_huge_output_file_is_stopped_at_the_output_limit(run_hostile, archives):
    submission, run = run_hostile(archives("output-flood", h.HUGE_OUTPUT_FILE))

    assert_failed(submission, "Your container exceeded the output limit of 1 MiB")
    assert run.duration_s < LIMITS["timeout_s"]  # stopped by the file size cap, not the clock


def test_nothing_outside_the_output_folder_can_be_written(
    run_hostile, archives, hostile_competition
):
    test_file = hostile_competition.task.files.get(name="test.csv")
    before = Path(test_file.file.path).read_bytes()

    submission, run = run_hostile(archives("write-outside", h.WRITE_OUTSIDE_OUTPUT))

    assert_failed(submission, "Your container exited with code 1: ")
    assert "wrote nothing outside /output" in run.log
    assert "WROTE" not in run.log
    for target in (
        "/heldout-was-here",
        "/etc/passwd",
        "/app/run.py",
        "/usr/bin/python3",
        "/input/test/test.csv",
        "/input/test/new-file",
        "/input/heldout-was-here",
    ):
        refused = rf"^{re.escape(target)}: (Read-only file system|Permission denied)$"
        assert re.search(refused, run.log, re.MULTILINE), target
    assert Path(test_file.file.path).read_bytes() == before


def test_the_ground_truth_is_nowhere_in_an_inference_container(run_hostile, archives):
    submission, run = run_hostile(archives("truth-scan", h.TRUTH_SCAN))

    assert_failed(submission, "Your container exited with code 1: ")
    assert "truth found: nowhere" in run.log
    assert int(run.log.split("scanned ")[1].split()[0]) > 500
    mounts = run.log.split("mount points: ")[1].split("\n")[0].split()
    assert [m for m in mounts if m.startswith("/input")] == [
        "/input/test/probe.txt",
        "/input/test/target.txt",
        "/input/test/test.csv",
    ]


def test_the_truth_scan_finds_the_truth_when_it_is_mounted(
    runner, docker_client, base_image, hostile_competition, small_limits, tmp_path
):
    """The control for the test above: the same scan, with the truth mounted on purpose."""
    task = hostile_competition.task
    probe = task.files.get(name="probe.txt")
    image = h.script_image(docker_client, base_image, "truth-scan", h.TRUTH_SCAN)
    leak = tmp_path / "leak.csv"
    leak.write_bytes(Path(task.ground_truth.path).read_bytes())
    leak.chmod(0o644)

    result = runner.run(
        image=image,
        command=["/bin/sh", "-c", "cd /app && exec python3 run.py"],
        mounts=[Mount(Path(probe.file.path), "/input/test/probe.txt"), Mount(leak, "/srv/leak")],
        output_dir=tmp_path / "output",
        limits=small_limits,
    )

    assert "truth found: /srv/leak" in result.log


def test_a_setuid_root_binary_does_not_escalate(run_hostile, archives):
    archive = archives("setuid", h.SETUID_ESCALATION, h.SETUID_DOCKERFILE)

    submission, run = run_hostile(archive)

    assert_failed(submission, "Your container exited with code 1: ")
    assert "setuid-root copy of python ran with euid 65534" in run.log
    assert "setuid(0) refused" in run.log
    assert "ESCALATED" not in run.log


# --- Hostile archives ----------------------------------------------------------------------------


def upload(api, user, competition, data: bytes):
    url = f"/api/v1/competitions/{competition.slug}/submissions/"
    return api(user).post(url, {"file": SimpleUploadedFile("image.tar", data)})


def with_entries(archive: Path, extra: list) -> bytes:
    """The real archive with hostile entries added before its manifest."""
    with tarfile.open(archive) as tar:
        entries = [(i, tar.extractfile(i).read() if i.isreg() else None) for i in tar]  # type: ignore[union-attr]
    return h.tar_bytes(entries[:-1] + extra + entries[-1:])


def image_ids_in(data: bytes) -> set[str]:
    """The ids of every image the archive could hold: the sha256 of each of its files."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            files = [tar.extractfile(i).read() for i in tar if i.isreg()]  # type: ignore[union-attr]
    except tarfile.TarError:
        return set()
    return {f"sha256:{hashlib.sha256(content).hexdigest()}" for content in files}


@pytest.fixture
def ensure_refused(docker_client, tmp_path):
    """Hands the archive to the worker's loader; returns its SandboxError, having checked
    that the engine was never asked to load anything meanwhile."""

    def refuse(data: bytes, build_bases: list[str] | None = None) -> str:
        archive = tmp_path / f"{uuid.uuid4().hex}.tar"
        archive.write_bytes(data)
        images = DockerImages(docker_client, max_bytes=django_settings.HELDOUT_MAX_IMAGE_BYTES)
        since = time.time() - 1
        with pytest.raises(SandboxError) as refused:
            images.ensure(
                tag=f"heldout-submission:abuse-{uuid.uuid4().hex[:8]}",
                archive=archive,
                build_bases=build_bases,
            )
        until = time.time() + 1
        loads = docker_client.events(
            since=since, until=until, decode=True, filters={"type": "image", "event": "load"}
        )
        # Other test sessions may share the engine: only this archive's images count.
        assert {event["id"] for event in loads} & image_ids_in(data) == set()
        return str(refused.value)

    return refuse


def test_an_archive_with_a_path_traversal_entry_is_refused_and_writes_nothing(
    api, participant, hostile_competition, archives, ensure_refused, tmp_path
):
    target = tmp_path / "escaped"
    hostile = with_entries(
        archives("predict", h.PREDICT),
        [h.file_entry(f"../../../../../../..{target}", b"x"), h.file_entry(str(target), b"x")],
    )

    response = upload(api, participant, hostile_competition, hostile)

    assert response.status_code == 400
    assert [p["code"] for p in response.json()["problems"]] == ["path_escape", "path_escape"]
    assert not Submission.objects.exists()
    assert "points outside the archive" in ensure_refused(hostile)
    assert not target.exists()


def test_an_archive_with_a_symlink_pointing_outside_is_refused(
    api, participant, hostile_competition, archives, ensure_refused
):
    hostile = with_entries(
        archives("predict", h.PREDICT),
        [h.link_entry("etc-passwd", "/etc/passwd"), h.link_entry("up", "../../..")],
    )

    response = upload(api, participant, hostile_competition, hostile)

    assert response.status_code == 400
    problems = response.json()["problems"]
    assert [p["code"] for p in problems] == ["link_escape", "link_escape"]
    assert (
        "'etc-passwd' is a symbolic link to '/etc/passwd', outside the archive"
        in problems[0]["message"]
    )
    assert "is a symbolic link" in ensure_refused(hostile)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\x7fELF" + bytes(range(256)) * 40, "not_tar"),
        (h.tar_bytes([h.file_entry("Dockerfile", b"FROM scratch\n")]), "no_manifest"),
        (
            h.tar_bytes([h.file_entry("manifest.json", b'[{"Config": "c.json", "Layers": []}]')]),
            "missing_config",
        ),
    ],
    ids=["random-bytes", "tar-without-manifest", "manifest-without-config"],
)
def test_something_that_is_not_an_image_is_refused(
    api, participant, hostile_competition, ensure_refused, data, code
):
    response = upload(api, participant, hostile_competition, data)

    assert response.status_code == 400
    assert [p["code"] for p in response.json()["problems"]] == [code]
    assert ensure_refused(data).startswith("The image archive was refused: ")


def test_two_images_in_one_archive_are_refused(
    api, participant, hostile_competition, archives, ensure_refused
):
    both = h.merged_archive(
        archives("predict", h.PREDICT).read_bytes(), archives("cpu-spin", h.CPU_SPIN).read_bytes()
    )

    response = upload(api, participant, hostile_competition, both)

    assert response.status_code == 400
    assert "holds 2 images; save exactly one" in response.json()["problems"][0]["message"]
    assert "holds 2 images" in ensure_refused(both)


def test_an_image_declaring_a_volume_is_refused(
    api, participant, hostile_competition, archives, ensure_refused
):
    archive = archives("volume", h.PREDICT, "VOLUME /data")

    response = upload(api, participant, hostile_competition, archive.read_bytes())

    assert response.status_code == 400
    assert [p["code"] for p in response.json()["problems"]] == ["volume"]
    assert "declares VOLUME" in ensure_refused(archive.read_bytes())


def test_a_build_context_that_would_run_code_or_fetch_is_refused(
    api, participant, hostile_competition, ensure_refused, settings
):
    phase = hostile_competition.phases.get()
    phase.allow_build_context = True
    phase.save()
    # An image the platform offers (CI names the scorer image by its content tag).
    base = settings.HELDOUT_SCORER_IMAGES[0]
    dockerfile = (
        f"FROM {base}\n"
        "RUN python -c 'import os; os.system(\"cat /etc/shadow\")'\n"
        "ADD https://example.org/weights.bin /app/\n"
        "FROM alpine:3\n"
        'CMD ["sh"]\n'
    )
    context = h.tar_bytes([h.file_entry("Dockerfile", dockerfile.encode())])

    response = upload(api, participant, hostile_competition, context)

    assert response.status_code == 400
    messages = [p["message"] for p in response.json()["problems"]]
    assert len(messages) == 3
    assert "line 2: RUN is not allowed" in messages[0]
    assert "line 3: ADD may not fetch URLs" in messages[1]
    assert "line 4: FROM alpine:3 is not an image the platform offers" in messages[2]
    assert not Submission.objects.exists()
    assert "RUN is not allowed" in ensure_refused(context, [base])


def test_a_layer_that_is_a_decompression_bomb_is_refused(
    api, participant, hostile_competition, ensure_refused, settings
):
    settings.HELDOUT_MAX_IMAGE_BYTES = 64 * 1024**2
    bomb = gzip.compress(h.layer({"zeros": bytes(256 * 1024**2)}), 9)
    hostile = h.legacy_archive([bomb], config=h.image_config([bomb]))
    assert len(hostile) < 1024**2

    response = upload(api, participant, hostile_competition, hostile)

    assert response.status_code == 400
    assert [p["code"] for p in response.json()["problems"]] == ["too_large_unpacked"]
    assert "unpacks to more than" in ensure_refused(hostile)


def test_an_archive_naming_a_platform_image_cannot_replace_it(
    docker_client, archives, base_image, tmp_path
):
    # A stand-in for heldout-scorer:latest, whose real tag other builds may move meanwhile.
    victim = f"heldout-abuse-victim:{uuid.uuid4().hex[:8]}"
    docker_client.images.get(base_image).tag(*victim.split(":"))
    victim_id = docker_client.images.get(victim).id
    with tarfile.open(archives("predict", h.PREDICT)) as tar:
        entries = []
        for info in tar:
            data = tar.extractfile(info).read() if info.isreg() else None  # type: ignore[union-attr]
            if info.name == "manifest.json":
                assert data is not None
                manifest = json.loads(data)
                manifest[0]["RepoTags"] = [victim, "heldout-scorer:latest"]
                info, data = h.file_entry("manifest.json", json.dumps(manifest).encode())
            elif info.name == "repositories":
                name, tag = victim.split(":")
                info, data = h.file_entry("repositories", json.dumps({name: {tag: "x"}}).encode())
            entries.append((info, data))
    archive = tmp_path / "impostor.tar"
    archive.write_bytes(h.tar_bytes(entries))
    tag = f"heldout-submission:abuse-{uuid.uuid4().hex[:8]}"

    try:
        image = DockerImages(docker_client, max_bytes=2**32).ensure(tag=tag, archive=archive)

        assert docker_client.images.get(victim).id == victim_id != image.digest
        assert docker_client.images.get("heldout-scorer:latest").id != image.digest
    finally:
        docker_client.images.remove(victim)
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(tag)
