"""A client generated from the live OpenAPI schema by openapi-python-client imports, type-checks
with mypy, and runs the participant flow against gunicorn: list competitions (one with no end
date: `end_at` null), join, upload predictions (multipart), follow the submission until it is
scored, read the leaderboard. Scoring runs in this process (the server's queue has no worker).

Issue 13: a client generated from the schema did not work (untyped responses, four modules
that failed to import, the competition list crashing on `end_at: null`)."""

from __future__ import annotations

import importlib
import io
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import requests
from rest_framework.authtoken.models import Token

from competitions.models import Submission
from judging.services import submission_score
from tests import factories
from tests.web_process import web_process
from tests.worker_process import ROOT

pytestmark = pytest.mark.django_db(transaction=True)

PACKAGE = "heldout_generated_api"
BIN = Path(sys.executable).parent
# Media types the generator has no reader for: files are bytes whatever their kind.
CONFIG = """\
content_type_overrides:
  application/zip: application/octet-stream
  application/offset+octet-stream: application/octet-stream
  application/yaml: text/plain
  image/svg+xml: text/plain
"""
# The generator's own client.py (a fixed template, not from our schema) passes `*args:
# object` to httpx's typed __exit__; everything generated from the schema is checked fully.
MYPY_CONFIG = f"""\
[mypy]
strict_optional = True
warn_unused_ignores = True

[mypy-{PACKAGE}.client]
disable_error_code = arg-type
"""


def _generate(base: str, out: Path) -> Path:
    schema = requests.get(f"{base}/api/schema/?format=json", timeout=30)
    assert schema.status_code == 200, schema.text[:500]
    (out / "schema.json").write_bytes(schema.content)
    (out / "config.yml").write_text(CONFIG)
    run = subprocess.run(
        [
            *(str(BIN / "openapi-python-client"), "generate", "--meta", "none"),
            *("--path", str(out / "schema.json"), "--output-path", str(out / PACKAGE)),
            *("--config", str(out / "config.yml")),
        ],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": f"{BIN}:/usr/bin:/bin"},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    # The generator warns and leaves out what it cannot type; nothing may be left out.
    assert "Endpoint will not be generated" not in run.stdout + run.stderr, run.stdout
    assert "will be omitted" not in run.stdout + run.stderr, run.stdout
    return out / PACKAGE


@pytest.fixture
def generated(tmp_path) -> Iterator[tuple[str, ModuleType]]:
    with web_process(tmp_path / "gunicorn.log") as base:
        package = _generate(base, tmp_path)
        sys.path.insert(0, str(tmp_path))
        try:
            yield base, importlib.import_module(PACKAGE)
        finally:
            sys.path.remove(str(tmp_path))
            for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
                del sys.modules[name]
            assert package.is_dir()


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_every_generated_module_imports_and_the_package_type_checks(generated, tmp_path):
    _, package = generated
    root = Path(package.__file__).parent
    modules = sorted(
        ".".join(p.relative_to(tmp_path).with_suffix("").parts)
        for p in root.rglob("*.py")
        if p.name != "__init__.py"
    )
    assert len(modules) > 60  # every operation and model, not a stub
    for name in modules:
        importlib.import_module(name)
    (tmp_path / "mypy.ini").write_text(MYPY_CONFIG)
    run = subprocess.run(
        [str(BIN / "mypy"), "--config-file", "mypy.ini", "--no-incremental", "-p", PACKAGE],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-5000:]


def test_the_generated_client_runs_the_participant_flow(generated, settings, organizer):
    base, _ = generated
    competition = factories.make_competition(organizers=[organizer])
    assert competition.end_at is None  # the list once crashed on `end_at: null`
    user = factories.make_user("dana")
    token, _ = Token.objects.get_or_create(user=user)
    client_module = _module("client")
    models = _module("models")
    types = _module("types")
    client = client_module.AuthenticatedClient(
        base_url=base, token=token.key, prefix="Token", raise_on_unexpected_status=True
    )

    listed = _module("api.competitions.competitions_list").sync(client=client)
    assert isinstance(listed, models.CompetitionPageOutput), listed
    assert (listed.count, listed.next_, listed.previous) == (1, None, None)
    assert [c.slug for c in listed.results] == ["tiny"]
    assert listed.results[0].end_at is None

    join = _module("api.competitions.competitions_join_create")
    joined = join.sync("tiny", client=client, body=models.JoinInputRequest(accept_rules=True))
    assert isinstance(joined, models.JoinOutput)
    assert joined.team.name

    create = _module("api.competitions.competitions_submissions_create")
    upload = types.File(
        payload=io.BytesIO(factories.perfect_predictions()), file_name="predictions.csv"
    )
    body = models.SubmissionCreateInputRequest(file=upload, method_name="generated client")
    created = create.sync("tiny", client=client, body=body)
    assert isinstance(created, models.SubmissionOutput), created
    assert created.status == "queued"
    assert created.started_at is None  # nullable, and parsed as such

    settings.HELDOUT_SCORER = "in-process"
    assert submission_score(submission_id=created.id) is True
    detail = _module("api.submissions.submissions_retrieve")
    deadline = time.monotonic() + 30
    while (status := detail.sync(created.id, client=client)).status != "scored":
        assert status.status in ("queued", "running"), status
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert status.scores["public"]["roc_auc"] == 1.0
    assert Submission.objects.get(pk=created.id).status == Submission.Status.SCORED

    board = _module("api.competitions.competitions_leaderboard_retrieve").sync(
        "tiny", client=client
    )
    assert isinstance(board, models.LeaderboardOutput), board
    assert board.count == 1
    assert board.next_ is None
    assert [(r.team, r.submission_id, r.score) for r in board.results] == [
        (joined.team.name, created.id, 1.0)
    ]


def test_the_generated_client_parses_errors_as_the_error_format(generated):
    base, _ = generated
    client = _module("client").Client(base_url=base)
    missing = _module("api.competitions.competitions_retrieve").sync("nope", client=client)
    error = _module("models").Error
    assert isinstance(missing, error)
    assert missing.code == "not_found"
    assert missing.detail
    assert ROOT.is_dir()
