"""The README's "Use the heldout client" commands, run as written against the demo
competition (manage.py demo_setup) on a live site with a real worker."""

from __future__ import annotations

import re
import shlex

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from tests.client.conftest import explain, token_of
from tests.worker_process import ROOT

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


def _readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Use the heldout client", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "no command block in the README's client section"
    return [line for line in block[1].splitlines() if line.strip()]


def test_the_readmes_six_client_commands_work_on_the_demo(live, heldout, home):
    call_command("demo_setup", "--base-url", live.url)
    token = token_of(User.objects.get(username="participant"))
    commands = _readme_commands()
    assert len(commands) == 6

    results = []
    for line in commands:
        line = line.replace("http://127.0.0.1:8000", live.url).replace("$TOKEN", token)
        program, *args = shlex.split(line)
        assert program == ".venv/bin/heldout"
        result = heldout(*args)
        assert result.code == 0, f"{line}\n{explain(result)}"
        results.append(result)

    submitted, board = results[4], results[5]
    assert "public roc_auc: 0.5" in submitted.out
    assert re.search(r"^\s*\d+\s+participant\s+0\.5\s", board.out, re.M), board.out
