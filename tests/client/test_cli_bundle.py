"""`heldout bundle validate|diff|apply` against a live site (gunicorn on the test database):
an organizer exports a competition, edits settings and a file in the folder, sees the diff,
applies it and applies it again (no change); a participant and another competition's
organizer are refused, a finalized competition refuses changes (exit 5), a broken bundle
is invalid (exit 2)."""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path

import pytest
from django.utils import timezone
from heldout.bundles import zip_folder

from competitions.models import Competition, TaskFile
from competitions.services.bundles import file_sha256
from tests.client.conftest import explain, token_of

pytestmark = [pytest.mark.django_db(transaction=True)]

# The subprocess imports the client of this checkout (the venv's editable install may be
# another checkout's).
CLIENT_DIR = str(Path(__file__).resolve().parents[2] / "client")


@pytest.fixture
def tiny(competition):
    """The conftest competition with its files' sha256 recorded, as an import or upload
    records them (the factory writes the files only)."""
    task = competition.task
    task.ground_truth_sha256 = file_sha256(Path(task.ground_truth.path))
    task.save(update_fields=["ground_truth_sha256"])
    for f in task.files.all():
        f.sha256 = file_sha256(Path(f.file.path))
        f.save(update_fields=["sha256"])
    return competition


def _export(heldout, env, home: Path) -> Path:
    exported = heldout("bundle", "export", "tiny", "-o", "tiny.zip", env=env)
    assert exported.code == 0, explain(exported)
    folder = home / "bundle"
    with zipfile.ZipFile(home / "tiny.zip") as bundle:
        bundle.extractall(folder)
    return folder


def _edit(folder: Path) -> None:
    """Daily limit 5 -> 3, a new description, new sample submission bytes."""
    yaml_path = folder / "competition.yaml"
    text = yaml_path.read_text()
    assert "daily_limit: 5" in text, text
    text = text.replace("daily_limit: 5", "daily_limit: 3")
    text = re.sub(r"^description:.*$", "description: Now with a description.", text, flags=re.M)
    yaml_path.write_text(text)
    (sample,) = folder.rglob("sample_submission.csv")
    sample.write_text(sample.read_text() + "\n")


def test_an_organizer_diffs_and_applies_an_edited_export(site, heldout, home, tiny, organizer):
    env = {"HELDOUT_URL": site, "HELDOUT_TOKEN": token_of(organizer), "PYTHONPATH": CLIENT_DIR}
    folder = _export(heldout, env, home)
    unchanged = heldout("bundle", "diff", str(home / "tiny.zip"), env=env)
    assert (unchanged.code, unchanged.out.strip()) == (0, "tiny: no change"), explain(unchanged)
    _edit(folder)

    valid = heldout("bundle", "validate", str(folder), env=env)
    assert (valid.code, valid.out.strip()) == (0, "tiny: valid"), explain(valid)
    diff = heldout("bundle", "diff", str(folder), env=env)
    assert diff.code == 0, explain(diff)
    assert re.search(r"^phases\[Main\]\.daily_limit\s+5\s+3\s*$", diff.out, re.M), diff.out
    assert re.search(r'^description\s+"".*"Now with a description\."', diff.out, re.M), diff.out
    assert re.search(r"^task\.files\[sample_submission\.csv\]\s+changed\s", diff.out, re.M)
    as_json = heldout("bundle", "diff", str(folder), "--json", env=env)
    changes = {c["field"]: c["new"] for c in json.loads(as_json.out)["changes"]}
    assert changes == {
        "description": "Now with a description.",
        "phases[Main].daily_limit": 3,
    }, as_json.out
    assert Competition.objects.get(slug="tiny").phases.get().daily_limit == 5

    declined = heldout("bundle", "apply", str(folder), env=env, input="n\n")
    assert declined.code == 1, explain(declined)
    assert Competition.objects.get(slug="tiny").phases.get().daily_limit == 5
    applied = heldout("bundle", "apply", str(folder), "--yes", env=env)
    assert (applied.code, applied.err.strip()) == (0, "updated tiny"), explain(applied)

    again = heldout("bundle", "apply", str(folder), "--yes", env=env)
    assert (again.code, again.out.strip()) == (0, "tiny: no change"), explain(again)
    detail = heldout("competitions", "show", "tiny", env=env)
    assert "Now with a description." in detail.out, explain(detail)
    tiny = Competition.objects.get(slug="tiny")
    assert tiny.phases.get().daily_limit == 3
    sample = TaskFile.objects.get(task__competition=tiny, name="sample_submission.csv")
    assert sample.file.read().endswith(b"\n\n")

    yaml_path = folder / "competition.yaml"
    yaml_path.write_text(yaml_path.read_text().replace("slug: tiny", "slug: tiny-copy"))
    created = heldout("bundle", "apply", str(folder), "--yes", "--json", env=env)
    assert created.code == 0, explain(created)
    assert created.err.startswith("tiny-copy: create ("), explain(created)
    assert created.err.rstrip().endswith("created tiny-copy"), explain(created)
    body = json.loads(created.out)
    assert (body["slug"], body["created"], body["applied"]) == ("tiny-copy", True, True)
    assert Competition.objects.get(slug="tiny-copy").organizers.get() == organizer


def test_a_folder_is_zipped_the_same_way_every_time_without_its_hidden_files(tmp_path):
    folder = tmp_path / "bundle"
    (folder / "data").mkdir(parents=True)
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (folder / "competition.yaml").write_text("slug: x\n")
    (folder / "data" / "train.csv").write_text("id,label\n1,0\n")
    first = zip_folder(folder, tmp_path / "first.zip").read_bytes()
    os.utime(folder / "competition.yaml", (0, 0))
    second = zip_folder(folder, tmp_path / "second.zip").read_bytes()
    assert first == second
    with zipfile.ZipFile(tmp_path / "first.zip") as archive:
        assert archive.namelist() == ["competition.yaml", "data/train.csv"]


def test_apply_is_refused_to_outsiders_to_a_finalized_competition_and_for_broken_bundles(
    site, heldout, home, tiny, organizer, participant, other_organizer
):
    client = {"HELDOUT_URL": site, "PYTHONPATH": CLIENT_DIR}
    as_organizer = client | {"HELDOUT_TOKEN": token_of(organizer)}
    folder = _export(heldout, as_organizer, home)
    _edit(folder)
    for outsider in (participant, other_organizer):
        refused = heldout(
            "bundle",
            "apply",
            str(folder),
            "--yes",
            env=client | {"HELDOUT_TOKEN": token_of(outsider)},
        )
        assert refused.code == 1, explain(refused)
        assert re.search(r"\((403|404) ", refused.err), refused.err
    assert Competition.objects.get(slug="tiny").phases.get().daily_limit == 5

    yaml_path = folder / "competition.yaml"
    good = yaml_path.read_text()
    yaml_path.write_text(good.replace("daily_limit: 3", "daily_limit: many"))
    invalid = heldout("bundle", "apply", str(folder), "--yes", env=as_organizer)
    assert invalid.code == 2, explain(invalid)
    assert re.search(r"^  - .*daily_limit", invalid.err, re.M), invalid.err
    not_a_bundle = heldout("bundle", "validate", str(home), env=as_organizer)
    assert (not_a_bundle.code, "no competition.yaml" in not_a_bundle.err) == (2, True)

    yaml_path.write_text(good)
    Competition.objects.filter(slug="tiny").update(finalized_at=timezone.now())
    final = heldout("bundle", "apply", str(folder), "--yes", env=as_organizer)
    assert final.code == 5, explain(final)
    assert "refused: " in final.out, explain(final)
    assert Competition.objects.get(slug="tiny").phases.get().daily_limit == 5
