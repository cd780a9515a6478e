"""Applying a bundle to an existing competition pins its phases as importing the bundle
would (services/bundle_apply.py, bundle_diff.phase_truths_planned): a phase's own
`ground_truth` pins a version holding it, the other phases the task's; an open phase whose
pin changed has the board rank it at once; applying the competition's own export changes
nothing, however its pins were set."""

from __future__ import annotations

import zipfile

import pytest
import yaml
from django.core.files.base import ContentFile

from competitions.models import Competition, OrganizerAction
from competitions.services.bundle_apply import bundle_apply
from competitions.services.bundles import bundle_export, bundle_import
from competitions.services.phase_versions import (
    PhasePinsVersion,
    phase_version_set,
)
from competitions.services.teams import competition_join
from competitions.services.versions import task_version_create
from tests import factories
from tests.competitions.pinned import (
    OTHER_FINAL_TRUTH,
    OTHER_TRUTH,
    phase_of,
    pins,
    ranked,
    two_phase_competition,
)
from tests.competitions.test_phase_versions import (
    FINAL_TRUTH,
    _submit,
    two_phase_bundle,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def competition(tmp_path, organizer) -> Competition:
    return two_phase_competition(tmp_path, organizer)


def _edited(tmp_path, name: str, **kwargs):
    return two_phase_bundle(tmp_path / name, **kwargs)


def test_a_bundle_with_another_final_ground_truth_repins_the_final_phase_to_a_new_version(
    competition, organizer, tmp_path
):
    source = _edited(tmp_path, "new", final_truth=OTHER_FINAL_TRUTH)

    diff = bundle_apply(source=source, organizer=organizer, dry_run=False)

    assert diff.refusals == []
    [change] = [f for f in diff.files if f.path.startswith("phases[")]
    assert (change.path, change.change) == ("phases[Final].ground_truth", "changed")
    assert pins(competition) == {"Development": 1, "Final": 3}
    final = competition.task.versions.get(number=3)
    assert final.ground_truth.read().decode() == OTHER_FINAL_TRUTH
    assert ranked(competition) == 1  # Final is not open: nothing switches


def test_the_dry_run_lists_the_repinned_phase_and_changes_nothing(competition, organizer, tmp_path):
    source = _edited(tmp_path, "new", final_truth=OTHER_FINAL_TRUTH)

    diff = bundle_apply(source=source, organizer=organizer, dry_run=True)

    assert [f.path for f in diff.files] == ["phases[Final].ground_truth"]
    assert diff.refusals == []
    assert pins(competition) == {"Development": 1, "Final": 2}
    assert competition.task.versions.count() == 2


def test_a_bundle_that_repins_the_open_phase_has_the_board_rank_its_new_version(
    competition, organizer, tmp_path
):
    source = _edited(tmp_path, "new")
    (source / "solution.csv").write_text(OTHER_TRUTH)  # Development's data changed

    diff = bundle_apply(source=source, organizer=organizer, dry_run=False)

    assert diff.version == 3
    assert pins(competition) == {"Development": 3, "Final": 2}
    assert ranked(competition) == 3
    switch = OrganizerAction.objects.get(kind="version_switch_started")
    assert "Development" in switch.reason


def test_a_bundle_that_activates_a_version_the_open_phase_does_not_pin_is_refused(
    competition, organizer, tmp_path
):
    source = _edited(tmp_path, "new")
    document = yaml.safe_load((source / "competition.yaml").read_text())
    document["task"]["ground_truth"] = "other_solution.csv"
    document["task"]["activate"] = True
    document["phases"][0]["ground_truth"] = "solution.csv"  # Development keeps its data
    (source / "competition.yaml").write_text(yaml.safe_dump(document))
    (source / "other_solution.csv").write_text(OTHER_TRUTH)

    with pytest.raises(PhasePinsVersion, match="“Development” is open and pins version 1"):
        bundle_apply(source=source, organizer=organizer, dry_run=False)

    assert competition.task.versions.count() == 2
    assert ranked(competition) == 1


def test_a_bundle_without_phase_ground_truths_unpins_every_phase_as_an_import_would(
    competition, organizer, tmp_path
):
    source = _edited(tmp_path, "new")
    document = yaml.safe_load((source / "competition.yaml").read_text())
    del document["phases"][1]["ground_truth"]
    (source / "competition.yaml").write_text(yaml.safe_dump(document))

    diff = bundle_apply(source=source, organizer=organizer, dry_run=False)

    assert sorted(f.path for f in diff.files) == [
        "phases[Development].ground_truth",
        "phases[Final].ground_truth",
    ]
    assert {f.change for f in diff.files} == {"removed"}
    assert pins(competition) == {"Development": None, "Final": None}


def test_a_bundle_giving_a_phase_its_own_ground_truth_pins_every_phase_as_an_import_would(
    organizer, tmp_path
):
    plain = _edited(tmp_path, "plain")
    document = yaml.safe_load((plain / "competition.yaml").read_text())
    del document["phases"][1]["ground_truth"]
    (plain / "competition.yaml").write_text(yaml.safe_dump(document))
    competition = bundle_import(source=plain, organizer=organizer)
    assert pins(competition) == {"Development": None, "Final": None}

    bundle_apply(source=_edited(tmp_path, "pinned"), organizer=organizer, dry_run=False)

    assert pins(competition) == {"Development": 1, "Final": 2}
    assert competition.task.versions.get(number=2).ground_truth.read().decode() == FINAL_TRUTH
    assert ranked(competition) == 1


def test_a_phase_with_submissions_keeps_them_and_the_diff_says_so(competition, organizer, tmp_path):
    user = factories.make_user("participant")
    competition_join(competition=competition, user=user, accept_rules=True)
    _submit(competition, user, final=False)
    source = _edited(tmp_path, "new")
    (source / "solution.csv").write_text(OTHER_TRUTH)

    diff = bundle_apply(source=source, organizer=organizer, dry_run=True)

    assert any(
        n.startswith("phases[Development].ground_truth:") and "1 submission(s)" in n
        for n in diff.notes
    )


def test_applying_its_own_export_after_an_organizer_pinned_every_phase_changes_nothing(
    competition, organizer, tmp_path
):
    phase_version_set(phase=phase_of(competition, "Final"), task_version=1, by=organizer)
    exported = bundle_export(competition=competition, dest=tmp_path / "own.zip")
    assert "ground_truth" not in str(
        yaml.safe_load(zipfile.ZipFile(exported).read("competition.yaml"))["phases"]
    )

    diff = bundle_apply(source=exported, organizer=organizer, dry_run=False)

    assert (diff.changes, diff.files, diff.refusals) == ([], [], [])
    assert pins(competition) == {"Development": 1, "Final": 1}


def test_a_version_already_holding_the_phase_data_is_pinned_rather_than_a_new_one(
    competition, organizer, tmp_path
):
    held = task_version_create(
        task=competition.task, ground_truth=ContentFile(OTHER_FINAL_TRUTH.encode(), "f.csv")
    )
    source = _edited(tmp_path, "new", final_truth=OTHER_FINAL_TRUTH)

    bundle_apply(source=source, organizer=organizer, dry_run=False)

    assert pins(competition) == {"Development": 1, "Final": held.number}
    assert competition.task.versions.count() == 3
