"""manage.py bundle validate|diff|apply PATH: what a bundle repository's CI runs."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from competitions.models import Competition
from competitions.services.teams import competition_join
from tests import factories
from tests.competitions.test_bundle_apply import rewrite
from tests.competitions.test_bundles import write_bundle, zip_folder

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("bundle", *args, stdout=out)
    return out.getvalue()


def test_validate_checks_a_bundle_without_writing(tmp_path):
    folder = write_bundle(tmp_path / "repo")

    assert run("validate", str(folder)).startswith("tiny-bundle: valid (binary task")
    assert run("validate", str(zip_folder(folder, tmp_path / "b.zip"))).startswith("tiny-bundle")
    assert not Competition.objects.exists()


def test_validate_lists_every_problem_and_fails(tmp_path):
    folder = write_bundle(tmp_path / "repo")
    rewrite(folder, lambda doc: doc.update(max_team_size=0, replicate_top_n=-1))

    with pytest.raises(CommandError) as excinfo:
        run("validate", str(folder))

    assert "max_team_size:" in str(excinfo.value)
    assert "replicate_top_n:" in str(excinfo.value)


def test_diff_then_apply_then_diff_again(tmp_path, organizer):
    folder = write_bundle(tmp_path / "repo")

    assert run("diff", str(folder), "--organizer", organizer.username).startswith(
        "tiny-bundle: would be created"
    )
    assert run("apply", str(folder), "--organizer", organizer.username).startswith(
        "tiny-bundle: created"
    )
    rewrite(folder, lambda doc: doc.update(title="Renamed"))
    diff = run("diff", str(folder), "--organizer", organizer.username)
    assert diff.splitlines() == [
        "tiny-bundle: would change",
        '  ~ title: "A tiny bundle" -> "Renamed"',
    ]
    body = json.loads(run("diff", str(folder), "--organizer", organizer.username, "--json"))
    assert body["changes"] == [{"field": "title", "old": "A tiny bundle", "new": "Renamed"}]
    assert body["applied"] is False
    assert Competition.objects.get().title == "A tiny bundle"


def test_a_refused_diff_exits_2(tmp_path, organizer, participant):
    folder = write_bundle(tmp_path / "repo")
    run("apply", str(folder), "--organizer", organizer.username)
    competition = Competition.objects.get()
    team = competition_join(competition=competition, user=participant, accept_rules=True).team
    factories.submission_row(team).save()
    rewrite(folder, lambda doc: doc["phases"][0].update(name="Other"))

    out = io.StringIO()
    with pytest.raises(CommandError) as diffed:
        call_command("bundle", "diff", str(folder), "--organizer", "orga", stdout=out)
    with pytest.raises(CommandError) as applied:
        run("apply", str(folder), "--organizer", organizer.username)

    assert (diffed.value.returncode, applied.value.returncode) == (2, 2)
    assert '  REFUSED: phases: "Main" has 1 submission(s)' in out.getvalue()
    assert 'phases: "Main" has 1 submission(s)' in str(applied.value)
    assert Competition.objects.get().phases.get().name == "Main"


def test_apply_needs_an_organizer_of_the_competition(tmp_path, organizer, other_organizer):
    folder = write_bundle(tmp_path / "repo")
    with pytest.raises(CommandError, match="need --organizer"):
        run("apply", str(folder))
    run("apply", str(folder), "--organizer", organizer.username)

    with pytest.raises(CommandError, match="organizers"):
        run("apply", str(folder), "--organizer", other_organizer.username)
