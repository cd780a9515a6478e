"""Shared personas: every endpoint is tried by each of them.

- organizer: organizes `competition`
- participant: joined `competition` (team of one)
- other_participant: joined `competition` in another team
- outsider: signed in, nothing to do with `competition`
- other_organizer: organizes `other_competition` only
- submission: the participant's unscored submission to `competition`

`persona_user(request, name)` gives a persona by name (None for "anonymous") in a
parametrized test, with what makes it that persona (other_organizer's competition).

Real servers shared by several test modules: `s3` (moto's S3 server) and `on_s3` (this
process storing its files there), `docker_client` and `scorer_image` (failing, never
skipping, without them), `registry` (Debian's docker-registry on loopback) and
`pushed_scorer` (the scorer image pushed there once a run: its digest reference).
"""

import os
import subprocess
from pathlib import Path

import docker
import docker.errors
import pytest
from django.apps import apps
from django.core.files.storage import storages
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from competitions.models import _private_storage
from competitions.services.teams import competition_join
from config.storages import storages_from_env
from tests import factories
from tests.registry_server import free_port, registry_server, untag
from tests.s3_server import S3Server, s3_server

ROOT = Path(__file__).resolve().parent.parent
PUSH = ROOT / "deploy" / "scorer-image" / "push.sh"


@pytest.fixture
def organizer(db):
    return factories.make_user("orga", staff=True)


@pytest.fixture
def other_organizer(db):
    return factories.make_user("otherorga", staff=True)


@pytest.fixture
def participant(db):
    return factories.make_user("alice")


@pytest.fixture
def other_participant(db):
    return factories.make_user("bob")


@pytest.fixture
def outsider(db):
    return factories.make_user("charlie")


@pytest.fixture
def competition(organizer, participant, other_participant):
    competition = factories.make_competition(organizers=[organizer])
    competition_join(competition=competition, user=participant, accept_rules=True)
    competition_join(competition=competition, user=other_participant, accept_rules=True)
    return competition


@pytest.fixture
def other_competition(other_organizer):
    return factories.make_competition(slug="other", organizers=[other_organizer])


@pytest.fixture
def submission(competition, participant):
    return factories.submitted(competition, participant)


def persona_user(request, persona: str):
    if persona == "anonymous":
        return None
    if persona == "other_organizer":
        request.getfixturevalue("other_competition")
    return request.getfixturevalue(persona)


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def api_submit(client: APIClient, slug: str, content: bytes) -> int:
    """Upload predictions to the competition through the API (accepted: 202); the id."""
    response = client.post(
        f"/api/v1/competitions/{slug}/submissions/",
        {"file": factories.upload(content)},
        format="multipart",
    )
    assert response.status_code == 202, response.content
    return response.json()["id"]


@pytest.fixture
def api():
    """`api(user)` gives a REST client authenticated by the user's token (None: anonymous)."""
    return client_for


@pytest.fixture(autouse=True, scope="session")
def submission_images_collected_at_the_end():
    """The submission images this test run loaded go when it ends: they are in its own
    deployment's repository (HELDOUT_DEPLOYMENT_ID is fresh per run), so collecting them
    never touches another run's or deployment's images on a shared engine."""
    yield
    from judging.images import images_gc

    images_gc(keep=set())  # without an engine: nothing to collect


@pytest.fixture(autouse=True)
def board_cache_emptied():
    """Each test starts with no kept leaderboard (competitions/boardcache.py) and no kept
    bounds (selectors.board_statistics_read): a rolled-back test's versions come again in
    the next, under ids SQLite hands out again."""
    from django.core.cache import caches

    from competitions import selectors
    from suites.selectors import suite_matrices_forgotten

    caches["boards"].clear()
    caches["boards-local"].clear()
    selectors.bounds_forgotten()
    suite_matrices_forgotten()


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with s3_server(tmp_path_factory.mktemp("s3") / "moto.log") as server:
        yield server


@pytest.fixture
def on_s3(s3: S3Server, settings, monkeypatch) -> S3Server:
    """This (web) process stores its files in the S3 server, as production would."""
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    settings.STORAGES = {**settings.STORAGES, **storages_from_env(Path(settings.DATA_DIR))}
    private = storages["private"]
    # Fields on the private storage built it at import time, from the file-system settings.
    for model in apps.get_models():
        for field in model._meta.get_fields():
            if getattr(field, "_storage_callable", None) is _private_storage:
                monkeypatch.setattr(field, "storage", private)
    return s3


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(
            f"No Docker engine is reachable ({exc}). Start one with deploy/dockerd.sh.",
            pytrace=False,
        )
    return client


@pytest.fixture(scope="session")
def scorer_image(docker_client: docker.DockerClient) -> str:
    image = os.environ.get("HELDOUT_SCORER_IMAGE", "heldout-scorer:latest")
    try:
        docker_client.images.get(image)
    except docker.errors.ImageNotFound:
        pytest.fail(
            f"The scorer image {image} is missing. Build it with deploy/scorer-image/build.sh.",
            pytrace=False,
        )
    return image


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    folder = tmp_path_factory.mktemp("registry")
    storage = folder / "storage"
    with registry_server(storage, free_port(), folder / "registry.log") as address:
        yield {"address": address, "storage": storage, "folder": folder}


@pytest.fixture(scope="session")
def pushed_scorer(docker_client, scorer_image, registry):
    """The scorer image pushed by deploy/scorer-image/push.sh: its repo@sha256 reference."""
    prefix = f"{registry['address']}/heldout"
    done = subprocess.run(
        ["bash", str(PUSH), scorer_image],
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HELDOUT_IMAGE_REGISTRY": prefix},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    reference = done.stdout.strip().splitlines()[-1]
    yield reference
    untag(docker_client, f"{prefix}/scorer:{scorer_image.rpartition(':')[2]}")
    untag(docker_client, reference)
