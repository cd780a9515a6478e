"""`bundle apply`: create or update a competition from its bundle, diff first (docs/bundle.md)."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
import yaml
from django.core.exceptions import ValidationError
from django.core.files.storage import storages

from competitions.models import Competition, Phase, Submission, TaskVersion
from competitions.permissions import Forbidden, NotFound
from competitions.services.bundle_apply import BundleRefused, bundle_apply
from competitions.services.bundle_diff import FieldChange
from competitions.services.bundles import bundle_export, file_sha256
from competitions.services.lifecycle import competition_finalize
from competitions.services.teams import competition_join
from tests import factories
from tests.competitions.test_bundle_roundtrip import PROGRAM
from tests.competitions.test_bundles import TRUTH, write_bundle
from tests.jobs import run_queued_jobs

pytestmark = pytest.mark.django_db

FLIPPED = TRUTH.replace(",yes,", ",maybe,").replace(",no,", ",yes,").replace(",maybe,", ",no,")


def rewrite(root: Path, change) -> Path:
    """Edit the bundle's competition.yaml in place with `change(document)`."""
    document = yaml.safe_load((root / "competition.yaml").read_text())
    change(document)
    (root / "competition.yaml").write_text(yaml.safe_dump(document))
    return root


@pytest.fixture
def bundle(tmp_path) -> Path:
    return write_bundle(tmp_path / "repo")


@pytest.fixture
def applied(bundle, organizer) -> Competition:
    diff = bundle_apply(source=bundle, organizer=organizer, dry_run=False)
    assert diff.created
    assert diff.applied
    return Competition.objects.get(slug="tiny-bundle")


def submit(competition: Competition, user) -> Submission:
    team = competition_join(competition=competition, user=user, accept_rules=True).team
    submission = factories.submission_row(team)
    submission.save()
    return submission


def test_applying_a_new_slug_creates_the_competition_which_the_user_organizes(bundle, organizer):
    dry = bundle_apply(source=bundle, organizer=organizer, dry_run=True)
    assert dry.created
    assert not dry.applied
    assert FieldChange("title", None, "A tiny bundle") in dry.changes
    assert FieldChange("phases[Main].daily_limit", None, 5) in dry.changes
    assert {f.path for f in dry.files} == {
        "task.ground_truth",
        "task.files[train.csv]",
        "task.files[test.csv]",
        "task.files[sample_submission.csv]",
    }
    assert not Competition.objects.exists()

    bundle_apply(source=bundle, organizer=organizer, dry_run=False)

    assert list(Competition.objects.get(slug="tiny-bundle").organizers.all()) == [organizer]


def test_applying_the_same_bundle_again_changes_nothing(bundle, organizer, applied):
    diff = bundle_apply(source=bundle, organizer=organizer, dry_run=False)

    assert diff.empty
    assert diff.applied
    assert not diff.created
    assert (diff.refusals, diff.version) == ([], None)
    assert applied.task.versions.count() == 1


def test_a_dry_run_lists_each_change_and_writes_nothing(bundle, organizer, applied):
    def change(doc):
        doc["title"] = "Renamed"
        doc["max_team_size"] = 2
        doc["task"]["queue"] = "gpu"
        doc["task"]["files"] = [f for f in doc["task"]["files"] if f["path"] != "test.csv"]
        doc["phases"][0]["daily_limit"] = 9
        doc["phases"].append({"name": "Late", "start": "2027-01-01T00:00:00Z", "kind": "container"})
        doc["phases"][0]["end"] = "2027-01-01T00:00:00Z"

    rewrite(bundle, change)
    (bundle / "train.csv").write_text("id,x,label\nt0,1,yes\n")
    old_train = applied.task.files.get(name="train.csv").sha256

    diff = bundle_apply(source=bundle, organizer=organizer, dry_run=True)

    changes = {c.field: (c.old, c.new) for c in diff.changes}
    assert changes["title"] == ("A tiny bundle", "Renamed")
    assert changes["max_team_size"] == (5, 2)
    assert changes["task.queue"] == ("cpu", "gpu")
    assert changes["phases[Main].daily_limit"] == (5, 9)
    assert changes["phases[Main].end"] == (None, "2027-01-01T00:00:00Z")
    assert changes["phases[Late].kind"] == (None, "container")
    assert changes["task.files[test.csv].kind"] == ("test", None)
    files = {f.path: (f.change, f.old_sha256, f.new_sha256) for f in diff.files}
    assert files == {
        "task.files[train.csv]": ("changed", old_train, file_sha256(bundle / "train.csv")),
        "task.files[test.csv]": ("removed", applied.task.files.get(name="test.csv").sha256, ""),
    }
    assert not diff.applied
    assert diff.refusals == []
    applied.refresh_from_db()
    assert (applied.title, applied.phases.count(), applied.task.files.count()) == (
        "A tiny bundle",
        1,
        3,
    )


def test_apply_updates_settings_phases_and_files(bundle, organizer, applied):
    def change(doc):
        doc["title"] = "Renamed"
        doc["labels_published"] = True
        doc["task"].update(queue="gpu", limits={"timeout_s": 30}, scorer_logs_visible=True)
        doc["task"]["files"] = [f for f in doc["task"]["files"] if f["path"] != "test.csv"]
        doc["phases"][0].update(end="2027-01-01T00:00:00Z", daily_limit=9)
        doc["phases"].append({"name": "Late", "start": "2027-01-01T00:00:00Z", "kind": "container"})

    rewrite(bundle, change)
    (bundle / "train.csv").write_text("id,x,label\nt0,1,yes\n")

    diff = bundle_apply(source=bundle, organizer=organizer, dry_run=False)

    assert diff.applied
    assert not diff.empty
    applied.refresh_from_db()
    assert (applied.title, applied.labels_published) == ("Renamed", True)
    task = applied.task
    assert (task.queue, task.limits, task.scorer_logs_visible) == ("gpu", {"timeout_s": 30}, True)
    assert sorted(task.files.values_list("name", flat=True)) == [
        "sample_submission.csv",
        "train.csv",
    ]
    train = task.files.get(name="train.csv")
    assert train.file.open("rb").read() == b"id,x,label\nt0,1,yes\n"
    assert train.sha256 == file_sha256(bundle / "train.csv")
    main, late = applied.phases.order_by("start_at")
    assert (main.daily_limit, main.end_at.year) == (9, 2027)
    assert (late.name, late.submission_kind) == ("Late", "container")
    assert task.versions.count() == 1  # no ground truth changed


def test_a_new_ground_truth_makes_a_version_that_is_not_ranked(bundle, organizer, applied):
    (bundle / "solution.csv").write_text(FLIPPED)

    diff = bundle_apply(source=bundle, organizer=organizer, dry_run=False)

    task = applied.task
    task.refresh_from_db()
    assert diff.version == 2
    assert task.version == 1
    assert task.ground_truth.open("rb").read().decode() == TRUTH  # version 1 is untouched
    new = TaskVersion.objects.get(task=task, number=2)
    assert new.ground_truth_sha256 == file_sha256(bundle / "solution.csv")
    assert new.ground_truth.open("rb").read().decode() == FLIPPED
    assert "not ranked" in diff.notes[0]

    again = bundle_apply(source=bundle, organizer=organizer, dry_run=False)

    assert again.empty
    assert again.version is None
    assert "version 2 holds this ground truth" in again.notes[0]
    assert task.versions.count() == 2


def test_activate_ranks_the_new_ground_truth(bundle, organizer, applied):
    (bundle / "solution.csv").write_text(FLIPPED)
    rewrite(bundle, lambda doc: doc["task"].update(activate=True))

    diff = bundle_apply(source=bundle, organizer=organizer, dry_run=False)
    applied.task.refresh_from_db()
    assert applied.task.version == 1  # ranking is the version switch's background job
    (job,) = run_queued_jobs()

    assert (job.pk, job.kind, job.status) == (diff.job, "version_switch", "done")
    applied.task.refresh_from_db()
    assert diff.version == applied.task.version == 2
    assert applied.task.ground_truth_sha256 == file_sha256(bundle / "solution.csv")


def test_activate_ranks_a_version_that_already_holds_the_ground_truth(bundle, organizer, applied):
    (bundle / "solution.csv").write_text(FLIPPED)
    bundle_apply(source=bundle, organizer=organizer, dry_run=False)
    rewrite(bundle, lambda doc: doc["task"].update(activate=True))

    diff = bundle_apply(source=bundle, organizer=organizer, dry_run=True)
    assert diff.changes == [FieldChange("task.version", 1, 2)]
    assert diff.files == []
    bundle_apply(source=bundle, organizer=organizer, dry_run=False)
    run_queued_jobs()

    applied.task.refresh_from_db()
    assert applied.task.version == 2
    assert applied.task.versions.count() == 2


def _joined_with_a_scored_submission(competition: Competition, user) -> None:
    """The user joins and has one submission scored (under the current version)."""
    team = competition_join(competition=competition, user=user, accept_rules=True).team
    factories.scored_submission(
        team,
        {"public": {"roc_auc": 0.5}, "private": {"roc_auc": 0.5}},
        created_at=competition.created_at,
    )


def test_a_new_scoring_program_with_scored_submissions_goes_through_a_new_ranked_version(
    bundle, organizer, participant, applied
):
    _joined_with_a_scored_submission(applied, participant)
    (bundle / "score.py").write_text(PROGRAM)
    rewrite(bundle, lambda doc: doc["task"].update(scorer_program="score.py"))

    diff = bundle_apply(source=bundle, organizer=organizer, dry_run=False)
    run_queued_jobs()

    task = applied.task
    task.refresh_from_db()
    assert [f.path for f in diff.files] == ["task.scorer_program"]
    assert task.version == 2
    assert task.scorer_program_sha256 == file_sha256(bundle / "score.py")
    assert task.versions.get(number=2).scorer_program_sha256 == task.scorer_program_sha256
    assert task.versions.get(number=1).scorer_program_sha256 == ""


def test_it_refuses_any_change_after_finalize(bundle, organizer, applied):
    competition_finalize(competition=applied, by=organizer)
    rewrite(bundle, lambda doc: doc.update(title="Too late"))

    dry = bundle_apply(source=bundle, organizer=organizer, dry_run=True)
    assert dry.refusals[0].startswith("The competition is finalized")
    with pytest.raises(BundleRefused) as excinfo:
        bundle_apply(source=bundle, organizer=organizer, dry_run=False)

    assert excinfo.value.status == 409
    assert excinfo.value.extra["problems"] == dry.refusals
    applied.refresh_from_db()
    assert applied.title == "A tiny bundle"


def test_its_own_export_still_applies_after_finalize(organizer, applied, tmp_path):
    # Finalize ended the open phase, so the exported bundle is what is unchanged now.
    competition_finalize(competition=applied, by=organizer)
    exported = bundle_export(competition=applied, dest=tmp_path / "final.zip")

    diff = bundle_apply(source=exported, organizer=organizer, dry_run=False)

    assert diff.empty
    assert diff.applied
    assert diff.refusals == []


def test_it_refuses_removing_or_renaming_a_phase_with_submissions(
    bundle, organizer, participant, applied
):
    submit(applied, participant)
    rewrite(bundle, lambda doc: doc["phases"][0].update(name="Renamed"))
    (bundle / "solution.csv").write_text(FLIPPED)
    private = Path(storages["private"].path(""))
    before = set(private.rglob("*"))

    with pytest.raises(BundleRefused) as excinfo:
        bundle_apply(source=bundle, organizer=organizer, dry_run=False)

    assert excinfo.value.extra["problems"] == [
        'phases: "Main" has 1 submission(s); a phase with submissions can\'t be removed or renamed.'
    ]
    assert list(applied.phases.values_list("name", flat=True)) == ["Main"]
    assert applied.task.versions.count() == 1
    assert set(private.rglob("*")) == before


def test_it_renames_a_phase_without_submissions(bundle, organizer, applied):
    rewrite(bundle, lambda doc: doc["phases"][0].update(name="Renamed"))

    bundle_apply(source=bundle, organizer=organizer, dry_run=False)

    assert list(applied.phases.values_list("name", flat=True)) == ["Renamed"]


def test_it_refuses_a_phase_kind_change_once_the_phase_has_submissions(
    bundle, organizer, participant, applied
):
    submit(applied, participant)
    rewrite(bundle, lambda doc: doc["phases"][0].update(kind="container"))

    with pytest.raises(BundleRefused) as excinfo:
        bundle_apply(source=bundle, organizer=organizer, dry_run=False)

    assert excinfo.value.extra["problems"][0].startswith("phases[Main].kind:")
    assert applied.phases.get().submission_kind == "predictions"


def test_it_refuses_changing_how_the_task_is_scored_once_there_are_submissions(
    bundle, organizer, participant, applied
):
    submit(applied, participant)
    rewrite(bundle, lambda doc: doc["task"].update(primary_metric="average_precision"))

    with pytest.raises(BundleRefused) as excinfo:
        bundle_apply(source=bundle, organizer=organizer, dry_run=False)

    assert excinfo.value.extra["problems"][0].startswith("task.primary_metric: how the task")
    applied.task.refresh_from_db()
    assert applied.task.primary_metric == "roc_auc"


def test_phases_it_writes_are_checked_by_the_model(bundle, organizer, applied, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(Phase, "full_clean", lambda self, *a, **k: calls.append(self.name))
    rewrite(bundle, lambda doc: doc["phases"][0].update(daily_limit=7))

    bundle_apply(source=bundle, organizer=organizer, dry_run=False)

    assert calls == ["Main"]


@pytest.mark.parametrize("persona", ["outsider", "participant", "other_organizer"])
def test_only_the_competitions_organizers_apply_to_its_slug(
    bundle, applied, competition, other_competition, persona, request
):
    user = request.getfixturevalue(persona)
    rewrite(bundle, lambda doc: doc.update(title="Hijacked"))

    for dry_run in (True, False):
        with pytest.raises((Forbidden, NotFound)):
            bundle_apply(source=bundle, organizer=user, dry_run=dry_run)

    applied.refresh_from_db()
    assert applied.title == "A tiny bundle"


def test_a_participant_cannot_create_a_competition_by_applying(bundle, participant):
    with pytest.raises(Forbidden):
        bundle_apply(source=bundle, organizer=participant, dry_run=False)

    assert not Competition.objects.filter(slug="tiny-bundle").exists()


def _no_overlap_with_saved_phases(phase, *args, **kwargs):
    """Stands for a rule checking one phase against the others as saved."""
    others = Phase.objects.filter(competition_id=phase.competition_id).exclude(pk=phase.pk)
    for other in others:
        if (other.end_at is None or phase.start_at < other.end_at) and (
            phase.end_at is None or other.start_at < phase.end_at
        ):
            raise ValidationError(f"{phase.name} overlaps {other.name}")


def test_shifting_consecutive_phases_never_overlaps_on_the_way(
    bundle, organizer, applied, monkeypatch
):
    def two(doc, month: int):
        a, b, c = (f"2026-{m:02d}-01T00:00:00Z" for m in (month, month + 4, month + 8))
        doc["phases"] = [{"name": "A", "start": a, "end": b}, {"name": "B", "start": b, "end": c}]

    rewrite(bundle, lambda doc: two(doc, 1))
    bundle_apply(source=bundle, organizer=organizer, dry_run=False)
    monkeypatch.setattr(Phase, "full_clean", _no_overlap_with_saved_phases)

    rewrite(bundle, lambda doc: two(doc, 3))  # both two months later: A's new end overlaps B
    bundle_apply(source=bundle, organizer=organizer, dry_run=False)
    rewrite(bundle, lambda doc: two(doc, 1))  # and back: B's new start overlaps A
    bundle_apply(source=bundle, organizer=organizer, dry_run=False)

    starts = dict(applied.phases.values_list("name", "start_at__month"))
    assert starts == {"A": 1, "B": 5}


def test_a_failing_apply_changes_nothing_and_leaves_no_file(
    bundle, organizer, applied, monkeypatch
):
    def change(doc):
        doc["title"] = "Renamed"
        doc["task"]["files"].append({"path": "extra.csv", "kind": "other"})
        doc["phases"][0]["daily_limit"] = 9
        doc["task"]["activate"] = True

    (bundle / "extra.csv").write_text("a,b\n1,2\n")
    (bundle / "solution.csv").write_text(FLIPPED)
    rewrite(bundle, change)
    storage_roots = [Path(storages[name].path("")) for name in ("default", "private")]
    before = {p for root in storage_roots for p in root.rglob("*")}
    # The last step fails: the new version's ground truth and the new file are stored by then.
    boom = mock.Mock(side_effect=RuntimeError("boom"))
    monkeypatch.setattr("competitions.services.jobs.version_switch_start", boom)

    with pytest.raises(RuntimeError):
        bundle_apply(source=bundle, organizer=organizer, dry_run=False)

    applied.refresh_from_db()
    assert applied.title == "A tiny bundle"
    assert not applied.task.files.filter(name="extra.csv").exists()
    assert boom.called
    assert applied.task.versions.count() == 1
    assert applied.phases.get().daily_limit == 5
    assert {p for root in storage_roots for p in root.rglob("*") if p.is_file()} - before == set()


def test_a_new_program_and_ground_truth_together_rank_one_new_version(
    bundle, organizer, participant, applied
):
    _joined_with_a_scored_submission(applied, participant)
    (bundle / "score.py").write_text(PROGRAM)
    (bundle / "solution.csv").write_text(FLIPPED)
    rewrite(bundle, lambda doc: doc["task"].update(scorer_program="score.py"))

    diff = bundle_apply(source=bundle, organizer=organizer, dry_run=False)
    run_queued_jobs()

    task = applied.task
    task.refresh_from_db()
    assert diff.version == 2
    assert task.version == 2  # the program in place scores the ranked version
    assert list(task.versions.values_list("number", flat=True)) == [1, 2]
    ranked = task.versions.get(number=2)
    assert ranked.ground_truth_sha256 == file_sha256(bundle / "solution.csv")
    assert ranked.scorer_program_sha256 == file_sha256(bundle / "score.py")


def test_a_bundle_without_a_program_removes_the_tasks_program(bundle, organizer, applied):
    (bundle / "score.py").write_text(PROGRAM)
    rewrite(bundle, lambda doc: doc["task"].update(scorer_program="score.py"))
    bundle_apply(source=bundle, organizer=organizer, dry_run=False)
    rewrite(bundle, lambda doc: doc["task"].update(scorer_program=None))

    diff = bundle_apply(source=bundle, organizer=organizer, dry_run=False)

    assert [(f.path, f.change) for f in diff.files] == [("task.scorer_program", "removed")]
    applied.task.refresh_from_db()
    assert not applied.task.scorer_program
    assert applied.task.scorer_program_sha256 == ""


def test_naming_the_default_scorer_image_changes_no_scorer(
    bundle, organizer, participant, applied, settings
):
    _joined_with_a_scored_submission(applied, participant)
    default = settings.HELDOUT_SCORER_IMAGE
    rewrite(bundle, lambda doc: doc["task"].update(scorer_image=default))

    diff = bundle_apply(source=bundle, organizer=organizer, dry_run=False)

    assert diff.changes == [FieldChange("task.scorer_image", "", default)]
    applied.task.refresh_from_db()
    assert applied.task.version == 1
    assert applied.task.versions.count() == 1


def test_apply_may_name_a_tie_break_metric_the_same_bundle_adds_to_the_task(
    bundle, organizer, applied
):
    def change(doc):
        doc["task"]["secondary_metrics"] = ["accuracy", "log_loss", "f1"]
        doc |= {"tie_rule": "metric", "tie_break_metric": "f1"}

    diff = bundle_apply(source=rewrite(bundle, change), organizer=organizer, dry_run=False)

    assert diff.applied
    applied.refresh_from_db()
    assert (applied.tie_rule, applied.tie_break_metric) == ("metric", "f1")
    assert "f1" in applied.task.secondary_metrics
