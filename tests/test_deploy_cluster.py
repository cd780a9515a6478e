"""deploy/compose.cluster.yaml, the several-hosts recipe, keeps its promises: web, N
workers, one scheduler, PostgreSQL, Redis, MinIO and a registry; one settings source for
every app container on every host; nothing shared between the web and the workers but
the network (files through MinIO, images through the registry by digest).

The Docker Compose plugin is not installed here, so the file is read as compose reads it:
YAML with its anchors and merges, then compose's `${...}` interpolation (below) with the
values of deploy/cluster.env.example; the resulting environment is handed to Django's
production settings in a process of its own.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

import dj_database_url
import pytest
import yaml

from tests.test_deploy import DEPLOY, ROOT, is_setting, settings_read_by_code

APP_SERVICES = ("web", "worker", "scheduler")
CORE = "10.0.0.10"
FILLED = {
    "POSTGRES_PASSWORD": "pg-secret",
    "REDIS_PASSWORD": "redis-secret",
    "MINIO_ROOT_PASSWORD": "minio-secret",
    "HELDOUT_SCORER_IMAGE": f"{CORE}:5000/heldout/scorer@sha256:{'ab' * 32}",
}
_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


class Unset(Exception):
    """A required `${NAME:?message}` had no value: compose refuses the file."""


def interpolate(value: Any, variables: dict[str, str]) -> Any:
    """Compose's interpolation of every string in the loaded file: $$, ${NAME},
    ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}."""
    if isinstance(value, dict):
        return {key: interpolate(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, variables) for item in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        name, operator, argument = match[1], match[2], match[3]
        given = variables.get(name)
        missing = given is None or (given == "" and operator and operator.startswith(":"))
        if operator and operator.endswith("-") and missing:
            return argument
        if operator and operator.endswith("?") and missing:
            raise Unset(f"{name}: {argument}")
        return given or ""

    return _VARIABLE.sub(one, value)


def example_variables() -> dict[str, str]:
    text = (DEPLOY / "cluster.env.example").read_text()
    return dict(re.findall(r"(?m)^([A-Z][A-Z0-9_]*)=(.*)$", text))


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load((DEPLOY / "compose.cluster.yaml").read_text())


@pytest.fixture(scope="module")
def cluster(raw) -> dict:
    return interpolate(raw, {**example_variables(), **FILLED})


def app_environment(cluster: dict) -> dict[str, str]:
    return cluster["services"]["web"]["environment"]


def test_the_recipe_runs_web_workers_beat_postgres_redis_minio_and_a_registry(raw):
    services = raw["services"]
    assert set(services) == {
        *APP_SERVICES,
        *("postgres", "redis", "minio", "minio-buckets", "registry"),
    }
    assert services["worker"]["profiles"] == ["worker"]
    core = [name for name in services if name != "worker"]
    assert all(services[name]["profiles"] == ["core"] for name in core)
    worker = services["worker"]["command"]
    assert "celery -A config.celery_app worker -Q cpu" in worker
    assert "--concurrency ${WORKER_CONCURRENCY:-2}" in worker
    assert "celery -A config.celery_app beat" in services["scheduler"]["command"]
    assert "gunicorn config.wsgi" in " ".join(services["web"]["command"])
    assert "deploy" not in services["scheduler"], "one scheduler, never replicated"


def test_every_app_container_on_every_host_reads_one_settings_source(raw):
    services = raw["services"]
    for key in ("image", "env_file", "environment"):
        values = [services[name].get(key) for name in APP_SERVICES]
        assert values[0], f"web has no {key}"
        assert values.count(values[0]) == len(values), f"{key} differs: {values}"
    assert services["web"]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert "build" not in services["worker"], "worker hosts pull the image, never build it"


def test_the_workers_share_no_volume_with_the_web_and_wait_for_nothing_on_the_core(raw):
    services = raw["services"]

    def sources(name: str) -> set[str]:
        return {volume.split(":")[0] for volume in services[name].get("volumes", [])}

    assert not sources("worker") & sources("web")
    assert not sources("worker") & sources("scheduler")
    # The engine's socket, and /tmp at the same path as the host's for the sandbox's mounts.
    assert set(services["worker"]["volumes"]) == {
        "/tmp:/tmp",
        "/var/run/docker.sock:/var/run/docker.sock",
    }
    assert all(not source.startswith("/") for source in sources("web")), "web binds no host path"
    assert "depends_on" not in services["worker"], "a worker host runs no core service"


def test_files_go_through_minio_and_images_through_the_registry_on_the_core_address(cluster):
    env = app_environment(cluster)
    services = cluster["services"]
    database = dj_database_url.parse(env["DATABASE_URL"])
    assert (database["HOST"], database["PORT"]) == (CORE, 5432)
    assert database["PASSWORD"] == services["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert env["CELERY_BROKER_URL"] == f"redis://:redis-secret@{CORE}:6379/0"
    assert env["HELDOUT_CACHE_URL"] == f"redis://:redis-secret@{CORE}:6379/1"
    assert "--requirepass redis-secret" in services["redis"]["command"]
    assert env["HELDOUT_S3_ENDPOINT_URL"] == f"http://{CORE}:9000"
    minio = services["minio"]["environment"]
    assert env["HELDOUT_S3_ACCESS_KEY_ID"] == minio["MINIO_ROOT_USER"]
    assert env["HELDOUT_S3_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"] == "minio-secret"
    made = services["minio-buckets"]["entrypoint"][-1].split("mc mb --ignore-existing", 1)[1]
    buckets = {env["HELDOUT_S3_BUCKET"], env["HELDOUT_S3_PRIVATE_BUCKET"]}
    assert set(made.split()) == {f"core/{bucket}" for bucket in buckets}
    assert env["HELDOUT_IMAGE_REGISTRY"] == f"{CORE}:5000/heldout"
    assert env["HELDOUT_SCORER_IMAGE"].startswith(f"{CORE}:5000/heldout/scorer@sha256:")
    assert env["HELDOUT_SCORER_IMAGES"] == env["HELDOUT_SCORER_IMAGE"]
    published = {
        name: services[name]["ports"] for name in ("postgres", "redis", "minio", "registry")
    }
    assert published == {
        "postgres": [f"{CORE}:5432:5432"],
        "redis": [f"{CORE}:6379:6379"],
        "minio": [f"{CORE}:9000:9000"],
        "registry": [f"{CORE}:5000:5000"],
    }


def test_compose_refuses_the_file_until_the_passwords_and_the_scorer_digest_are_set(raw):
    variables = {**example_variables(), **FILLED}
    for name in FILLED:
        with pytest.raises(Unset, match=name):
            interpolate(raw, {**variables, name: ""})
    with pytest.raises(Unset, match="CORE_ADDRESS"):
        interpolate(raw, {k: v for k, v in variables.items() if k != "CORE_ADDRESS"})


def test_every_variable_the_file_uses_is_in_the_cluster_env_example(raw):
    text = (DEPLOY / "compose.cluster.yaml").read_text()
    used = {match[1] for match in _VARIABLE.finditer(text) if match[1]}
    listed = set(
        re.findall(r"(?m)^#?([A-Z][A-Z0-9_]*)=", (DEPLOY / "cluster.env.example").read_text())
    )
    assert used, "no ${...} read: the pattern went blind"
    assert not used - listed, f"not in deploy/cluster.env.example: {sorted(used - listed)}"


def test_every_environment_key_is_a_setting_the_code_reads(raw):
    settings = settings_read_by_code()
    unknown = [key for key in raw["x-heldout"]["environment"] if not is_setting(key, settings)]
    assert not unknown, f"compose.cluster.yaml sets variables nothing reads: {unknown}"


_SHOW_SETTINGS = """
import json, django
django.setup()
from django.conf import settings
print(json.dumps({
    "database": [settings.DATABASES["default"][k] for k in ("HOST", "PORT", "NAME")],
    "broker": settings.CELERY_BROKER_URL,
    "storages": {n: settings.STORAGES[n]["OPTIONS"].get("bucket_name") for n in ("default", "private")},
    "endpoint": settings.STORAGES["private"]["OPTIONS"]["endpoint_url"],
    "registry": settings.HELDOUT_IMAGE_REGISTRY,
    "scorer": settings.HELDOUT_SCORER_IMAGE,
}))
"""


def test_the_production_settings_take_the_environment_as_compose_hands_it_over(cluster, tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "HELDOUT_", "DATABASE_", "CELERY_"))
    }
    env.update(app_environment(cluster))
    env.update(
        DJANGO_SECRET_KEY="x" * 50,
        DJANGO_ALLOWED_HOSTS="heldout.example.org",
        HELDOUT_DATA_DIR=str(tmp_path),
    )
    shown = subprocess.run(
        [sys.executable, "-c", _SHOW_SETTINGS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    settings = json.loads(shown.stdout.strip().splitlines()[-1])
    assert settings["database"] == [CORE, 5432, "heldout"]
    assert settings["broker"] == f"redis://:redis-secret@{CORE}:6379/0"
    assert settings["storages"] == {"default": "heldout-public", "private": "heldout-private"}
    assert settings["endpoint"] == f"http://{CORE}:9000"
    assert settings["registry"] == f"{CORE}:5000/heldout"
    assert settings["scorer"] == FILLED["HELDOUT_SCORER_IMAGE"]
