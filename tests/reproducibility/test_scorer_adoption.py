"""Only an organizer moves a task to another scorer, and a claim keeps its URL whatever
version is ranked (docs/scorers.md, docs/reproducibility.md)."""

from __future__ import annotations

import logging

import pytest

from competitions.models import ScorerMismatchReport, ScoringRun, Submission, TaskVersion
from competitions.services.scorer_identity import IN_PROCESS, task_scorer_adopt
from competitions.services.submissions import submission_create, submission_set_disqualified
from competitions.services.versions import (
    task_version_activate,
    task_version_create,
    task_version_ensure,
)
from judging.services import submission_score
from scoring.scorers import InProcessScorer
from tests import factories
from tests.jobs import OutboxWatch

pytestmark = pytest.mark.django_db
IMAGE_SCORER = "sha256:" + "2" * 64
NEWER_SCORER = "sha256:" + "3" * 64


def _submitted(competition, user, content: bytes | None = None) -> Submission:
    return submission_create(
        competition=competition,
        user=user,
        uploaded_file=factories.upload(content or factories.perfect_predictions()),
    )


def _record(task, identity: str) -> None:
    TaskVersion.objects.filter(pk=task_version_ensure(task=task).pk).update(
        scorer_image_digest=identity
    )


@pytest.fixture
def in_process(settings):
    settings.HELDOUT_SCORER = "in-process"
    return settings


def test_an_in_process_worker_leaves_a_submission_of_a_version_made_by_an_image(
    in_process, competition, participant, caplog, django_capture_on_commit_callbacks
):
    task = competition.task
    _record(task, IMAGE_SCORER)
    submission = _submitted(competition, participant)

    with (
        caplog.at_level(logging.WARNING),
        django_capture_on_commit_callbacks(execute=False) as resent,
    ):
        assert submission_score(submission_id=submission.pk) is False

    submission.refresh_from_db()
    # Given back, no allowance used: the attempt is on record as returned.
    assert submission.status == "queued"
    assert factories.outcomes(submission) == ["returned"]
    assert not ScoringRun.objects.filter(submission=submission).exists()
    assert len(resent) == 1  # the job goes back to the queue, for a matching worker
    assert list(TaskVersion.objects.filter(task=task).values_list("number", flat=True)) == [1]
    report = ScorerMismatchReport.objects.get()
    assert (report.identity, report.expected, report.version, report.count) == (
        IN_PROCESS,
        IMAGE_SCORER,
        1,
        1,
    )
    assert (
        f"scorer identity in-process differs from task v1's {IMAGE_SCORER}; "
        f"leaving submission #{submission.pk} for a matching worker"
    ) in caplog.text


def test_the_first_scoring_under_a_version_without_a_scorer_records_its_own(
    in_process, competition, participant
):
    task = competition.task
    assert task_version_ensure(task=task).scorer_image_digest == ""
    submission = _submitted(competition, participant)

    assert submission_score(submission_id=submission.pk) is True

    submission.refresh_from_db()
    assert submission.status == "scored"
    assert TaskVersion.objects.get(task=task, number=1).scorer_image_digest == IN_PROCESS
    run = ScoringRun.objects.get(submission=submission)
    assert run.manifest["scorer"]["identity"] == IN_PROCESS


def test_a_new_ground_truth_keeps_the_scorer_and_a_new_scorer_is_left_to_the_first_scoring(
    competition,
):
    task = competition.task
    _record(task, IMAGE_SCORER)

    truth = task_version_create(
        task=task, ground_truth=factories.upload(factories.truth_csv().encode(), "truth.csv")
    )
    scorer = task_version_create(task=task, note="scorer changed")

    assert truth.scorer_image_digest == IMAGE_SCORER
    assert scorer.scorer_image_digest == ""


def test_adopting_the_reported_scorer_ranks_a_new_version_and_rescores_everything(
    in_process,
    competition,
    participant,
    organizer,
    django_capture_on_commit_callbacks,
):
    task = competition.task
    submission = _submitted(competition, participant)
    submission_score(submission_id=submission.pk)
    ScorerMismatchReport.objects.create(
        task=task, worker="host:1", identity=NEWER_SCORER, expected=IN_PROCESS, version=1
    )

    outbox = OutboxWatch()
    with django_capture_on_commit_callbacks(execute=False):
        version = task_scorer_adopt(task=task, by=organizer)

    task.refresh_from_db()
    assert (version.number, task.version) == (2, 2)
    assert version.scorer_image_digest == NEWER_SCORER
    assert "adopted by orga" in version.note
    submission.refresh_from_db()
    assert submission.status == "queued"
    # The rescore of the one submission, the refresh of the board's intervals, and the new
    # version's reference rows.
    assert outbox.tasks() == [
        "competitions.tasks.leaderboard_intervals_task",
        "judging.tasks.references_compute_task",
        "scoring.tasks.submission_score_task",
    ]
    assert not ScorerMismatchReport.objects.exists()


def test_adopting_the_scorer_already_recorded_is_refused(competition, organizer):
    from competitions.errors import InvalidState

    _record(competition.task, IMAGE_SCORER)

    with pytest.raises(InvalidState, match="already records"):
        task_scorer_adopt(task=competition.task, by=organizer, identity=IMAGE_SCORER)
    assert TaskVersion.objects.filter(task=competition.task).count() == 1


@pytest.mark.parametrize(
    ("persona", "allowed"),
    [
        ("organizer", True),
        ("participant", False),
        ("outsider", False),
        ("other_organizer", False),
        (None, False),
    ],
)
def test_only_the_competitions_organizers_adopt_a_scorer_or_see_the_workers(
    request, api, competition, other_competition, persona, allowed
):
    user = request.getfixturevalue(persona) if persona else None
    task = competition.task
    _record(task, IMAGE_SCORER)
    ScorerMismatchReport.objects.create(
        task=task, worker="host:1", identity=NEWER_SCORER, expected=IMAGE_SCORER, version=1
    )
    base = f"/api/v1/competitions/{competition.slug}/scorer"

    workers = api(user).get(f"{base}/workers/")
    adopted = api(user).post(f"{base}/adopt/", {}, format="json")

    if allowed:
        assert workers.status_code == 200
        assert workers.json()["ranked_identity"] == IMAGE_SCORER
        assert [m["identity"] for m in workers.json()["mismatches"]] == [NEWER_SCORER]
        assert adopted.status_code == 201, adopted.content
        assert (adopted.json()["number"], adopted.json()["scorer_image_digest"]) == (
            2,
            NEWER_SCORER,
        )
    else:
        assert workers.status_code in (401, 403, 404)
        assert adopted.status_code in (401, 403, 404)
        assert NEWER_SCORER not in workers.content.decode()
        assert TaskVersion.objects.filter(task=task).count() == 1


def test_the_data_page_shows_workers_with_another_scorer_and_the_adopt_button(
    client, competition, organizer, outsider
):
    task = competition.task
    _record(task, IMAGE_SCORER)
    ScorerMismatchReport.objects.create(
        task=task, worker="host:1", identity=NEWER_SCORER, expected=IMAGE_SCORER, version=1
    )
    client.force_login(organizer)

    page = client.get(f"/c/{competition.slug}/organize/data/").content.decode()
    assert NEWER_SCORER in page
    assert "Adopt this scorer" in page

    response = client.post(
        f"/c/{competition.slug}/organize/scorer/adopt/", {"identity": NEWER_SCORER}
    )
    assert response.status_code == 302
    assert TaskVersion.objects.get(task=task, number=2).scorer_image_digest == NEWER_SCORER

    client.force_login(outsider)
    client.post(f"/c/{competition.slug}/organize/scorer/adopt/", {"identity": IMAGE_SCORER})
    assert TaskVersion.objects.filter(task=task).count() == 2


# --- Permanent claims -----------------------------------------------------------------


def _scored_in_process(competition, user, content: bytes | None = None) -> Submission:
    submission = _submitted(competition, user, content)
    submission_score(submission_id=submission.pk, scorer=InProcessScorer())
    submission.refresh_from_db()
    assert submission.status == "scored"
    return submission


@pytest.mark.parametrize("persona", ["outsider", "other_participant", None])
def test_a_claim_of_version_1_stays_at_its_urls_after_version_2_is_ranked(
    request, api, client, competition, participant, persona
):
    user = request.getfixturevalue(persona) if persona else None
    entry = _scored_in_process(competition, participant)
    task = competition.task
    version = task_version_create(task=task, note="a new scorer")
    task_version_activate(task=task, number=version.number)
    if user is not None:
        client.force_login(user)

    page = client.get(f"/c/{competition.slug}/entries/{entry.pk}/")
    manifest = api(user).get(f"/api/v1/submissions/{entry.pk}/manifest/")
    bundle = api(user).get(f"/api/v1/submissions/{entry.pk}/bundle/")

    assert page.status_code == 200
    text = page.content.decode()
    assert "superseded by version 2" in text
    assert f'href="/c/{competition.slug}/leaderboard/"' in text
    assert 'data-split="public"' in text
    assert 'data-split="private"' not in text  # the private board is not revealed yet
    assert manifest.status_code == 200
    assert manifest.json()["task"]["version"] == 1
    assert manifest["Heldout-Superseded-By-Version"] == "2"
    assert "private" not in manifest.json()["scores"]
    assert bundle.status_code == 200


def test_an_entry_never_on_a_board_stays_hidden_from_outsiders(
    api, client, competition, participant, outsider
):
    _scored_in_process(competition, participant)
    worse = _scored_in_process(competition, participant, factories.predictions_csv())
    task = competition.task
    version = task_version_create(task=task, note="a new scorer")
    task_version_activate(task=task, number=version.number)
    client.force_login(outsider)

    assert client.get(f"/c/{competition.slug}/entries/{worse.pk}/").status_code == 404
    assert api(outsider).get(f"/api/v1/submissions/{worse.pk}/manifest/").status_code == 404
    assert api(outsider).get(f"/api/v1/submissions/{worse.pk}/bundle/").status_code == 404


def test_an_entry_its_team_bettered_keeps_its_claim_but_not_once_disqualified(
    api, competition, participant, outsider
):
    first = _scored_in_process(
        competition, participant, factories.predictions_csv({"id9": 0.9}, default=0.4)
    )
    _scored_in_process(competition, participant)  # perfect: the team's row now
    assert api(outsider).get(f"/api/v1/submissions/{first.pk}/manifest/").status_code == 200

    submission_set_disqualified(submission=first, disqualified=True, reason="leak")

    assert api(outsider).get(f"/api/v1/submissions/{first.pk}/manifest/").status_code == 404
