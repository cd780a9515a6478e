"""schemathesis over the OpenAPI schema against a live gunicorn (PostgreSQL), bounded: a few
generated requests per operation, valid and invalid, as a participant and as an organizer.
No request may get a server error (5xx): bad input is a 4xx with the error format."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest
from rest_framework.authtoken.models import Token

from competitions.services.submissions import submission_create
from suites import services as suites
from tests import factories
from tests.web_process import web_process

pytestmark = pytest.mark.django_db(transaction=True)

BIN = Path(sys.executable).parent


def _fuzz(
    base: str, token: str, out: Path, ids: dict[str, int | str]
) -> subprocess.CompletedProcess:
    # Real ids for path parameters, so requests reach the views and not only 404s.
    config = out / "schemathesis.toml"
    config.write_text("[parameters]\n" + "".join(f'"path.{k}" = {v!r}\n' for k, v in ids.items()))
    command = [str(BIN / "schemathesis"), "--config-file", str(config), "run"]
    command += [f"{base}/api/schema/?format=json"]
    command += ["--url", base, "--header", f"Authorization: Token {token}"]
    command += ["--checks", "not_a_server_error", "--max-examples", "3", "--seed", "1"]
    command += ["--phases", "examples,coverage,fuzzing", "--request-timeout", "30"]
    # The tus PATCH body (application/offset+octet-stream) has no serializer in schemathesis:
    # tests/test_uploads_live.py sends it cut, short and long.
    command += ["--exclude-method", "PATCH", "--workers", "1"]
    command += ["--no-shrink", "--report", "junit", "--report-dir", str(out)]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=out)


@pytest.mark.parametrize("persona", ["participant", "organizer"])
def test_fuzzing_the_api_from_its_schema_finds_no_server_error(
    persona, request, competition, tmp_path
):
    user = request.getfixturevalue(persona)
    # Something to find: a submission (ids the fuzzer may hit) in the competition.
    submission = submission_create(
        competition=competition,
        user=request.getfixturevalue("participant"),
        uploaded_file=factories.upload(factories.perfect_predictions()),
    )
    # A suite of the same slug holding the competition, with the participant's method, so
    # that the suite's operations are reached too.
    suite = suites.suite_create(
        slug=competition.slug, title="Suite", organizer=request.getfixturevalue("organizer")
    )
    suites.suite_task_add(suite=suite, competition=competition, key="tiny", owned=False)
    method = suites.method_create(
        suite=suite, owner=request.getfixturevalue("participant"), name="m"
    )
    token, _ = Token.objects.get_or_create(user=user)
    with web_process(tmp_path / "gunicorn.log") as base:
        ids = {"slug": competition.slug, "submission_id": submission.pk}
        ids |= {"team_id": submission.team_id, "number": 1}
        ids |= {"method_id": method.pk, "key": "tiny", "phase_id": submission.phase_id}
        run = _fuzz(base, token.key, tmp_path, ids)
    assert run.returncode == 0, run.stdout[-8000:]
    report = ElementTree.parse(next(tmp_path.glob("junit-*.xml"))).getroot()
    assert int(report.attrib["tests"]) >= 35  # every operation but the tus PATCH was run
    assert report.attrib["failures"] == report.attrib["errors"] == "0"
    log = (tmp_path / "gunicorn.log").read_text()
    assert '" 500 ' not in log, log[-5000:]
    assert "Traceback" not in log, log[-5000:]
