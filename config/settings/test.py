"""Tests: SQLite unless DATABASE_URL points elsewhere (CI uses PostgreSQL)."""

import os
import tempfile
import uuid

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-key")
os.environ.setdefault("HELDOUT_DATA_DIR", tempfile.mkdtemp(prefix="heldout-test-"))
# Each test run is a deployment of its own on the shared engine; the workers it starts
# inherit the environment, and so the id.
os.environ.setdefault("HELDOUT_DEPLOYMENT_ID", f"test-{uuid.uuid4().hex[:12]}")
# Every board read sees the latest commit (competitions/boardfast.py); the tests that
# measure the relaxation set it themselves.
os.environ.setdefault("HELDOUT_BOARD_FRESH_MS", "0")
os.environ.setdefault("HELDOUT_WORK_DIR", os.path.join(os.environ["HELDOUT_DATA_DIR"], "work"))

from config.settings.base import *  # noqa: F403

WHITENOISE_AUTOREFRESH = True  # no collectstatic in tests
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Django's test runner keeps e-mails in memory; a worker process the tests start writes
# them to files instead (tests/test_notifications_worker.py), where the test can read them.
EMAIL_BACKEND = os.environ.get(
    "HELDOUT_TEST_EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend"
)
STORAGES["staticfiles"] = {  # noqa: F405
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
}
# Tests deliver webhooks to a loopback server (tests/competitions/test_webhooks.py).
HELDOUT_WEBHOOKS_ALLOW_PRIVATE = env_bool("HELDOUT_WEBHOOKS_ALLOW_PRIVATE", True)  # noqa: F405
# High enough that no test meets them but the throttle tests, which set their own (in the
# environment for the web processes they start).
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {  # noqa: F405
    "submissions": os.environ.get("HELDOUT_THROTTLE_SUBMISSIONS", "1000/minute"),
    "auth": os.environ.get("HELDOUT_THROTTLE_AUTH", "1000/minute"),
}

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not memory, so a real Celery worker process can share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}  # noqa: F405
