"""The embedded defaults: SQLite and a file-system broker, so a newcomer needs nothing."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "insecure-local-only-key-change-me")
os.environ.setdefault("DJANGO_DEBUG", "true")

from config.settings.base import *  # noqa: F403
