"""The parts of the sandbox that need no engine: results, logs, outputs, the fake."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scoring.sandbox import (
    FakeRunner,
    LogTail,
    Mount,
    RunResult,
    SandboxLimits,
    SandboxUnavailable,
    output_size,
    sanitise_output,
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
        ({"output_truncated": True}, "wrote more than 64 MiB of output"),
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


def test_output_size_counts_regular_files_only(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 10)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b").write_bytes(b"x" * 5)
    (tmp_path / "link").symlink_to("/etc/passwd")

    assert output_size(tmp_path) == 15


def test_links_and_special_files_are_removed_from_the_output(tmp_path):
    (tmp_path / "result.json").write_text("{}")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "secret").symlink_to("/etc/shadow")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / "linked-dir").symlink_to("/etc")
    os.mkfifo(tmp_path / "pipe")

    sanitise_output(tmp_path)

    assert sorted(p.name for p in tmp_path.rglob("*")) == ["result.json", "sub"]


def test_setuid_and_setgid_bits_are_cleared_in_the_output(tmp_path):
    program = tmp_path / "program"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o6755)

    sanitise_output(tmp_path)

    assert program.stat().st_mode & 0o7777 == 0o755


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
