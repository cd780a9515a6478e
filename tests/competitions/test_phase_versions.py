"""Phases that score their own data (docs/bundle.md, "A phase's own ground truth"): a
development phase on one ground truth, a final phase on another whose test inputs it
releases; each phase's submissions are scored under its own task version, and the board
ranks the final version once the final phase opens."""

from __future__ import annotations

import zipfile
from datetime import timedelta

import pytest
import yaml
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.utils import timezone

from competitions.bundles import BundleInvalid
from competitions.models import (
    Competition,
    LeaderboardEntry,
    OrganizerAction,
    Phase,
    ReferenceResult,
    Score,
    Submission,
)
from competitions.services.bundle_apply import bundle_apply
from competitions.services.bundles import bundle_export, bundle_import
from competitions.services.phase_versions import phase_versions_rank
from competitions.services.references import REFERENCES_TASK
from competitions.services.scorer_identity import IN_PROCESS
from competitions.services.submissions import submission_create
from competitions.services.teams import competition_join
from competitions.tasks import phase_versions_task
from judging.references import references_compute
from judging.services import submission_score
from scoring.scorers import InProcessScorer
from tests import factories
from tests.competitions.test_bundles import IDS, TRUTH, bundle_yaml, write_bundle
from tests.jobs import OutboxWatch

pytestmark = pytest.mark.django_db

FINAL_IDS = [f"f{i}" for i in range(8)]
FINAL_TRUTH = "id,label,Usage\n" + "".join(
    f"{rid},{'yes' if i % 2 else 'no'},{'Public' if i < 4 else 'Private'}\n"
    for i, rid in enumerate(FINAL_IDS)
)
FINAL_TEST = "id,x\n" + "".join(f"{rid},{i}\n" for i, rid in enumerate(FINAL_IDS))


def _iso(when) -> str:
    return when.isoformat().replace("+00:00", "Z")


def two_phase_bundle(tmp_path, *, final_truth: str = FINAL_TRUTH, **phase_extra):
    """Development (open now) on the task's ground truth; Final (in five days) on its own,
    with its test inputs released when it opens."""
    now = timezone.now().replace(microsecond=0)
    document = bundle_yaml(start=_iso(now - timedelta(days=10)))
    document["task"]["files"].append(
        {"path": "final_test.csv", "kind": "test", "released_with": "Final"}
    )
    document["phases"] = [
        {
            "name": "Development",
            "start": _iso(now - timedelta(days=10)),
            "end": _iso(now + timedelta(days=5)),
        },
        {
            "name": "Final",
            "start": _iso(now + timedelta(days=5)),
            "end": _iso(now + timedelta(days=30)),
            "ground_truth": "final_solution.csv",
            **phase_extra,
        },
    ]
    files = {"final_test.csv": FINAL_TEST, "final_solution.csv": final_truth}
    return write_bundle(tmp_path / "b", document, files=files)


def _perfect(ids: list[str], truth: str) -> SimpleUploadedFile:
    labels = dict(line.split(",")[:2] for line in truth.splitlines()[1:])
    rows = "".join(f"{rid},{1.0 if labels[rid] == 'yes' else 0.0}\n" for rid in ids)
    return SimpleUploadedFile("predictions.csv", ("id,label\n" + rows).encode())


def _submit(competition: Competition, user, final: bool) -> Submission:
    upload = _perfect(FINAL_IDS, FINAL_TRUTH) if final else _perfect(IDS, TRUTH)
    return submission_create(competition=competition, user=user, uploaded_file=upload)


def _score(submission: Submission) -> Submission:
    submission_score(submission_id=submission.pk, scorer=InProcessScorer())
    submission.refresh_from_db()
    return submission


def _open_final(competition: Competition) -> None:
    """Moves the phases so that Final opened an hour ago."""
    an_hour_ago = timezone.now() - timedelta(hours=1)
    competition.phases.filter(name="Development").update(end_at=an_hour_ago)
    competition.phases.filter(name="Final").update(start_at=an_hour_ago)


@pytest.fixture
def competition(tmp_path) -> Competition:
    return bundle_import(source=two_phase_bundle(tmp_path), organizer=None)


@pytest.fixture
def user(competition):
    user = factories.make_user("participant")
    competition_join(competition=competition, user=user, accept_rules=True)
    return user


def _versions(submission: Submission) -> set[int]:
    return set(Score.objects.filter(submission=submission).values_list("task_version", flat=True))


def test_the_final_phase_pins_a_version_made_from_its_ground_truth_and_development_the_tasks(
    competition,
):
    pins = dict(competition.phases.values_list("name", "task_version"))
    assert pins == {"Development": 1, "Final": 2}
    final = competition.task.versions.get(number=2)
    assert final.ground_truth.read().decode() == FINAL_TRUTH
    assert competition.task.version == 1  # the board ranks the development data until then


def test_a_development_submission_is_scored_against_the_development_labels(competition, user):
    submission = _score(_submit(competition, user, final=False))

    assert submission.status == Submission.Status.SCORED
    assert _versions(submission) == {1}
    assert Score.objects.get(submission=submission, split="public", metric="roc_auc").value == 1.0


def test_when_the_final_phase_opens_the_board_ranks_its_version_and_its_baselines_are_made(
    competition, user
):
    _score(_submit(competition, user, final=False))
    _open_final(competition)
    watch = OutboxWatch()

    assert phase_versions_rank() == 1
    assert phase_versions_rank() == 0  # idempotent

    competition.task.refresh_from_db()
    assert competition.task.version == 2
    assert competition.task.ground_truth.read().decode() == FINAL_TRUTH
    assert REFERENCES_TASK in watch.tasks()
    assert references_compute(competition_id=competition.pk, scorer=InProcessScorer()) > 0
    assert set(
        ReferenceResult.objects.filter(competition=competition).values_list(
            "task_version", flat=True
        )
    ) == {2}
    # The development row is not ranked under the final data.
    assert not LeaderboardEntry.objects.filter(competition=competition).exists()
    action = OrganizerAction.objects.get(competition=competition)
    assert (action.kind, action.target, action.by) == ("version_switch_started", "version 2", None)
    assert "Final" in action.reason


def test_a_final_submission_is_scored_against_the_final_labels_and_ranked(competition, user):
    _open_final(competition)
    # No periodic check has run yet: the submission itself ranks the final version first.
    submission = _score(_submit(competition, user, final=True))

    assert submission.status == Submission.Status.SCORED, submission.problems
    assert submission.task_version == 2
    assert _versions(submission) == {2}
    competition.task.refresh_from_db()
    assert competition.task.version == 2
    entry = LeaderboardEntry.objects.get(competition=competition, split="public")
    assert (entry.submission_id, entry.task_version, entry.score) == (submission.pk, 2, 1.0)
    assert OrganizerAction.objects.filter(competition=competition).count() == 1


def test_a_development_submission_queued_at_the_switch_is_scored_under_the_development_version(
    competition, user
):
    queued = _submit(competition, user, final=False)
    _open_final(competition)
    phase_versions_rank()

    submission = _score(queued)

    assert submission.status == Submission.Status.SCORED, submission.problems
    assert _versions(submission) == {1}
    assert not LeaderboardEntry.objects.filter(competition=competition).exists()


def test_a_finalized_competition_keeps_its_ranked_version(competition, user):
    _open_final(competition)
    Competition.objects.filter(pk=competition.pk).update(finalized_at=timezone.now())

    assert phase_versions_rank() == 0
    competition.task.refresh_from_db()
    assert competition.task.version == 1


def test_a_phase_without_a_pin_scores_under_the_ranked_version_as_before():
    competition = factories.make_competition()
    user = factories.make_user("participant")
    competition_join(competition=competition, user=user, accept_rules=True)

    submission = _score(factories.submitted(competition, user))

    assert competition.phases.get().task_version is None
    assert submission.status == Submission.Status.SCORED
    assert submission.task_version == 1
    assert _versions(submission) == {1}
    assert phase_versions_rank() == 0


def test_a_phase_cannot_pin_a_version_the_task_does_not_have(competition):
    phase = competition.phases.get(name="Final")
    phase.task_version = 7

    with pytest.raises(ValidationError) as caught:
        phase.full_clean()

    assert "task_version" in caught.value.message_dict
    assert Phase.objects.get(pk=phase.pk).task_version == 2


def test_the_round_trip_keeps_each_phases_ground_truth_byte_for_byte(competition, tmp_path):
    first = bundle_export(competition=competition, dest=tmp_path / "1.zip")
    archive = zipfile.ZipFile(first)
    document = yaml.safe_load(archive.read("competition.yaml"))
    Competition.objects.all().delete()

    again = bundle_import(source=first, organizer=None)
    second = bundle_export(competition=again, dest=tmp_path / "2.zip")

    assert first.read_bytes() == second.read_bytes()
    assert "ground_truth" not in document["phases"][0]
    assert document["phases"][1]["ground_truth"] == "private/phase-2-solution.csv"
    assert archive.read("private/phase-2-solution.csv").decode() == FINAL_TRUTH
    assert archive.read("private/solution.csv").decode() == TRUTH
    assert dict(again.phases.values_list("name", "task_version")) == {
        "Development": 1,
        "Final": 2,
    }


def test_the_export_after_the_switch_still_writes_the_development_truth_as_the_tasks(
    competition, tmp_path
):
    _open_final(competition)
    phase_versions_rank()

    exported = bundle_export(competition=competition, dest=tmp_path / "1.zip")

    archive = zipfile.ZipFile(exported)
    assert archive.read("private/solution.csv").decode() == TRUTH
    assert archive.read("private/phase-2-solution.csv").decode() == FINAL_TRUTH
    Competition.objects.all().delete()
    again = bundle_import(source=exported, organizer=None)
    assert dict(again.phases.values_list("name", "task_version")) == {
        "Development": 1,
        "Final": 2,
    }


def test_a_sample_released_with_the_final_phase_is_checked_against_the_final_labels(tmp_path):
    source = two_phase_bundle(tmp_path)
    document = yaml.safe_load((source / "competition.yaml").read_text())
    document["task"]["files"].append(
        {"path": "final_sample.csv", "kind": "sample", "released_with": "Final"}
    )
    (source / "competition.yaml").write_text(yaml.safe_dump(document))
    final_sample = "id,label\n" + "".join(f"{rid},0.5\n" for rid in FINAL_IDS)
    (source / "final_sample.csv").write_text(final_sample)

    competition = bundle_import(source=source, organizer=None)
    assert competition.task.files.filter(name="final_sample.csv").exists()

    (source / "final_sample.csv").write_text("id,label\n" + "".join(f"{r},0.5\n" for r in IDS))
    Competition.objects.all().delete()
    with pytest.raises(BundleInvalid) as caught:
        bundle_import(source=source, organizer=None)
    assert any("final_sample.csv" in p for p in caught.value.problems)


def test_a_phase_ground_truth_that_does_not_fit_the_task_is_reported_with_every_other_problem(
    tmp_path,
):
    bad = "id,label\nf0,maybe\nf0,yes\n"  # an unknown class, a repeated id, no Usage split
    with pytest.raises(BundleInvalid) as caught:
        bundle_import(source=two_phase_bundle(tmp_path, final_truth=bad), organizer=None)

    problems = caught.value.problems
    assert any(p.startswith("phases[1].ground_truth: final_solution.csv:") for p in problems)
    assert sum("final_solution.csv" in p for p in problems) >= 2
    assert not Competition.objects.exists()


def test_an_unknown_phase_ground_truth_file_is_reported_with_every_other_problem(tmp_path):
    source = two_phase_bundle(tmp_path, daily_limit=0)
    document = yaml.safe_load((source / "competition.yaml").read_text())
    document["phases"][1]["ground_truth"] = "private/missing.csv"
    (source / "competition.yaml").write_text(yaml.safe_dump(document))

    with pytest.raises(BundleInvalid) as caught:
        bundle_import(source=source, organizer=None)

    problems = caught.value.problems
    assert any(p.startswith("phases[1].ground_truth:") and "missing.csv" in p for p in problems)
    assert any(p.startswith("phases[1].daily_limit:") for p in problems)
    assert not Competition.objects.exists()


def test_a_phase_ground_truth_that_is_also_a_public_file_is_refused(tmp_path):
    source = two_phase_bundle(tmp_path)
    document = yaml.safe_load((source / "competition.yaml").read_text())
    document["phases"][1]["ground_truth"] = "final_test.csv"
    (source / "competition.yaml").write_text(yaml.safe_dump(document))

    with pytest.raises(BundleInvalid) as caught:
        bundle_import(source=source, organizer=None)

    assert any(
        p.startswith("phases[1].ground_truth: is a public file") for p in caught.value.problems
    )


@override_settings(HELDOUT_SCORER="in-process")
def test_the_pinned_version_records_the_scorer_that_first_scores_under_it(competition, user):
    queued = _submit(competition, user, final=False)
    _open_final(competition)
    phase_versions_rank()

    submission_score(submission_id=queued.pk)  # the task's own scorer, identity checked

    queued.refresh_from_db()
    assert queued.status == Submission.Status.SCORED, queued.error_message
    assert _versions(queued) == {1}
    recorded = dict(competition.task.versions.values_list("number", "scorer_image_digest"))
    assert recorded[1] == IN_PROCESS


def test_applying_its_own_export_changes_nothing_before_and_after_the_switch(tmp_path, organizer):
    bundle_apply(source=two_phase_bundle(tmp_path), organizer=organizer, dry_run=False)
    competition = Competition.objects.get()
    assert dict(competition.phases.values_list("name", "task_version")) == {
        "Development": 1,
        "Final": 2,
    }
    exported = bundle_export(competition=competition, dest=tmp_path / "1.zip")
    again = bundle_apply(source=exported, organizer=organizer, dry_run=True)
    assert (again.changes, again.files, again.refusals) == ([], [], [])

    _open_final(competition)
    phase_versions_rank()
    after = bundle_apply(source=exported, organizer=organizer, dry_run=False)

    assert after.refusals == []
    assert competition.task.versions.count() == 2  # no version made for data already held


def test_beat_runs_the_check_as_a_periodic_task(competition):
    entry = settings.CELERY_BEAT_SCHEDULE["rank-phase-versions"]
    assert entry["task"] == "competitions.tasks.phase_versions_task"
    assert phase_versions_task() == 0  # Development is open and its version is ranked
    _open_final(competition)

    assert phase_versions_task() == 1

    competition.task.refresh_from_db()
    assert competition.task.version == 2
