"""A bundle holds every setting an organizer can change: export, import, export is identical."""

from __future__ import annotations

import time
import zipfile
from pathlib import Path
from unittest import mock

import pytest
import yaml
from django.core.files.storage import storages

from competitions.bundles import BundleInvalid
from competitions.models import Competition
from competitions.services.archive import competition_archive_export
from competitions.services.archive_import import competition_archive_import
from competitions.services.bundle_apply import bundle_apply
from competitions.services.bundles import bundle_export, bundle_import
from tests.competitions.test_bundles import bundle_yaml, write_bundle

pytestmark = pytest.mark.django_db

PROGRAM = "import json\nprint(json.dumps({'public': {}, 'private': {}}))\n"


def settings_yaml(**overrides) -> dict:
    """A bundle whose every setting differs from the default."""
    document = bundle_yaml(max_team_size=3, labels_published=True, replicate_top_n=2)
    document |= {"tie_rule": "metric", "tie_break_metric": "log_loss"}
    document["end"] = "2026-12-31T00:00:00Z"
    document["visibility"] = "unlisted"
    document["selection_limit"] = 3
    document["public_board"] = "ladder"
    document["task"].update(
        queue="gpu",
        limits={"memory_mb": 1024, "timeout_s": 60},
        inference_limits={"cpus": 2, "timeout_s": 300},
        scorer_image="",
        scorer_logs_visible=True,
        scorer_program="score.py",
        scorer_program_public=True,
    )
    document["phases"] = [
        {
            "name": "Warm-up",
            "start": "2026-01-01T00:00:00Z",
            "end": "2026-02-01T00:00:00Z",
            "daily_limit": 3,
            "total_limit": 20,
            "late_submissions_scored": False,
        },
        {
            "name": "Final",
            "start": "2026-02-01T00:00:00Z",
            "end": "2026-03-01T00:00:00Z",
            "daily_limit": 1,
            "total_limit": None,
            "late_submissions_scored": True,
            "kind": "container",
            "allow_build_context": True,
        },
    ]
    document.update(overrides)
    return document


def test_an_exported_bundle_imported_into_a_fresh_database_exports_the_same_bytes(tmp_path):
    source = write_bundle(tmp_path / "b", settings_yaml(), files={"score.py": PROGRAM})
    first = bundle_export(
        competition=bundle_import(source=source, organizer=None), dest=tmp_path / "1.zip"
    )
    Competition.objects.all().delete()  # what a fresh database holds of it

    again = bundle_import(source=first, organizer=None)
    with mock.patch("time.time", return_value=time.time() + 3 * 86400):  # another day
        second = bundle_export(competition=again, dest=tmp_path / "2.zip")

    assert first.read_bytes() == second.read_bytes()
    assert Competition.objects.get().slug == "tiny-bundle"


def test_every_setting_survives_the_round_trip(tmp_path):
    source = write_bundle(tmp_path / "b", settings_yaml(), files={"score.py": PROGRAM})
    first = bundle_export(
        competition=bundle_import(source=source, organizer=None), dest=tmp_path / "1.zip"
    )
    Competition.objects.all().delete()

    competition = bundle_import(source=first, organizer=None)

    assert (competition.max_team_size, competition.labels_published) == (3, True)
    assert (competition.replicate_top_n, competition.selection_limit) == (2, 3)
    assert competition.visibility == "unlisted"
    assert (competition.tie_rule, competition.tie_break_metric) == ("metric", "log_loss")
    assert competition.public_board == "ladder"
    task = competition.task
    assert task.queue == "gpu"
    assert task.limits == {"memory_mb": 1024, "timeout_s": 60}
    assert task.inference_limits == {"cpus": 2, "timeout_s": 300}
    assert (task.scorer_logs_visible, task.scorer_program_public) == (True, True)
    assert task.scorer_program.open("rb").read().decode() == PROGRAM
    assert len(task.scorer_program_sha256) == 64
    assert task.versions.get().scorer_program_sha256 == task.scorer_program_sha256
    final = competition.phases.get(name="Final")
    assert (final.submission_kind, final.allow_build_context) == ("container", True)
    assert (final.late_submissions_scored, final.daily_limit) == (True, 1)
    assert competition.phases.get(name="Warm-up").total_limit == 20
    document = yaml.safe_load(zipfile.ZipFile(first).read("competition.yaml"))
    assert document["task"]["scorer_program"] == "scorer/score.py"
    assert "activate" not in document["task"]


def test_a_bundle_without_the_settings_gets_the_defaults(tmp_path):
    competition = bundle_import(source=write_bundle(tmp_path / "b"), organizer=None)

    assert (competition.max_team_size, competition.replicate_top_n) == (5, 0)
    assert (competition.tie_rule, competition.tie_break_metric) == ("earlier", "")
    assert competition.public_board == "plain"
    assert (competition.task.queue, competition.task.limits, competition.task.scorer_program) == (
        "cpu",
        {},
        "",
    )
    assert competition.phases.get().submission_kind == "predictions"


def test_it_reports_every_bad_setting_at_once(tmp_path):
    document = settings_yaml(max_team_size=0, tie_break_metric="f1")  # not computed
    document["task"].update(
        queue="no spaces",
        limits={"memory_gb": 1},
        inference_limits={"cpus": -1},
        scorer_image="evil:latest",
        scorer_program="missing.py",
        activate="yes",
    )
    document["phases"][1]["kind"] = "notebook"
    with pytest.raises(BundleInvalid) as excinfo:
        bundle_import(source=write_bundle(tmp_path / "b", document), organizer=None)

    keys = {p.split(":")[0] for p in excinfo.value.problems}
    assert keys == {
        "max_team_size",
        "tie_break_metric",
        "task.queue",
        "task.limits",
        "task.inference_limits",
        "task.scorer_image",
        "task.scorer_program",
        "task.activate",
        "phases[1].kind",
    }
    assert not Competition.objects.exists()


def test_a_zip_program_without_score_py_is_refused(tmp_path):
    root = write_bundle(tmp_path / "b", settings_yaml())
    document = settings_yaml()
    document["task"]["scorer_program"] = "program.zip"
    (root / "competition.yaml").write_text(yaml.safe_dump(document))
    with zipfile.ZipFile(root / "program.zip", "w") as zf:
        zf.writestr("other.py", "print(1)\n")

    with pytest.raises(BundleInvalid) as excinfo:
        bundle_import(source=root, organizer=None)

    assert excinfo.value.problems == [
        "task.scorer_program: cannot be used: the zip has no score.py at its root."
    ]


def test_an_archive_from_a_site_with_another_scorer_image_imports_with_its_program(
    tmp_path, settings
):
    settings.HELDOUT_SCORER_IMAGES = [*settings.HELDOUT_SCORER_IMAGES, "theirs/scorer:1"]
    document = settings_yaml()
    document["task"]["scorer_image"] = "theirs/scorer:1"
    source = write_bundle(tmp_path / "b", document, files={"score.py": PROGRAM})
    archive = competition_archive_export(
        competition=bundle_import(source=source, organizer=None), dest=tmp_path / "a.zip"
    )
    settings.HELDOUT_SCORER_IMAGES = settings.HELDOUT_SCORER_IMAGES[:-1]
    private = Path(storages["private"].path(""))
    before = set(private.rglob("score*.py"))

    copy = competition_archive_import(source=archive, slug="copy", organizer=None)

    assert copy.task.scorer_image == "theirs/scorer:1"  # restored as it was, as before
    assert copy.task.scorer_program.open("rb").read().decode() == PROGRAM
    assert len(set(private.rglob("score*.py")) - before) == 1  # stored once, not twice


def test_applying_a_competitions_own_export_changes_nothing(tmp_path, organizer):
    source = write_bundle(tmp_path / "b", settings_yaml(), files={"score.py": PROGRAM})
    bundle_apply(source=source, organizer=organizer, dry_run=False)
    exported = bundle_export(competition=Competition.objects.get(), dest=tmp_path / "e.zip")

    diff = bundle_apply(source=exported, organizer=organizer, dry_run=True)

    assert diff.changes == []
    assert diff.files == []
    assert diff.notes == []
