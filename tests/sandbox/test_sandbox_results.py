"""The parts of the sandbox that need no engine: results, logs, outputs, the fake."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from scoring.sandbox import Mount, RunResult, SandboxLimits, SandboxUnavailable
from scoring.sandbox_docker import SECCOMP_PROFILE, seccomp_profile
from scoring.sandbox_fake import FakeRunner
from scoring.sandbox_log import LogTail
from scoring.sandbox_output import PAGE_BYTES, copy_output, tmpfs_options, tmpfs_size
from tests.sandbox.hostile_images import (
    dir_entry,
    file_entry,
    link_entry,
    special_entry,
    tar_bytes,
)

LIMITS = SandboxLimits()


def result(**changes) -> RunResult:
    fields = {
        "exit_code": 0,
        "timed_out": False,
        "oom_killed": False,
        "duration_s": 1.0,
        "peak_memory_bytes": None,
        "log": "",
        "output_truncated": False,
        "image": "heldout-scorer:test",
        "image_digest": "sha256:abc",
    }
    return RunResult(**(fields | changes))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({}, None),
        ({"oom_killed": True, "exit_code": 137}, "exceeded memory limit of 2 GiB"),
        ({"timed_out": True, "exit_code": 137}, "exceeded time limit of 600 s"),
        ({"output_truncated": True}, "exceeded the output limit of 64 MiB"),
        (
            {"exit_code": 1, "log": "a\n\nb\nValueError: bad\n"},
            "exited with code 1: a\nb\nValueError: bad",
        ),
        ({"exit_code": 2}, "exited with code 2: (no output)"),
        ({"exit_code": None}, "stopped without an exit code"),
    ],
)
def test_failure_reason_names_the_limit_or_the_exit(changes, reason):
    run = result(**changes)

    assert run.failure_reason(LIMITS) == reason
    assert run.ok is (reason is None)


def test_failure_reason_keeps_only_the_last_lines_of_the_log():
    log = "".join(f"line {i}\n" for i in range(100))

    reason = result(exit_code=1, log=log).failure_reason(LIMITS)

    assert reason == "exited with code 1: line 95\nline 96\nline 97\nline 98\nline 99"


def test_failure_reason_shows_fractional_limits():
    limits = SandboxLimits(memory_bytes=1536 * 1024**2, timeout_s=2.5)

    assert result(oom_killed=True).failure_reason(limits) == "exceeded memory limit of 1.5 GiB"
    assert result(timed_out=True).failure_reason(limits) == "exceeded time limit of 2.5 s"


def test_the_log_tail_keeps_short_logs_whole_and_takes_out_the_peak_memory_line():
    tail = LogTail(limit=100)
    tail.feed(b"hello\n")
    tail.feed(b"heldout-sandbox-peak-memory-bytes=12345\n")

    assert tail.finish() == ("hello\n", 12345)


def test_the_log_tail_cuts_long_logs_and_says_so():
    tail = LogTail(limit=10)
    for _ in range(100):
        tail.feed(b"0123456789")
    tail.feed(b"heldout-sandbox-peak-memory-bytes=7\n")

    log, peak = tail.finish()

    assert log == "[log truncated: 990 earlier bytes not kept]\n0123456789"
    assert peak == 7


def test_the_log_tail_survives_a_cut_in_the_middle_of_a_character():
    tail = LogTail(limit=3)
    tail.feed("ééé".encode())

    log, peak = tail.finish()

    assert log.endswith("\ufffd\u00e9")
    assert peak is None


def output_tar(*entries: tuple[tarfile.TarInfo, bytes | None]) -> list[bytes]:
    """A tar like the engine's archive of /output, in small chunks."""
    data = tar_bytes([dir_entry("output"), *entries])
    return [data[i : i + 1000] for i in range(0, len(data), 1000)]


def test_copied_output_keeps_files_and_folders_and_drops_links_and_special_files(tmp_path):
    chunks = output_tar(
        file_entry("output/result.json", b"{}", mode=0o6700),
        dir_entry("output/sub"),
        file_entry("output/sub/rows.csv", b"a\n", mode=0o000),
        link_entry("output/secret", "/etc/shadow"),
        link_entry("output/hard", "/etc/passwd", hard=True),
        special_entry("output/device"),
        file_entry("output/../escaped", b"x"),
    )

    over = copy_output(chunks, tmp_path / "out", 1024**2)

    assert not over
    files = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*"))
    assert files == ["result.json", "sub", "sub/rows.csv"]
    # Readable and deletable by the worker whatever modes the sandbox gave them.
    assert (tmp_path / "out" / "result.json").stat().st_mode & 0o7777 == 0o644
    assert (tmp_path / "out" / "sub" / "rows.csv").read_bytes() == b"a\n"
    assert not (tmp_path / "escaped").exists()


def test_copied_output_over_the_limit_is_reported_and_not_read_to_the_end(tmp_path):
    big = [file_entry(f"output/part{i}", b"x" * 400_000) for i in range(4)]

    assert copy_output(output_tar(*big), tmp_path / "out", 1024**2)


def test_copied_output_counts_files_in_tmpfs_pages(tmp_path):
    # 300 one-byte files use 300 pages of the tmpfs, far more than their 300 bytes.
    tiny = [file_entry(f"output/f{i}", b"x") for i in range(300)]

    assert copy_output(output_tar(*tiny), tmp_path / "out", 1024**2 // 4)
    assert not copy_output(output_tar(*tiny), tmp_path / "out2", 300 * PAGE_BYTES)


def test_a_sandbox_tmpfs_is_one_page_over_its_limit_and_owned_by_the_sandbox_user():
    assert tmpfs_size(1024**2) == 1024**2 + PAGE_BYTES
    assert tmpfs_size(1000) == 2 * PAGE_BYTES
    assert tmpfs_options(1024**2) == f"size={1024**2 + PAGE_BYTES},uid=65534,gid=65534"


def test_the_fake_runner_records_calls_and_runs_its_behaviour(tmp_path):
    runner = FakeRunner(behaviour=lambda call: (call.output_dir / "result.json").write_text("{}"))
    mounts = [Mount(tmp_path / "in", "/input/data")]

    run = runner.run(
        image="img",
        command=["python", "-V"],
        mounts=mounts,
        output_dir=tmp_path / "out",
        limits=LIMITS,
        labels={"k": "v"},
    )

    assert run.ok
    assert (tmp_path / "out" / "result.json").read_text() == "{}"
    (call,) = runner.calls
    assert (call.image, call.command, call.labels) == ("img", ["python", "-V"], {"k": "v"})
    assert call.host_path("/input/data/x.csv") == Path(tmp_path / "in" / "x.csv")
    assert call.host_path("/output/result.json") == tmp_path / "out" / "result.json"


def test_the_fake_runner_returns_a_scripted_result_or_raises_a_scripted_error(tmp_path):
    timed_out = result(timed_out=True)
    args = {"image": "i", "command": [], "mounts": [], "output_dir": tmp_path, "limits": LIMITS}

    assert FakeRunner(result=timed_out).run(**args) is timed_out
    with pytest.raises(SandboxUnavailable):
        FakeRunner(error=SandboxUnavailable("engine down")).run(**args)


def test_the_shipped_seccomp_profile_is_what_its_generator_writes_and_refuses_ptrace():
    generator = SECCOMP_PROFILE.with_name("generate.py")
    check = subprocess.run(
        [sys.executable, str(generator), "--check"], capture_output=True, text=True, timeout=60
    )
    shipped = json.loads(SECCOMP_PROFILE.read_text())

    assert check.returncode == 0, check.stderr
    assert shipped["defaultAction"] == "SCMP_ACT_ERRNO"
    allowed = {name for rule in shipped["syscalls"] for name in rule["names"]}
    for refused in ("ptrace", "process_vm_readv", "personality", "keyctl", "userfaultfd", "bpf"):
        assert refused not in allowed
    assert json.loads(seccomp_profile()) == shipped  # what the runner passes to the engine
