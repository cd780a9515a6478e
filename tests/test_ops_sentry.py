"""A Sentry DSN is never ignored in silence: with HELDOUT_SENTRY_DSN set, a process either
reports to Sentry (the optional `sentry` extra installed) or refuses to start, saying which
package is missing. Settings are read in a process of its own, as a web or worker process
reads them at start."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

from tests.test_deploy import ROOT

# A loopback address nothing listens on: nothing is sent anywhere by this test.
DSN = "http://public-key@127.0.0.1:9/1"
_START = """
import django
django.setup()
try:
    import sentry_sdk
except ImportError:
    print("started, no sdk")
else:
    print("active" if sentry_sdk.get_client().is_active() else "inactive")
"""


def start(dsn: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    env["HELDOUT_SENTRY_DSN"] = dsn
    return subprocess.run(
        [sys.executable, "-c", _START],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_set_dsn_either_reports_or_stops_the_process_naming_the_extra():
    started = start(DSN)
    if importlib.util.find_spec("sentry_sdk") is None:
        assert started.returncode != 0
        assert "ImproperlyConfigured" in started.stderr
        assert "HELDOUT_SENTRY_DSN is set but sentry-sdk is not installed" in started.stderr
        assert "the `sentry` extra" in started.stderr
    else:
        assert started.returncode == 0, started.stderr[-2000:]
        assert started.stdout.split() == ["active"]


def test_without_a_dsn_nothing_is_initialised():
    started = start("")
    if importlib.util.find_spec("sentry_sdk") is None:
        assert started.returncode == 0, started.stderr[-2000:]
        assert started.stdout.strip() == "started, no sdk"
    else:
        assert started.returncode == 0, started.stderr[-2000:]
        assert started.stdout.split() == ["inactive"]
