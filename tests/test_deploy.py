"""The deployment files agree with the code: compose, the example env, the settings doc,
the Makefile, the CI script and the demo launcher.

A setting is an environment variable that code in config/, competitions/ or scoring/ reads, through config/env.py's
readers or os.environ directly.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
APP_SERVICES = ("web", "worker", "scheduler")

_READ_CALL = re.compile(
    r"""(?x)
    (?: env_(?P<reader>str|bool|int|float|list)\(
      | os\.environ\.(?:get|setdefault|pop)\(
      | os\.environ\[
      | os\.getenv\(
    )
    \s*["'](?P<name>[A-Z][A-Z0-9_]*)["']
    """
)


def settings_read_by_code() -> dict[str, str]:
    """Every environment variable read by the platform's code, with how (str, bool, ..., environ)."""
    found: dict[str, str] = {}
    paths = [
        p
        for app in ("config", "competitions", "judging", "scoring")
        for p in (ROOT / app).rglob("*.py")
    ]
    for path in sorted(paths):
        for match in _READ_CALL.finditer(path.read_text()):
            # A typed reader says more than a bare os.environ use of the same name.
            if match["reader"] or match["name"] not in found:
                found[match["name"]] = match["reader"] or "environ"
    return found


def is_setting(name: str, settings: dict[str, str]) -> bool:
    """NAME, or NAME_FILE for a string setting (config/env.py reads secrets from files)."""
    if name in settings:
        return True
    base = name.removesuffix("_FILE")
    return name != base and settings.get(base) == "str"


def example_env_names() -> list[str]:
    """Names set or shown commented out (`#NAME=default`) in deploy/env.example."""
    text = (DEPLOY / "env.example").read_text()
    return re.findall(r"(?m)^#?([A-Z][A-Z0-9_]*)=", text)


def documented_names() -> list[str]:
    """Names in the first column of a table in docs/settings.md."""
    text = (ROOT / "docs" / "settings.md").read_text()
    return re.findall(r"(?m)^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|", text)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def code_settings() -> dict[str, str]:
    settings = settings_read_by_code()
    # The reader regex going blind would make every check below pass vacuously.
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL"} <= settings.keys()
    assert "DJANGO_SETTINGS_MODULE" in settings
    return settings


# --- compose.yaml -------------------------------------------------------------------


def test_compose_defines_web_worker_scheduler_postgres_and_redis(compose):
    assert set(compose["services"]) == {"web", "worker", "scheduler", "postgres", "redis"}


def test_web_worker_and_scheduler_share_one_image_and_one_environment(compose):
    services = compose["services"]
    for key in ("image", "build", "env_file", "environment"):
        values = [services[name].get(key) for name in APP_SERVICES]
        assert values[0], f"web has no {key}"
        assert values.count(values[0]) == len(values), f"{key} differs: {values}"
    assert services["web"]["build"]["dockerfile"] == "deploy/Dockerfile"


def test_the_worker_consumes_the_cpu_queue_and_the_scheduler_runs_beat(compose):
    services = compose["services"]
    worker = services["worker"]["command"]
    scheduler = services["scheduler"]["command"]
    assert "celery -A config.celery_app worker" in worker
    assert "-Q cpu" in worker
    assert " -B" not in worker, "beat must run once, in the scheduler, not in every worker"
    assert "celery -A config.celery_app beat" in scheduler
    assert "gunicorn config.wsgi" in " ".join(services["web"]["command"])


def test_the_app_services_use_the_compose_database_and_broker(compose):
    environment = compose["services"]["web"]["environment"]
    assert "@postgres:5432/" in environment["DATABASE_URL"]
    assert environment["CELERY_BROKER_URL"].startswith("redis://redis:6379/")
    assert environment["DJANGO_SETTINGS_MODULE"] == "config.settings.production"


def test_every_environment_key_in_compose_is_a_setting_the_code_reads(compose, code_settings):
    for name in APP_SERVICES:
        environment = compose["services"][name].get("environment") or {}
        keys = (
            environment if isinstance(environment, dict) else [e.split("=")[0] for e in environment]
        )
        unknown = [key for key in keys if not is_setting(key, code_settings)]
        assert not unknown, f"{name} sets variables nothing reads: {unknown}"


# --- env.example and docs/settings.md ----------------------------------------------------


def test_every_setting_in_the_example_env_exists(code_settings):
    names = example_env_names()
    assert names, "deploy/env.example lists no variable"
    unknown = [name for name in names if not is_setting(name, code_settings)]
    assert not unknown, f"deploy/env.example lists variables nothing reads: {unknown}"


def test_every_setting_the_code_reads_is_in_the_example_env(code_settings):
    missing = sorted(set(code_settings) - set(example_env_names()))
    assert not missing, f"read in config/ but not in deploy/env.example: {missing}"


def test_the_example_env_lists_each_setting_once():
    names = example_env_names()
    assert len(names) == len(set(names)), sorted({n for n in names if names.count(n) > 1})


def test_every_setting_the_code_reads_is_documented_in_docs_settings(code_settings):
    missing = sorted(set(code_settings) - set(documented_names()))
    assert not missing, f"read in config/ but not documented in docs/settings.md: {missing}"


def test_every_setting_documented_in_docs_settings_exists(code_settings):
    unknown = [name for name in documented_names() if not is_setting(name, code_settings)]
    assert not unknown, f"docs/settings.md documents variables nothing reads: {unknown}"


def test_the_example_env_sets_only_values_the_readers_accept(code_settings):
    """An uncommented `NAME=` line reaches the code as an empty string: fine for a string,
    fatal for a number or a boolean."""
    text = (DEPLOY / "env.example").read_text()
    for name, value in re.findall(r"(?m)^([A-Z][A-Z0-9_]*)=(.*)$", text):
        reader = code_settings.get(name)
        if reader in {"int", "float", "bool"}:
            assert value.strip(), f"{name}= is empty but read as {reader}"


# --- the image ---------------------------------------------------------------------------


def test_the_image_contains_every_local_package_and_runs_as_a_non_root_user():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"(?m)^FROM python:3\.11-slim", dockerfile)
    assert "pip install --require-hashes --no-deps -r requirements.prod.lock" in dockerfile
    assert not re.search(r"(?m)^COPY .*\brequirements\.lock\b", dockerfile)
    assert "collectstatic --noinput" in dockerfile
    assert re.search(r"(?m)^USER (?!root)\S+", dockerfile)
    assert re.search(r'(?m)^CMD \["gunicorn", "config\.wsgi"', dockerfile)
    copied = set(re.findall(r"(?m)^COPY (?:--\S+ )*(\S+)", dockerfile))
    local_packages = {
        path.parent.name
        for path in ROOT.glob("*/__init__.py")
        if path.parent.name not in {"tests", "bench"}
    }
    for folder in ("templates", "static"):
        if (ROOT / folder).is_dir():
            local_packages.add(folder)
    missing = sorted(local_packages - copied)
    assert not missing, f"deploy/Dockerfile does not copy {missing}"


# --- Makefile, CI, README ----------------------------------------------------------------


def test_the_makefile_has_the_documented_targets():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"(?m)^([a-z][a-z-]*):", makefile))
    assert {"venv", "demo", "test", "test-sqlite", "lint", "scorer-image", "bench"} <= targets
    assert re.search(r"(?m)^PYTHON \?= python3$", makefile)


def test_ci_runs_the_sqlite_too_tests_on_sqlite_after_the_main_run_and_fails_with_them():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\ntest-sqlite:", 1)[1].split("\n\n", 1)[0]
    assert "env -u DATABASE_URL -u CELERY_BROKER_URL $(BIN)/pytest -m sqlite_too" in recipe
    ci = (ROOT / ".ci" / "run").read_text()

    def line_of(command: str) -> int:
        found = re.search(rf"(?m)^\S.*\bmake {command}[ ;]", ci)  # a command, not a comment
        assert found, f".ci/run does not run make {command}"
        return found.start()

    sqlite = line_of("test-sqlite")
    assert line_of("test") < sqlite < line_of("lint")
    assert '[ "$status" -ne 0 ] || status=$sqlite_status' in ci[sqlite:]


def test_the_shell_scripts_parse_and_stop_at_the_first_error():
    for script in (ROOT / ".ci" / "run", DEPLOY / "system-deps.sh"):
        text = script.read_text()
        assert "set -euo pipefail" in text, script
        subprocess.run(["bash", "-n", str(script)], check=True)


def test_the_readme_quick_start_is_make_demo_then_make_test():
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    first_block = re.search(r"```(?:sh|bash|console)?\n(.*?)```", quick_start, re.S)
    assert first_block, "no command block in the Quick start section"
    assert first_block[1].split() == ["make", "demo"]
    assert "make test" in quick_start


def test_the_readme_links_only_to_files_that_exist():
    readme = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\((?!https?://|#)([^)#]+)", readme):
        assert (ROOT / target).exists(), f"README.md links to missing {target}"


# --- the demo launcher -------------------------------------------------------------------

_CHILD = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(600)"


def _start_launcher(tmp_path: Path, commands: dict[str, list[str]]) -> subprocess.Popen[str]:
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(DEPLOY)!r})
        import demo
        sys.exit(demo.supervise({commands!r}))
        """
    )
    return subprocess.Popen(
        [sys.executable, "-c", script], cwd=tmp_path, stdout=subprocess.PIPE, text=True
    )


def _wait_for_files(paths: list[Path], timeout: float = 20) -> list[int]:
    deadline = time.monotonic() + timeout
    while not all(path.exists() and path.read_text() for path in paths):
        assert time.monotonic() < deadline, "the children did not start"
        time.sleep(0.05)
    return [int(path.read_text()) for path in paths]


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0): it has exited, its parent just hasn't reaped it.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_the_demo_launcher_stops_both_processes_on_ctrl_c_or_sigterm(tmp_path, sig):
    pid_files = [tmp_path / "web.pid", tmp_path / "worker.pid"]
    launcher = _start_launcher(
        tmp_path,
        {
            "web": [sys.executable, "-c", _CHILD, str(pid_files[0])],
            "worker": [sys.executable, "-c", _CHILD, str(pid_files[1])],
        },
    )
    pids = _wait_for_files(pid_files)
    launcher.send_signal(sig)
    output, _ = launcher.communicate(timeout=30)
    assert launcher.returncode == 0, output
    assert not [pid for pid in pids if _is_running(pid)], output


def test_the_demo_launcher_stops_the_web_server_when_the_worker_dies(tmp_path):
    pid_file = tmp_path / "web.pid"
    launcher = _start_launcher(
        tmp_path,
        {
            "web": [sys.executable, "-c", _CHILD, str(pid_file)],
            "worker": [sys.executable, "-c", "import sys, time; time.sleep(1); sys.exit(3)"],
        },
    )
    (pid,) = _wait_for_files([pid_file])
    output, _ = launcher.communicate(timeout=30)
    assert launcher.returncode == 3, output
    assert "worker exited with code 3" in output
    assert not _is_running(pid), output


def test_the_demo_shows_the_sites_error_pages_unless_debug_is_asked_for(monkeypatch):
    sys.path.insert(0, str(DEPLOY))
    import demo

    monkeypatch.delenv("DJANGO_DEBUG", raising=False)
    assert demo.demo_env()["DJANGO_DEBUG"] == "false"
    monkeypatch.setenv("DJANGO_DEBUG", "true")
    assert demo.demo_env()["DJANGO_DEBUG"] == "true"
