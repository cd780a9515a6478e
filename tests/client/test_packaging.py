"""The client is a package of its own: no Django, its dependencies pinned in the lock, and
installed by `make venv` so that `make test` finds its command on a fresh machine."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

from tests.worker_process import ROOT

CLIENT = ROOT / "client"


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_every_client_dependency_is_pinned_in_the_lock_and_the_dev_extra():
    client = tomllib.loads((CLIENT / "pyproject.toml").read_text())["project"]
    server = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = set(
        re.findall(r"(?m)^([a-z0-9][a-z0-9._-]*)==", (ROOT / "requirements.lock").read_text())
    )
    dev = {_name(r) for r in server["optional-dependencies"]["dev"]}
    wanted = {_name(r) for r in client["dependencies"]}
    assert wanted == {"httpx", "typer", "rich", "platformdirs", "tenacity"}
    assert wanted <= pinned
    assert wanted <= dev
    assert client["scripts"] == {"heldout": "heldout.cli:main"}


def test_make_venv_installs_the_client_after_the_lock():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("$(STAMP):", 1)[1].split("\n\n", 1)[0]
    lock = recipe.index("-r requirements.lock\n")
    assert recipe.index("--no-deps -e client/", lock) > lock


def test_the_client_imports_without_django():
    code = "import sys, heldout.cli; assert 'django' not in sys.modules, 'django imported'"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=CLIENT, check=False
    )
    assert done.returncode == 0, done.stderr
