"""Runs that go past a limit are stopped or cut, and say which limit they hit."""

from __future__ import annotations

import dataclasses
import subprocess
import time

import pytest

pytestmark = pytest.mark.docker

MEMORY_HOG = """
chunks = []
while True:
    chunks.append(bytearray(16 * 1024 * 1024))  # zero-filled, so really allocated
"""

BOUNDED_FORKS = """
import os, time
forks = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        forks += 1
except OSError as exc:
    print(forks, type(exc).__name__)
"""

# Every process forks for ever: without a process limit this takes the machine down.
FORK_BOMB = """
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
"""


def test_it_kills_a_run_past_its_memory_limit(run_python, small_limits):
    limits = dataclasses.replace(small_limits, memory_bytes=128 * 1024**2)

    result = run_python(MEMORY_HOG, limits=limits)

    assert result.oom_killed
    assert not result.ok
    assert result.failure_reason(limits) == "exceeded memory limit of 128 MiB"
    assert 0.9 * limits.memory_bytes <= result.peak_memory_bytes <= limits.memory_bytes


def test_it_kills_a_container_past_its_time_limit(run_python, small_limits):
    limits = dataclasses.replace(small_limits, timeout_s=2)
    started = time.monotonic()

    result = run_python("while True: pass", limits=limits)

    assert result.timed_out
    assert not result.ok
    assert 2 <= result.duration_s < 3.5
    assert time.monotonic() - started < 6
    assert result.failure_reason(limits) == "exceeded time limit of 2 s"


def test_it_stops_forking_at_the_process_limit(run_python, small_limits):
    limits = dataclasses.replace(small_limits, pids=32)

    result = run_python(BOUNDED_FORKS, limits=limits)

    assert result.ok, result.log
    forks, error = result.log.split()
    assert int(forks) < 32
    assert error == "BlockingIOError"


def test_a_fork_bomb_is_contained_and_the_host_is_fine(run_python, small_limits):
    limits = dataclasses.replace(small_limits, pids=32, timeout_s=3)

    result = run_python(FORK_BOMB, limits=limits)

    assert result.timed_out
    assert result.duration_s < 5
    host = subprocess.run(["sh", "-c", "echo alive"], capture_output=True, timeout=5, check=True)
    assert host.stdout == b"alive\n"


def test_it_keeps_only_the_tail_of_a_huge_log(run_python, small_limits):
    limits = dataclasses.replace(small_limits, log_bytes=1024)

    result = run_python("print('x' * 1_000_000); print('the end')", limits=limits)

    assert result.ok
    assert result.log.startswith("[log truncated: ")
    assert result.log.endswith("xxx\nthe end\n")
    assert len(result.log) < 1024 + 100


def test_it_rejects_a_file_larger_than_the_output_limit(run_python, tmp_path, small_limits):
    output = tmp_path / "output"

    result = run_python("open('/output/big', 'wb').write(b'x' * 5_000_000)", output_dir=output)

    assert result.output_truncated
    assert not result.ok
    assert result.failure_reason(small_limits) == "exceeded the output limit of 1 MiB"
    # Part of an output is not kept: nothing can mistake it for the whole.
    assert list(output.iterdir()) == []


def test_it_rejects_many_files_adding_up_past_the_output_limit(run_python, small_limits):
    many = "for i in range(4): open(f'/output/part{i}', 'wb').write(b'x' * 400_000)"

    result = run_python(many)

    assert result.output_truncated
    assert result.failure_reason(small_limits) == "exceeded the output limit of 1 MiB"


def test_it_caps_tmp_at_its_size(run_python, small_limits):
    limits = dataclasses.replace(small_limits, tmpfs_bytes=1024**2, output_bytes=64 * 1024**2)

    result = run_python("open('/tmp/big', 'wb').write(b'x' * 4_000_000)", limits=limits)

    assert result.exit_code == 1
    assert "No space left on device" in result.log
    assert result.failure_reason(limits).startswith("exited with code 1: ")
