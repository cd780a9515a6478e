"""requirements.prod.lock, which the production image installs (deploy/Dockerfile), is
requirements.lock without the development tools: the same pins and hashes, every runtime
dependency, and enough to run. The last is checked in a process of the development
virtualenv that refuses to import any module of a distribution the production lock does
not pin: it sets Django up with the production settings (error reporting to Sentry on),
imports every module of the platform, builds the WSGI handler and the Celery worker, and
reaches the test broker.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib

from tests.test_deploy import ROOT

_PIN = re.compile(
    r"(?m)^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)((?:\s*\\\n\s*--hash=sha256:[0-9a-f]{64})+)"
)
DEV_TOOLS = {"playwright", "mypy", "ruff", "pytest", "pytest-django", "moto", "schemathesis"}


def lock_pins(name: str) -> dict[str, tuple[str, frozenset[str]]]:
    """{package: (version, hashes)} of a lock compiled by uv with --generate-hashes."""
    text = (ROOT / name).read_text()
    pins = {
        match[1].lower(): (match[2], frozenset(re.findall(r"sha256:([0-9a-f]{64})", match[3])))
        for match in _PIN.finditer(text)
    }
    # A pattern gone blind would let every check below pass.
    assert len(pins) == text.count("=="), f"{name}: some pins were not read"
    return pins


def test_the_production_lock_has_no_development_tools():
    production = lock_pins("requirements.prod.lock")
    assert "django" in production
    assert lock_pins("requirements.lock").keys() >= DEV_TOOLS
    assert not DEV_TOOLS & production.keys(), sorted(DEV_TOOLS & production.keys())


def test_every_pin_of_the_production_lock_is_the_development_locks_own():
    development = lock_pins("requirements.lock")
    production = lock_pins("requirements.prod.lock")
    differ = {
        name: (pin, development.get(name))
        for name, pin in production.items()
        if development.get(name) != pin
    }
    assert not differ, f"requirements.prod.lock drifted from requirements.lock: {differ}"


def test_the_production_lock_holds_every_runtime_dependency_and_the_error_reporting():
    with (ROOT / "pyproject.toml").open("rb") as handle:
        project = tomllib.load(handle)["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["sentry"]
    names = {
        re.split(r"[\[<>=!~ ]", requirement, maxsplit=1)[0].lower() for requirement in declared
    }
    missing = sorted(names - lock_pins("requirements.prod.lock").keys())
    assert not missing, f"requirements.prod.lock lacks {missing}: compile it again"


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# Runs in a process of its own: argv[1] is the production lock's names, as JSON.
_ONLY_THE_PRODUCTION_LOCK = r"""
import importlib, importlib.abc, importlib.metadata, importlib.util, json, pkgutil, re, sys

allowed = set(json.loads(sys.argv[1]))
owners = importlib.metadata.packages_distributions()


def normalized(name):
    return re.sub(r"[-_.]+", "-", name).lower()


class OnlyTheProductionLock(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        dists = owners.get(name.partition(".")[0])
        if dists and not any(normalized(d) in allowed for d in dists):
            raise ModuleNotFoundError(f"{name} comes from {dists}, not in the lock", name=name)
        return None


sys.meta_path.insert(0, OnlyTheProductionLock())
import django

django.setup()
local = [p for p in ("config", "competitions", "scoring", "judging") if importlib.util.find_spec(p)]
count = 0
for package in local:
    for info in pkgutil.walk_packages(importlib.import_module(package).__path__, package + "."):
        importlib.import_module(info.name)
        count += 1
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command

WSGIHandler()  # loads every middleware
call_command("check")
import gunicorn.app.wsgiapp, gunicorn.workers.gthread  # the web's server and worker class
import storages.backends.s3  # object storage
from celery.apps.worker import Worker
from config.celery_app import app

Worker(app=app, hostname="lock-check@localhost", quiet=True)  # loads the broker's transport
from competitions.ops.health import check_broker

check_broker()
import sentry_sdk

print(json.dumps({"modules": count, "sentry": sentry_sdk.get_client().is_active()}))
"""


def test_the_production_lock_is_enough_to_set_up_serve_and_reach_the_broker(tmp_path):
    allowed = sorted(lock_pins("requirements.prod.lock"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": "lock-check-" + "x" * 40,
        "DJANGO_ALLOWED_HOSTS": "heldout.example.org",
        "HELDOUT_DATA_DIR": str(tmp_path),
        # Sentry's SDK and its Django and Celery integrations load (nothing listens there).
        "HELDOUT_SENTRY_DSN": "http://lock-check@127.0.0.1:9/1",
    }
    ran = subprocess.run(
        [sys.executable, "-c", _ONLY_THE_PRODUCTION_LOCK, json.dumps(allowed)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    checked = json.loads(ran.stdout.strip().splitlines()[-1])
    assert checked["modules"] > 100
    assert checked["sentry"] is True
