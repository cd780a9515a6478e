"""Settings for the web process of tests/test_ops_sentry.py: the test settings, with a page
that fails on purpose (tests/sentry_urls.py) in front of the site's own URLs."""

from config.settings.test import *  # noqa: F403

ROOT_URLCONF = "tests.sentry_urls"
