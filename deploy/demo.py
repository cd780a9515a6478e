"""`make demo`: set up the demo site, then run the web server and a Celery worker together.

Both run in the foreground of this one command; Ctrl-C (or SIGTERM) stops both, and if
either dies the other is stopped too, so a half-running demo never lingers.

Steps: create the broker folders, migrate the SQLite database under var/, build the demo
competition (`manage.py demo_setup`, which prints the credentials and API tokens) and
the demo suite of scikit-learn's toy data sets with three methods (`manage.py demo_suite`),
collect static files, then start gunicorn on http://127.0.0.1:8000 and
`celery -A config.celery_app worker -Q cpu -B` (the embedded beat runs the reaper) on the
file-system broker. Nothing here is eager: submissions really go through the queue.

Runs with the virtualenv's Python (`.venv/bin/python deploy/demo.py`); standard library only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOST, PORT = "127.0.0.1", 8000
STOP_GRACE_S = 20.0


def say(message: str) -> None:
    sys.stdout.write(f"demo: {message}\n")
    sys.stdout.flush()


def data_dir(env: Mapping[str, str]) -> Path:
    """The folder config/settings/base.py writes to (HELDOUT_DATA_DIR, default var/)."""
    return Path(env.get("HELDOUT_DATA_DIR") or REPO / "var")


def demo_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    # The demo shows the pages people get (the site's 404 and 500, not Django's debug pages
    # listing every URL and setting); DJANGO_DEBUG=true in the environment still wins.
    env.setdefault("DJANGO_DEBUG", "false")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def broker_folders(env: Mapping[str, str]) -> list[Path]:
    """The folders the file-system broker uses, as the settings configure them.

    Kombu's file-system transport fails on a missing folder instead of creating it, and
    both the web server (which sends) and the worker (which receives) need them before
    the first message, so they are made here, before either starts.
    """
    saved = dict(os.environ)
    os.environ.update(env)
    sys.path.insert(0, str(REPO))
    try:
        from django.conf import settings

        broker_url: str = settings.CELERY_BROKER_URL
        options: Mapping[str, object] = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    finally:
        sys.path.remove(str(REPO))
        os.environ.clear()
        os.environ.update(saved)
    if not broker_url.startswith("filesystem://"):
        return []
    keys = ("data_folder_in", "data_folder_out", "processed_folder", "control_folder")
    return [REPO / str(options[key]) for key in keys if options.get(key)]


def run_step(argv: Sequence[str], env: Mapping[str, str]) -> None:
    say("$ " + " ".join(argv))
    subprocess.run(argv, cwd=REPO, env=env, check=True)


def stop_all(procs: Mapping[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM each process, which stops its own children (gunicorn's workers, celery's
    pool and beat); SIGKILL the whole process group of one that is still there after
    STOP_GRACE_S."""
    for name, proc in procs.items():
        if proc.poll() is None:
            say(f"stopping {name} (pid {proc.pid})")
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for name, proc in procs.items():
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{name} did not stop within {STOP_GRACE_S:.0f} s: killing it")
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
        # Stragglers in the group (a pool child whose parent was killed) go too.
        _signal_group(proc, signal.SIGKILL)


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def supervise(commands: Mapping[str, Sequence[str]], env: Mapping[str, str] | None = None) -> int:
    """Run the commands together until one exits or we get SIGINT/SIGTERM; stop them all.

    Each command gets its own process group, so a Ctrl-C reaches only this launcher, which
    then shuts both down in order instead of each one racing its own handler.
    Returns 0 after a requested stop, else the exit code of the process that ended first
    (1 if that one exited 0: a server that stops by itself is a failure here).
    """
    stop_requested: list[int] = []

    def request_stop(signum: int, _frame: object) -> None:
        stop_requested.append(signum)

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, argv in commands.items():
            procs[name] = subprocess.Popen(list(argv), cwd=REPO, env=env, start_new_session=True)
            say(f"started {name} (pid {procs[name].pid})")
        while not stop_requested:
            ended = [
                (name, proc.returncode) for name, proc in procs.items() if proc.poll() is not None
            ]
            if ended:
                name, code = ended[0]
                say(f"{name} exited with code {code}: stopping the rest")
                return code or 1
            time.sleep(0.2)
        say(f"got {signal.Signals(stop_requested[0]).name}: stopping")
        return 0
    finally:
        # A second Ctrl-C while stopping must not leave processes behind.
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        stop_all(procs)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main() -> int:
    env = demo_env()
    bin_dir = Path(sys.executable).parent
    python = str(Path(sys.executable))
    data = data_dir(env)
    data.mkdir(parents=True, exist_ok=True)
    for folder in broker_folders(env):
        folder.mkdir(parents=True, exist_ok=True)
    try:
        run_step([python, "manage.py", "migrate", "--noinput"], env)
        run_step([python, "manage.py", "demo_setup"], env)
        run_step([python, "manage.py", "demo_suite"], env)
        run_step([python, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"], env)
    except subprocess.CalledProcessError as exc:
        say(f"set-up failed (exit code {exc.returncode}): {' '.join(map(str, exc.cmd))}")
        return exc.returncode or 1
    except KeyboardInterrupt:
        return 130

    commands = {
        "web": [
            str(bin_dir / "gunicorn"),
            "config.wsgi",
            "-c",
            "config/gunicorn.py",  # threaded workers, as in production
            "--bind",
            f"{HOST}:{PORT}",
        ],
        "worker": [
            str(bin_dir / "celery"),
            "-A",
            "config.celery_app",
            "worker",
            "-Q",
            "cpu",
            "-B",
            "--schedule",
            str(data / "celerybeat-schedule"),
            "--concurrency",
            "2",
            "--loglevel",
            "INFO",
        ],
    }
    say(f"serving http://{HOST}:{PORT}/ with a Celery worker; Ctrl-C stops both")
    return supervise(commands, env)


if __name__ == "__main__":
    sys.exit(main())
