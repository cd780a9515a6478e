"""Task versions: a new ground truth makes a version, scores keep theirs, the organizer switches."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from django.core.files.base import ContentFile

from competitions.models import LeaderboardEntry, OutboxMessage, Score, TaskVersion
from competitions.services.bundles import bundle_export, bundle_import
from competitions.services.submissions import submissions_rescore_all
from competitions.services.versions import (
    InvalidGroundTruth,
    task_version_activate,
    task_version_create,
)
from judging.services import submission_score
from scoring.scorers import InProcessScorer
from tests import factories
from tests.conftest import persona_user
from tests.jobs import run_queued_jobs, scored

pytestmark = pytest.mark.django_db

# Version 2 corrects two labels: id0 becomes positive (public) and id9 negative (private).
TRUTH_V2 = factories.truth_csv().replace("id0,0,", "id0,1,").replace("id9,1,", "id9,0,")
PERSONAS = ["anonymous", "outsider", "participant", "other_participant", "other_organizer"]


def _split_sha256(text: str) -> str:
    # The definition in docs/manifest.md, written out independently of the code.
    lines = [line.split(",") for line in text.splitlines()[1:]]
    return hashlib.sha256("".join(f"{i}\t{u.lower()}\n" for i, _, u in lines).encode()).hexdigest()


def _board(competition) -> dict[str, tuple[float, int]]:
    return {
        e.split: (e.score, e.task_version)
        for e in LeaderboardEntry.objects.filter(competition=competition)
    }


def test_a_bundle_import_records_version_1_with_the_hashes_of_its_files(tmp_path, organizer):
    competition = factories.make_competition(slug="source")
    competition.refresh_from_db()  # plain strings, as an export reads them
    source = bundle_export(competition=competition, dest=tmp_path / "b.zip")
    competition.delete()

    imported = bundle_import(source=source, organizer=organizer)

    version = TaskVersion.objects.get(task=imported.task)
    assert version.number == imported.task.version == 1
    assert version.ground_truth.name == imported.task.ground_truth.name
    truth = Path(imported.task.ground_truth.path).read_bytes()
    assert version.ground_truth_sha256 == hashlib.sha256(truth).hexdigest()
    assert version.split_sha256 == _split_sha256(factories.truth_csv())
    assert version.scorer_program_sha256 == ""


def test_a_new_ground_truth_makes_a_new_version_that_is_not_ranked_yet(competition):
    task = competition.task
    first_file = task.ground_truth.name

    version = task_version_create(
        task=task, ground_truth=ContentFile(TRUTH_V2.encode(), name="truth.csv"), note="fix"
    )

    assert (version.number, version.note) == (2, "fix")
    assert list(task.versions.values_list("number", flat=True)) == [1, 2]
    assert Path(version.ground_truth.path).read_text() == TRUTH_V2
    assert version.ground_truth_sha256 == hashlib.sha256(TRUTH_V2.encode()).hexdigest()
    assert version.split_sha256 == _split_sha256(TRUTH_V2)
    task.refresh_from_db()
    assert (task.version, task.ground_truth.name) == (1, first_file)
    assert Path(task.ground_truth.path).read_text() == factories.truth_csv()


def test_an_invalid_ground_truth_makes_no_version_and_leaves_no_file(competition):
    task = competition.task
    bad = "id,label,Usage\nid0,banana,Public\n"
    folder = Path(task.ground_truth.storage.path(f"ground_truth/{competition.slug}/v2"))
    before = set(folder.iterdir()) if folder.exists() else set()

    with pytest.raises(InvalidGroundTruth) as raised:
        task_version_create(task=task, ground_truth=ContentFile(bad.encode(), name="bad.csv"))

    assert raised.value.extra["total_problems"] >= 1
    assert list(task.versions.values_list("number", flat=True)) == [1]
    assert (set(folder.iterdir()) if folder.exists() else set()) == before


def test_rescoring_under_a_new_version_adds_scores_and_switching_back_restores_the_board(
    competition, participant, django_capture_on_commit_callbacks
):
    submission = scored(competition, participant)
    v1_scores = set(Score.objects.values_list("task_version", "split", "metric", "value"))
    assert _board(competition) == {"public": (1.0, 1), "private": (1.0, 1)}
    task = competition.task
    task_version_create(task=task, ground_truth=ContentFile(TRUTH_V2.encode(), name="t.csv"))

    task_version_activate(task=task, number=2)
    task.refresh_from_db()
    assert Path(task.ground_truth.path).read_text() == TRUTH_V2
    assert _board(competition) == {}  # nothing is scored under version 2 yet
    with django_capture_on_commit_callbacks(execute=False):
        assert submissions_rescore_all(competition=competition) == 1
    submission_score(submission_id=submission.pk, scorer=InProcessScorer())

    rows = set(Score.objects.values_list("task_version", "split", "metric", "value"))
    assert v1_scores <= rows  # the old scores are untouched
    v2 = {(split, metric): value for version, split, metric, value in rows if version == 2}
    assert v2[("public", "accuracy")] == pytest.approx(5 / 6)  # id0 is wrong under v2
    assert v2[("private", "accuracy")] == pytest.approx(3 / 4)  # and id9
    assert _board(competition)["public"] == (v2[("public", "roc_auc")], 2)

    task_version_activate(task=task, number=1)
    assert _board(competition) == {"public": (1.0, 1), "private": (1.0, 1)}


def test_a_version_can_not_be_activated_once_finalized(api, competition, organizer):
    task = competition.task
    task_version_create(task=task, ground_truth=ContentFile(TRUTH_V2.encode(), name="t.csv"))
    api(organizer).post(f"/api/v1/competitions/{competition.slug}/finalize/")

    response = api(organizer).post(f"/api/v1/competitions/{competition.slug}/versions/2/activate/")

    assert response.status_code == 409
    assert response.json()["code"] == "finalized"
    task.refresh_from_db()
    assert task.version == 1


def test_the_organizer_adds_and_activates_a_version_over_the_api(
    api, competition, organizer, participant, django_capture_on_commit_callbacks
):
    scored(competition, participant)
    url = f"/api/v1/competitions/{competition.slug}/versions/"

    created = api(organizer).post(
        url,
        {"ground_truth": factories.upload(TRUTH_V2.encode(), "truth.csv"), "note": "fixed"},
        format="multipart",
    )
    assert created.status_code == 201, created.json()
    assert created.json()["number"] == 2
    assert created.json()["ranked"] is False
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        activated = api(organizer).post(f"{url}2/activate/", {"rescore": True}, format="json")
    assert activated.status_code == 202, activated.json()
    job = activated.json()
    assert (job["kind"], job["status"], job["params"]) == (
        "version_switch",
        "queued",
        {"number": 2, "rescore": True},
    )
    assert activated["Location"] == job["url"]
    assert len(callbacks) == 1  # the job, sent to a worker
    sent_before = set(OutboxMessage.objects.values_list("pk", flat=True))
    with django_capture_on_commit_callbacks(execute=False):
        run_queued_jobs()
    # The scored submission is queued under version 2, the board's intervals refreshed and
    # the version's reference rows made.
    queued = OutboxMessage.objects.exclude(pk__in=sent_before).values_list("task", flat=True)
    assert sorted(queued) == [
        "competitions.tasks.leaderboard_intervals_task",
        "judging.tasks.references_compute_task",
        "scoring.tasks.submission_score_task",
    ]
    done = api(organizer).get(job["url"]).json()
    assert (done["status"], done["result"]) == ("done", {"number": 2, "rescore": True, "queued": 1})
    board = api(participant).get(f"/api/v1/competitions/{competition.slug}/leaderboard/")
    assert board.json()["task_version"] == 2
    listed = api(None).get(url).json()
    assert listed["ranked"] == 2
    assert [(v["number"], v["ranked"]) for v in listed["results"]] == [(1, False), (2, True)]


def test_an_invalid_ground_truth_is_refused_over_the_api_with_its_problems(
    api, competition, organizer
):
    response = api(organizer).post(
        f"/api/v1/competitions/{competition.slug}/versions/",
        {"ground_truth": factories.upload(b"id,label\nid0,7\n", "truth.csv")},
        format="multipart",
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_ground_truth"
    assert response.json()["problems"]


@pytest.mark.parametrize("persona", PERSONAS)
def test_only_organizers_add_or_activate_versions(request, api, competition, persona):
    user = persona_user(request, persona)
    url = f"/api/v1/competitions/{competition.slug}/versions/"
    task_version_create(
        task=competition.task, ground_truth=ContentFile(TRUTH_V2.encode(), name="t.csv")
    )

    created = api(user).post(
        url, {"ground_truth": factories.upload(TRUTH_V2.encode(), "t.csv")}, format="multipart"
    )
    activated = api(user).post(f"{url}2/activate/")

    expected = {401} if user is None else {403}
    assert created.status_code in expected, created.status_code
    assert activated.status_code in expected, activated.status_code
    assert competition.task.versions.count() == 2
    competition.task.refresh_from_db()
    assert competition.task.version == 1


@pytest.mark.parametrize("persona", ["anonymous", "outsider", "other_organizer"])
def test_versions_of_an_invite_only_competition_are_not_found_by_strangers(
    request, api, organizer, persona
):
    user = persona_user(request, persona)
    hidden = factories.make_competition(
        slug="hidden", organizers=[organizer], visibility="invite_only"
    )

    response = api(user).get(f"/api/v1/competitions/{hidden.slug}/versions/")

    assert response.status_code == 404
