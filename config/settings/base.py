"""Settings shared by every environment. Each value comes from an environment variable;
`docs/settings.md` lists them all. The other settings modules only override."""

import hashlib
import re
import tempfile
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from competitions.ops.logs import logging_config
from competitions.ops.sentry import sentry_init
from config.env import env_bool, env_float, env_int, env_list, env_str
from config.storages import storages_from_env

BASE_DIR = Path(__file__).resolve().parent.parent.parent

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])
CSRF_FAILURE_VIEW = "competitions.views.errors.csrf_failure"  # JSON under /api/

# Everything Heldout writes (database, uploads, broker queue) lives under one folder.
DATA_DIR = Path(env_str("HELDOUT_DATA_DIR", str(BASE_DIR / "var")))

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'heldout.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        # A pooled connection is checked before reuse, so one broken by a database
        # restart is replaced instead of failing the next request or task.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Concurrent web + worker processes on SQLite need WAL and a busy timeout.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "competitions",
    "judging",
    "notifications",
    "suites",
]

MIDDLEWARE = [
    "competitions.ops.logs.RequestIdMiddleware",  # first: every log line has the request's id
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "competitions.middleware.UploadSizeLimitMiddleware",
    # Anonymous board reads from their kept copy, before sessions, auth and the view.
    "competitions.boardfast.BoardFastPathMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "competitions.middleware.CommonMiddleware",  # no slash-appending redirect under /api/
    "competitions.middleware.SiteNotFoundMiddleware",  # the site's 404 page with DEBUG on too
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            # |metric_label and |problem_text in every template, no {% load %} needed.
            "builtins": ["competitions.templatetags.heldout"],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "notifications.context_processors.bell",  # the header's unread count
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
# The site's own CSS and JavaScript (hand-written; nothing third-party is committed).
STATICFILES_DIRS = [BASE_DIR / "static"]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/account/"
LOGOUT_REDIRECT_URL = "/"

# Email (password resets, notifications): printed to the console unless an SMTP host is set;
# EMAIL_BACKEND names any of Django's backends (the file backend writes to EMAIL_FILE_PATH).
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(DATA_DIR / "emails"))
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Heldout <heldout@localhost>")

# Uploaded files are never served from a public URL: every download goes through a view
# that checks permissions. Public task files and private ones (ground truth, submissions)
# live in separate roots so a misconfigured web server can expose neither by accident.
# The file system by default; an S3-protocol store with HELDOUT_S3_BUCKET (config/storages.py).
STORAGES = {
    **storages_from_env(DATA_DIR),
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Downloads of stored files redirect to a short-lived presigned URL (S3 backends only).
HELDOUT_STORAGE_PRESIGNED_DOWNLOADS = env_bool("HELDOUT_STORAGE_PRESIGNED_DOWNLOADS", False)
HELDOUT_STORAGE_PRESIGNED_TTL_S = env_int("HELDOUT_STORAGE_PRESIGNED_TTL_S", 300)
# Unfinished resumable (tus) uploads, on the web host's disk; the default is the file-system
# private storage's folder, where they always were (competitions/services/uploads.py).
HELDOUT_UPLOAD_STAGING_DIR = env_str(
    "HELDOUT_UPLOAD_STAGING_DIR", str(DATA_DIR / "files" / "private")
)
FILE_UPLOAD_TEMP_DIR = env_str("HELDOUT_UPLOAD_TEMP_DIR", "") or None
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_HANDLERS = ["competitions.uploads.HashingUploadHandler"]
HELDOUT_MAX_UPLOAD_BYTES = env_int("HELDOUT_MAX_UPLOAD_BYTES", 512 * 1024 * 1024)
# A multipart body that sends nothing for this long before its Content-Length is refused (400).
HELDOUT_BODY_STALL_TIMEOUT_S = env_float("HELDOUT_BODY_STALL_TIMEOUT_S", 10.0)
# Submissions that fail validation don't use the daily quota, but only this many a day are accepted.
HELDOUT_INVALID_SUBMISSIONS_PER_DAY = env_int("HELDOUT_INVALID_SUBMISSIONS_PER_DAY", 20)
HELDOUT_MAX_PROBLEMS = env_int("HELDOUT_MAX_PROBLEMS", 100)

# Scoring: "docker" runs the scorer image in the sandbox; "in-process" scores inside the
# worker (the demo on a machine without Docker); "auto" is docker when the worker process
# reaches a Docker engine that has the scorer image at its first scoring, else in-process.
HELDOUT_SCORER = env_str("HELDOUT_SCORER", "auto")
if HELDOUT_SCORER not in ("auto", "docker", "in-process"):
    raise ImproperlyConfigured(
        f"HELDOUT_SCORER={HELDOUT_SCORER!r}: use auto, docker or in-process."
    )
HELDOUT_SCORER_IMAGE = env_str("HELDOUT_SCORER_IMAGE", "heldout-scorer:latest")
# An OCI registry and path prefix (e.g. registry.example.org/heldout, 127.0.0.1:5000/heldout)
# for worker hosts that share nothing: a container submission's image, once loaded from its
# archive, is pushed there as <registry>/submissions:<id> and other hosts pull it by digest.
# Empty (the default, one machine): every worker loads archives itself. The scorer image is
# pushed by `make scorer-image` and named by digest in HELDOUT_SCORER_IMAGE.
HELDOUT_IMAGE_REGISTRY = env_str("HELDOUT_IMAGE_REGISTRY", "").rstrip("/")
# The images an organizer may choose for an uploaded scoring program.
HELDOUT_SCORER_IMAGES = env_list("HELDOUT_SCORER_IMAGES", [HELDOUT_SCORER_IMAGE])
# Sandbox limits of every scoring container; a task's `limits` overrides them.
HELDOUT_SANDBOX_MEMORY_MB = env_int("HELDOUT_SANDBOX_MEMORY_MB", 2048)
HELDOUT_SANDBOX_CPUS = env_float("HELDOUT_SANDBOX_CPUS", 1.0)
HELDOUT_SANDBOX_PIDS = env_int("HELDOUT_SANDBOX_PIDS", 128)
HELDOUT_SANDBOX_TIMEOUT_S = env_int("HELDOUT_SANDBOX_TIMEOUT_S", 600)
HELDOUT_SANDBOX_TMPFS_MB = env_int("HELDOUT_SANDBOX_TMPFS_MB", 64)
HELDOUT_SANDBOX_OUTPUT_MB = env_int("HELDOUT_SANDBOX_OUTPUT_MB", 64)
HELDOUT_SANDBOX_LOG_KB = env_int("HELDOUT_SANDBOX_LOG_KB", 64)
# Crash recovery (docs/production.md): a worker scoring a submission or replication
# writes a heartbeat every HELDOUT_HEARTBEAT_S; the reaper, sent every HELDOUT_REAP_EVERY_S,
# requeues running work whose heartbeat is older than HELDOUT_RECOVER_AFTER_S, and fails it
# (not counted against the quota) once its workers died HELDOUT_MAX_ATTEMPTS times. Work
# queued longer than HELDOUT_RESEND_AFTER_S (its broker message may be lost) is sent again.
# judging.checks refuses values that contradict each other. By default a dead worker's work
# is back in the queue within 2 minutes: 90 s of silence plus one 30 s reaper period.
HELDOUT_HEARTBEAT_S = env_float("HELDOUT_HEARTBEAT_S", 15.0)
HELDOUT_RECOVER_AFTER_S = env_float("HELDOUT_RECOVER_AFTER_S", 90.0)
HELDOUT_RESEND_AFTER_S = env_float(
    "HELDOUT_RESEND_AFTER_S", env_float("HELDOUT_STALE_AFTER_S", 900.0)
)
HELDOUT_MAX_ATTEMPTS = env_int("HELDOUT_MAX_ATTEMPTS", 3)
# A worker whose scorer differs from the task version's re-sends the job after this long,
# for a matching worker to take (docs/scorers.md).
HELDOUT_SCORER_MISMATCH_RETRY_S = env_int("HELDOUT_SCORER_MISMATCH_RETRY_S", 15)
# Container submissions (code competitions): the largest image archive, both as uploaded
# and unpacked; and how many of each leaderboard's top images a worker keeps loaded.
HELDOUT_MAX_IMAGE_BYTES = env_int("HELDOUT_MAX_IMAGE_BYTES", 4 * 1024**3)
# The workers' platform, which an uploaded image must be built for ("" = this host's, e.g.
# linux/amd64), and how long the upload's archive check may take (a compressed archive is
# unpacked to be measured; an uncompressed one is read header by header, in milliseconds).
HELDOUT_WORKER_PLATFORM = env_str("HELDOUT_WORKER_PLATFORM", "")
HELDOUT_IMAGE_CHECK_SECONDS = env_float("HELDOUT_IMAGE_CHECK_SECONDS", 30.0)
HELDOUT_IMAGES_KEEP_TOP = env_int("HELDOUT_IMAGES_KEEP_TOP", 10)
# This deployment's name on a Docker engine that other deployments (a demo, CI, another
# instance) may share: every sandbox container and submission image carries it, and clean-up
# touches nothing else. Default: a hash of the data folder and the database, stable across
# restarts; set it explicitly, the same on every host, when hosts see them under other names.
HELDOUT_DEPLOYMENT_ID = env_str(
    "HELDOUT_DEPLOYMENT_ID",
    hashlib.sha256(
        f"{DATA_DIR.resolve()}|{DATABASES['default'].get('HOST') or ''}|"
        f"{DATABASES['default'].get('NAME') or ''}".encode()
    ).hexdigest()[:12],
)
if not re.fullmatch(r"[a-z0-9]+(?:[._-][a-z0-9]+)*", HELDOUT_DEPLOYMENT_ID) or (
    len(HELDOUT_DEPLOYMENT_ID) > 40
):
    raise ImproperlyConfigured(
        f"HELDOUT_DEPLOYMENT_ID={HELDOUT_DEPLOYMENT_ID!r}: use at most 40 lower-case letters "
        "and digits, separated by single dots, dashes or underscores."
    )
# Where scoring attempts keep their scratch folders (one per attempt, removed after it).
HELDOUT_WORK_DIR = Path(
    env_str("HELDOUT_WORK_DIR", "")
    or Path(tempfile.gettempdir()) / f"heldout-work-{HELDOUT_DEPLOYMENT_ID}"
)
# Each worker host's clean-up round: how often, and how long past its deadline a sandbox
# container is left to its own worker before the round kills it.
HELDOUT_SANDBOX_CLEANUP_EVERY_S = env_float("HELDOUT_SANDBOX_CLEANUP_EVERY_S", 30.0)
HELDOUT_SANDBOX_CLEANUP_GRACE_S = env_float("HELDOUT_SANDBOX_CLEANUP_GRACE_S", 30.0)
# Warm scorers (scoring.warm): each worker process keeps the built-in scorer running per
# task between submissions, each scored by a fresh child in the same sandbox; stopped after
# HELDOUT_SANDBOX_WARM_IDLE_S seconds without a submission.
HELDOUT_SANDBOX_WARM = env_bool("HELDOUT_SANDBOX_WARM", True)
HELDOUT_SANDBOX_WARM_IDLE_S = env_float("HELDOUT_SANDBOX_WARM_IDLE_S", 300.0)

# Webhooks (docs/api.md#webhooks): endpoints on private, loopback or reserved addresses are
# refused unless allowed (tests deliver to a loopback server); a delivery is tried up to
# HELDOUT_WEBHOOK_MAX_ATTEMPTS times, the n-th retry HELDOUT_WEBHOOK_RETRY_BASE_S * 2**(n-1)
# seconds after the previous try (8 tries span about an hour), each waiting at most
# HELDOUT_WEBHOOK_TIMEOUT_S for an answer.
HELDOUT_WEBHOOKS_ALLOW_PRIVATE = env_bool("HELDOUT_WEBHOOKS_ALLOW_PRIVATE", False)
HELDOUT_WEBHOOK_MAX_ATTEMPTS = env_int("HELDOUT_WEBHOOK_MAX_ATTEMPTS", 8)
HELDOUT_WEBHOOK_RETRY_BASE_S = env_float("HELDOUT_WEBHOOK_RETRY_BASE_S", 30.0)
HELDOUT_WEBHOOK_TIMEOUT_S = env_float("HELDOUT_WEBHOOK_TIMEOUT_S", 10.0)
# The Celery queue of deliveries ("" = CELERY_TASK_DEFAULT_QUEUE, which the scoring workers
# consume; a queue of their own needs a worker started with `-Q` naming it).
HELDOUT_WEBHOOK_QUEUE = env_str("HELDOUT_WEBHOOK_QUEUE", "")
# A phase's members are told of it opening (within this long after its start) and ending
# (this long before its end); docs/notifications.md.
HELDOUT_PHASE_NOTICE_S = env_float("HELDOUT_PHASE_NOTICE_S", 86400.0)
# The site's address as webhook payloads and e-mails give it ("https://heldout.example.org"); empty:
# their URLs are paths.
HELDOUT_SITE_URL = env_str("HELDOUT_SITE_URL", "").rstrip("/")
# `GET /api/v1/submissions/<id>/?wait=N` (docs/api.md#waiting-for-a-score): at most this
# many such waits hold a thread in each web process at once; beyond, the answer is immediate.
HELDOUT_WAITS_PER_PROCESS = env_int("HELDOUT_WAITS_PER_PROCESS", 4)

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    # A broker that needs no server: messages are files under var/broker/. Named with a
    # host, which it ignores, or kombu warns "No hostname was supplied" at every start.
    if CELERY_BROKER_URL == "filesystem://":
        CELERY_BROKER_URL = "filesystem://localhost//"
    _broker_dir = DATA_DIR / "broker"
    # kombu does not create these; web and worker may start in either order.
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # Redis redelivers an unacknowledged task after this: keep it longer than any job
    # (inference plus scoring, judging.checks makes sure).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("HELDOUT_BROKER_VISIBILITY_TIMEOUT_S", 3600)
    }
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# A scoring keeps running through a broker restart (its claim, not its message, decides
# what happens to it; the message it can no longer acknowledge is harmless), as Celery 5
# does; said explicitly since Celery 6 would cancel it.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "cpu"
# During an outage (database, broker, cache or storage unreachable) requests are answered 503
# with this Retry-After (competitions/outages.py).
HELDOUT_OUTAGE_RETRY_AFTER_S = env_int("HELDOUT_OUTAGE_RETRY_AFTER_S", 30)
HELDOUT_OUTBOX_SWEEP_S = env_float("HELDOUT_OUTBOX_SWEEP_S", 5.0)
HELDOUT_OUTBOX_KEEP_S = env_float("HELDOUT_OUTBOX_KEEP_S", 7 * 86400.0)
# `celery beat` runs the entries marked "heldout_in_scheduler" itself, so that they never
# wait behind the workers' backlog of scorings; it sends the others (config/celery_app.py).
CELERY_BEAT_SCHEDULER = "config.celery_app:Scheduler"
CELERY_BEAT_SCHEDULE = {
    "reap-stale-submissions": {
        "task": "scoring.tasks.submissions_reap_task",
        "schedule": env_float("HELDOUT_REAP_EVERY_S", 30.0),
        "options": {"heldout_in_scheduler": True},
    },
    "collect-submission-images": {
        "task": "scoring.tasks.images_gc_task",
        "schedule": env_float("HELDOUT_IMAGES_GC_EVERY_S", 3600.0),
    },
    # Webhook deliveries whose message was lost (broker down, worker died) are sent again.
    "resend-webhook-deliveries": {
        "task": "competitions.tasks.webhook_deliveries_resend_task",
        "schedule": 300.0,
    },
    # The transactional outbox (competitions/services/outbox.py): messages the broker did not
    # take at commit are sent within seconds of its return.
    "sweep-outbox": {
        "task": "competitions.tasks.outbox_sweep_task",
        "schedule": HELDOUT_OUTBOX_SWEEP_S,
        "options": {"heldout_in_scheduler": True},
    },
    "purge-outbox": {
        "task": "competitions.tasks.outbox_purge_task",
        "schedule": 3600.0,
    },
    # Members hear of a phase opening and ending soon (docs/notifications.md).
    "notify-phases": {
        "task": "competitions.tasks.phase_notices_task",
        "schedule": env_float("HELDOUT_PHASE_NOTICES_EVERY_S", 600.0),
    },
    # A phase that scores its own data has its task version ranked once it opens
    # (competitions/services/phase_versions.py; a submission to it does so at once too).
    "rank-phase-versions": {
        "task": "competitions.tasks.phase_versions_task",
        "schedule": env_float("HELDOUT_PHASE_VERSIONS_EVERY_S", 60.0),
    },
    # Resumable uploads expire 24 h after their last byte (docs/uploads.md).
    "delete-expired-uploads": {
        "task": "competitions.tasks.uploads_expire_task",
        "schedule": 3600.0,
    },
}

# The shared cache, where every throttle keeps its counts (competitions/throttles.py): one
# for all web processes on all hosts, so a limit holds however requests are spread. Redis
# when HELDOUT_CACHE_URL is set (production); otherwise a table in the database, which every
# process using that database shares (the demo; `migrate` creates it, competitions/apps.py).
HELDOUT_CACHE_URL = env_str("HELDOUT_CACHE_URL", "")
HELDOUT_CACHE_KEY_PREFIX = env_str("HELDOUT_CACHE_KEY_PREFIX", "heldout")
CACHES: dict[str, dict[str, object]]
if HELDOUT_CACHE_URL:
    if not HELDOUT_CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(
            f"HELDOUT_CACHE_URL={HELDOUT_CACHE_URL!r}: use a Redis URL (redis://host:6379/1)."
        )
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": HELDOUT_CACHE_URL,
            "KEY_PREFIX": HELDOUT_CACHE_KEY_PREFIX,
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "heldout_cache",
            "KEY_PREFIX": HELDOUT_CACHE_KEY_PREFIX,
        }
    }

# What each leaderboard version renders (competitions/boardcache.py): in the same Redis when
# HELDOUT_CACHE_URL is set, so every process on every host renders a version once; otherwise
# in each process's memory (right too: a version's answer never changes, only its key).
HELDOUT_BOARD_CACHE = env_bool("HELDOUT_BOARD_CACHE", True)
# How long a web process may answer anonymous board reads from the competition's row it
# read last (competitions/boardfast.py): reads cost no query; a board may show a change that
# late. 0: the row is read on every request.
HELDOUT_BOARD_FRESH_MS = env_int("HELDOUT_BOARD_FRESH_MS", 100)
CACHES["boards"] = {
    **(
        CACHES["default"]
        if HELDOUT_CACHE_URL
        else {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "heldout-boards",
            "OPTIONS": {"MAX_ENTRIES": 1000},
        }
    ),
    # Old versions are never asked for again; a deploy's new templates show within this.
    "TIMEOUT": 600,
}
# In front of it, each process's own copies of the answers it gave last: a kept answer then
# costs no round trip to Redis (right for the same reason).
CACHES["boards-local"] = {
    "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
    "LOCATION": "heldout-boards-local",
    "OPTIONS": {"MAX_ENTRIES": 200},
    "TIMEOUT": 600,
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "competitions.api.errors.exception_handler",
    # Throttles count anonymous clients by address: REMOTE_ADDR, or with N proxies in front
    # the address the outermost one saw (X-Forwarded-For's Nth entry from the right). Never
    # the whole header (DRF's default), which a client writes: a new value per try escaped.
    "NUM_PROXIES": env_int("HELDOUT_NUM_PROXIES", 0),
    "DEFAULT_THROTTLE_RATES": {
        "submissions": env_str("HELDOUT_THROTTLE_SUBMISSIONS", "60/hour"),
        "auth": env_str("HELDOUT_THROTTLE_AUTH", "20/minute"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Heldout API",
    "DESCRIPTION": "Competitions with hidden test labels: submit predictions, read scores and leaderboards.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI is served from the drf-spectacular-sidecar package, never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Operation ids and tags without the version ("competitions_list", tag "competitions"):
    # the names a generated client's functions and modules get.
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "competitions.api.schema.add_error_responses",
        "competitions.api.schema.one_request_media_type",
    ],
    # Request bodies get their own components (files as binary), so a generated client
    # sends a file as a multipart part, not as a JSON string.
    "COMPONENT_SPLIT_REQUEST": True,
    # What a phase takes, in the competitions' and the suites' phases alike: one name.
    "ENUM_NAME_OVERRIDES": {"PhaseKindEnum": ["predictions", "container"]},
}

# Time, level, logger, request and submission ids on every line; one JSON object a line with
# HELDOUT_LOG_JSON=1 (competitions/ops/logs.py). Celery's workers use it too (config/celery_app.py).
LOGGING = logging_config(
    level=env_str("DJANGO_LOG_LEVEL", "INFO"), json_lines=env_bool("HELDOUT_LOG_JSON", False)
)
# /metrics answers only requests with `Authorization: Bearer <this>`; empty: no /metrics.
HELDOUT_METRICS_TOKEN = env_str("HELDOUT_METRICS_TOKEN", "")
# Error reporting to Sentry when set (sentry-sdk: the `sentry` extra, in both locks).
HELDOUT_SENTRY_DSN = env_str("HELDOUT_SENTRY_DSN", "")
if HELDOUT_SENTRY_DSN:
    sentry_init(dsn=HELDOUT_SENTRY_DSN)
