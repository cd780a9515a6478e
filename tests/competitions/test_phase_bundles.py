"""Bundles with phases of their own (docs/bundle.md, "Phases"): a file's `released_with`
and a phase's `board_metrics` are read, checked with every other problem at once, imported,
applied and exported back byte for byte."""

from __future__ import annotations

import zipfile

import pytest
import yaml

from competitions.bundles import BundleInvalid
from competitions.models import Competition, TaskFile
from competitions.services.bundle_apply import bundle_apply
from competitions.services.bundles import bundle_export, bundle_import
from tests.competitions.test_bundles import bundle_yaml, write_bundle

pytestmark = pytest.mark.django_db

FINAL_TEST = "id,x\nf1,1\n"


def two_phases(**overrides) -> dict:
    """A development phase, and a final one whose test inputs it releases."""
    document = bundle_yaml(**overrides)
    document["task"]["files"].append(
        {"path": "final_test.csv", "kind": "test", "released_with": "Final"}
    )
    document["phases"] = [
        {
            "name": "Development",
            "start": "2026-01-01T00:00:00Z",
            "end": "2026-02-01T00:00:00Z",
            "board_metrics": ["log_loss"],
        },
        {
            "name": "Final",
            "start": "2026-02-01T00:00:00Z",
            "end": "2026-03-01T00:00:00Z",
            "board_metrics": ["roc_auc", "accuracy", "log_loss"],
        },
    ]
    return document


def _write(tmp_path, document):
    return write_bundle(tmp_path / "b", document, files={"final_test.csv": FINAL_TEST})


def test_a_file_released_with_a_phase_and_the_phases_columns_are_imported(tmp_path):
    competition = bundle_import(source=_write(tmp_path, two_phases()), organizer=None)

    final_test = TaskFile.objects.get(task=competition.task, name="final_test.csv")
    assert final_test.released_with == competition.phases.get(name="Final")
    assert TaskFile.objects.filter(task=competition.task, released_with=None).count() == 3
    phases = {p.name: p.board_metrics for p in competition.phases.all()}
    assert phases == {
        "Development": ["log_loss"],
        "Final": ["roc_auc", "accuracy", "log_loss"],
    }


def test_the_round_trip_keeps_released_with_and_board_metrics_byte_for_byte(tmp_path):
    first = bundle_export(
        competition=bundle_import(source=_write(tmp_path, two_phases()), organizer=None),
        dest=tmp_path / "1.zip",
    )
    document = yaml.safe_load(zipfile.ZipFile(first).read("competition.yaml"))
    Competition.objects.all().delete()  # a fresh database; the phase does not protect it

    second = bundle_export(
        competition=bundle_import(source=first, organizer=None), dest=tmp_path / "2.zip"
    )

    assert first.read_bytes() == second.read_bytes()
    released = {f["path"]: f.get("released_with") for f in document["task"]["files"]}
    assert released["data/final_test.csv"] == "Final"
    assert released["data/train.csv"] is None
    assert "released_with" not in document["task"]["files"][0]  # written only when set
    assert document["phases"][0]["board_metrics"] == ["log_loss"]


def test_a_bundle_without_them_exports_no_such_keys(tmp_path):
    exported = bundle_export(
        competition=bundle_import(source=write_bundle(tmp_path / "b"), organizer=None),
        dest=tmp_path / "e.zip",
    )
    text = zipfile.ZipFile(exported).read("competition.yaml").decode()
    assert "released_with" not in text
    assert "board_metrics" not in text


def test_an_unknown_phase_name_is_reported_with_every_other_problem(tmp_path):
    document = two_phases(selection_limit=0)
    document["task"]["files"][-1]["released_with"] = "Finale"
    document["task"]["files"][0]["released_with"] = 3
    document["phases"][0]["board_metrics"] = ["log_loss", "f1", "rmse"]
    document["phases"][1]["daily_limit"] = 0

    with pytest.raises(BundleInvalid) as excinfo:
        bundle_import(source=_write(tmp_path, document), organizer=None)

    problems = excinfo.value.problems
    assert {p.split(":")[0] for p in problems} == {
        "selection_limit",
        "task.files[0].released_with",
        "task.files[3].released_with",
        "phases[0].board_metrics",
        "phases[1].daily_limit",
    }
    unknown = next(p for p in problems if p.startswith("task.files[3]"))
    assert "'Finale' is not a phase of this bundle (phases: Development, Final)" in unknown
    columns = next(p for p in problems if p.startswith("phases[0].board_metrics"))
    assert "'f1', 'rmse'" in columns
    assert "roc_auc, accuracy, log_loss" in columns  # what it may name instead
    assert not Competition.objects.exists()


def test_applying_moves_a_file_to_another_phase_and_its_own_export_changes_nothing(
    tmp_path, organizer
):
    bundle_apply(source=_write(tmp_path, two_phases()), organizer=organizer, dry_run=False)
    document = two_phases()
    document["task"]["files"][-1]["released_with"] = "Development"
    document["phases"][1]["board_metrics"] = []
    source = write_bundle(tmp_path / "c", document, files={"final_test.csv": FINAL_TEST})

    diff = bundle_apply(source=source, organizer=organizer, dry_run=False)

    changed = {c.field: (c.old, c.new) for c in diff.changes}
    assert changed == {
        "task.files[final_test.csv].released_with": ("Final", "Development"),
        "phases[Final].board_metrics": (["roc_auc", "accuracy", "log_loss"], []),
    }
    competition = Competition.objects.get()
    moved = TaskFile.objects.get(name="final_test.csv").released_with
    assert moved is not None
    assert moved.name == "Development"
    exported = bundle_export(competition=competition, dest=tmp_path / "e.zip")
    again = bundle_apply(source=exported, organizer=organizer, dry_run=True)
    assert (again.changes, again.files) == ([], [])


def test_applying_a_bundle_that_drops_the_releasing_phase_releases_the_file_as_it_says(
    tmp_path, organizer
):
    bundle_apply(source=_write(tmp_path, two_phases()), organizer=organizer, dry_run=False)
    document = two_phases()
    del document["task"]["files"][-1]["released_with"]
    document["phases"] = document["phases"][:1]
    source = write_bundle(tmp_path / "c", document, files={"final_test.csv": FINAL_TEST})

    bundle_apply(source=source, organizer=organizer, dry_run=False)

    assert [p.name for p in Competition.objects.get().phases.all()] == ["Development"]
    assert TaskFile.objects.get(name="final_test.csv").released_with is None
