"""An organizer's pin of a phase to a task version (services/phase_versions.py): set in one
service whose rules are the model's, and kept by the ranked version: a switch an open
phase's pin would undo is refused, naming the phase (services/jobs.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from competitions.errors import ApplicationError, FinalizedError
from competitions.models import Competition, OrganizerAction, OrganizerJob, TaskVersion
from competitions.services.jobs import organizer_job_run, version_switch_start
from competitions.services.organize import phase_update
from competitions.services.phase_versions import (
    PhasePinsVersion,
    phase_version_set,
    phase_versions_rank,
)
from tests.competitions.pinned import (
    phase_of,
    pins,
    ranked,
    two_phase_competition,
)
from tests.competitions.test_phase_versions import (
    _open_final,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def competition(tmp_path, organizer) -> Competition:
    return two_phase_competition(tmp_path, organizer)


# --- Setting a pin -------------------------------------------------------------------------


def test_an_organizer_pins_a_phase_to_a_version_and_the_log_says_so(competition, organizer):
    phase_version_set(phase=phase_of(competition, "Final"), task_version=1, by=organizer)

    assert pins(competition) == {"Development": 1, "Final": 1}
    action = OrganizerAction.objects.get(competition=competition)
    assert (action.kind, action.target, action.by) == ("phase_updated", "phase “Final”", organizer)
    assert action.details == {"task_version": 1, "from": 2}


def test_an_organizer_removes_a_pin_and_the_phase_scores_under_the_ranked_version(
    competition, organizer
):
    phase_version_set(phase=phase_of(competition, "Final"), task_version=None, by=organizer)

    assert pins(competition) == {"Development": 1, "Final": None}


def test_pinning_a_version_the_task_does_not_have_is_refused_with_the_rules_sentence(
    competition, organizer
):
    with pytest.raises(ApplicationError) as caught:
        phase_version_set(phase=phase_of(competition, "Final"), task_version=7, by=organizer)

    assert caught.value.message == (
        "The task has no version 7; a phase scores under one of the task's versions."
    )
    assert pins(competition)["Final"] == 2
    assert not OrganizerAction.objects.exists()


def test_pinning_a_version_of_another_competitions_task_is_refused(
    competition, organizer, other_competition
):
    other_task = other_competition.task
    TaskVersion.objects.create(task=other_task, number=9, ground_truth=other_task.ground_truth.name)

    with pytest.raises(ApplicationError, match="The task has no version 9"):
        phase_version_set(phase=phase_of(competition, "Final"), task_version=9, by=organizer)


def test_pinning_a_version_whose_ground_truth_is_missing_is_refused(competition, organizer):
    version = competition.task.versions.get(number=2)
    version.ground_truth.storage.delete(version.ground_truth.name)
    phase_version_set(phase=phase_of(competition, "Final"), task_version=None, by=organizer)

    with pytest.raises(ApplicationError) as caught:
        phase_version_set(phase=phase_of(competition, "Final"), task_version=2, by=organizer)

    assert "Version 2's ground truth is missing from storage" in caught.value.message
    assert pins(competition)["Final"] is None


def test_pinning_a_version_of_another_scorer_than_the_workers_run_is_refused(
    competition, organizer
):
    TaskVersion.objects.filter(task=competition.task, number=1).update(
        scorer_image_digest="sha256:" + "a" * 64
    )
    TaskVersion.objects.filter(task=competition.task, number=2).update(
        scorer_image_digest="sha256:" + "b" * 64
    )
    final = phase_of(competition, "Final")
    phase_version_set(phase=final, task_version=None, by=organizer)

    with pytest.raises(ApplicationError) as caught:
        phase_version_set(phase=final, task_version=2, by=organizer)

    assert "Version 2 records another scorer" in caught.value.message
    assert "ranked version 1" in caught.value.message


def test_a_kept_pin_does_not_stop_the_phase_from_changing_its_dates(competition, organizer):
    # Version 2 became unusable after Final pinned it: Final's dates still change.
    version = competition.task.versions.get(number=2)
    version.ground_truth.storage.delete(version.ground_truth.name)
    final = phase_of(competition, "Final")

    phase_update(
        phase=final,
        name="Final",
        start_at=final.start_at + timedelta(days=1),
        end_at=final.end_at,
        daily_limit=3,
        total_limit=None,
        late_submissions_scored=False,
        by=organizer,
    )

    assert phase_of(competition, "Final").daily_limit == 3
    assert pins(competition)["Final"] == 2


def test_pinning_the_open_phase_ranks_its_version_at_once(competition, organizer):
    phase_version_set(phase=phase_of(competition, "Development"), task_version=2, by=organizer)

    assert ranked(competition) == 2
    switch = OrganizerAction.objects.get(kind="version_switch_started")
    assert (switch.by, switch.target) == (None, "version 2")


def test_pinning_a_phase_not_open_yet_leaves_the_ranked_version(competition, organizer):
    phase_version_set(phase=phase_of(competition, "Final"), task_version=1, by=organizer)

    assert ranked(competition) == 1


def test_a_finalized_competition_refuses_a_new_pin(competition, organizer):
    Competition.objects.filter(pk=competition.pk).update(finalized_at=timezone.now())

    with pytest.raises(FinalizedError):
        phase_version_set(phase=phase_of(competition, "Final"), task_version=1, by=organizer)

    assert pins(competition)["Final"] == 2


# --- The version switch and an open phase's pin ----------------------------------------------


def test_a_switch_to_another_version_than_the_open_phase_pins_is_refused_naming_the_phase(
    competition, organizer
):
    with pytest.raises(PhasePinsVersion) as caught:
        version_switch_start(competition=competition, user=organizer, number=2)

    message = caught.value.message
    assert "The phase “Development” is open and pins version 1" in message
    assert "Change the phase's task version instead" in message
    assert (caught.value.status, caught.value.code) == (409, "phase_pins_version")
    assert not OrganizerJob.objects.exists()


def test_a_switch_to_the_version_the_open_phase_pins_is_allowed(competition, organizer):
    phase_version_set(phase=phase_of(competition, "Development"), task_version=None, by=organizer)
    version_switch_start(competition=competition, user=organizer, number=2, rescore=False)
    organizer_job_run(job_id=OrganizerJob.objects.get().pk)
    assert ranked(competition) == 2

    phase_version_set(phase=phase_of(competition, "Development"), task_version=1, by=organizer)
    assert ranked(competition) == 1  # the pin ranks its version at once
    job = version_switch_start(competition=competition, user=organizer, number=1)

    assert job.kind == OrganizerJob.Kind.VERSION_SWITCH


def test_a_switch_job_fails_when_a_phase_pinning_another_version_opened_since_it_was_asked(
    competition, organizer
):
    phase_version_set(phase=phase_of(competition, "Development"), task_version=None, by=organizer)
    job = version_switch_start(competition=competition, user=organizer, number=2)
    phase_version_set(phase=phase_of(competition, "Development"), task_version=1, by=organizer)

    organizer_job_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.status == OrganizerJob.Status.FAILED
    assert "The phase “Development” is open and pins version 1" in job.message
    assert ranked(competition) == 1


def test_without_an_open_pinned_phase_the_switch_is_allowed_as_before(competition, organizer):
    phase_version_set(phase=phase_of(competition, "Development"), task_version=None, by=organizer)

    job = version_switch_start(competition=competition, user=organizer, number=2)

    assert job.params == {"number": 2, "rescore": False}


def test_the_platform_still_ranks_the_pinned_version_when_the_phase_opens(competition):
    _open_final(competition)

    assert phase_versions_rank() == 1
    assert ranked(competition) == 2
