"""Organizers' background jobs: version switches, rescore-all and dry runs answer 202 with a
job; a worker runs it once; the organizers (only they) follow its progress."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from competitions.models import Competition, LeaderboardEntry, OrganizerJob, Submission
from competitions.services.jobs import (
    organizer_job_run,
    rescore_all_start,
    version_switch_start,
)
from competitions.services.submissions import submissions_rescore_all
from tests import factories
from tests.jobs import add_version, run_queued_jobs, scored
from tests.worker_process import wait_for_status, worker_process

# Version 2 corrects two labels: id0 becomes positive (public) and id9 negative (private).
TRUTH_V2 = factories.truth_csv().replace("id0,0,", "id0,1,").replace("id9,1,", "id9,0,")
STRANGERS = ["participant", "other_participant", "outsider", "other_organizer"]


# --- the services, on PostgreSQL --------------------------------------------------------------


@pytest.mark.django_db
def test_a_redelivered_job_does_nothing(competition, organizer, participant):
    scored(competition, participant)
    add_version(competition, TRUTH_V2)
    job = version_switch_start(competition=competition, user=organizer, number=2)

    assert organizer_job_run(job_id=job.pk) is True
    assert organizer_job_run(job_id=job.pk) is False

    job.refresh_from_db()
    assert (job.status, job.progress_done, job.progress_total) == ("done", 2, 2)
    assert job.started_at is not None
    assert job.finished_at is not None
    assert job.result == {"number": 2, "rescore": False, "queued": 0}
    competition.task.refresh_from_db()
    assert competition.task.version == 2
    # Nothing is scored under version 2 yet: its board is empty (v1's scores are kept).
    assert not LeaderboardEntry.objects.exists()


@pytest.mark.django_db
def test_a_switch_refused_when_it_runs_fails_with_the_reason_and_changes_nothing(
    competition, organizer, participant
):
    scored(competition, participant)
    add_version(competition, TRUTH_V2)
    job = version_switch_start(competition=competition, user=organizer, number=2)
    # Finalized between the request and the worker.
    Competition.objects.filter(pk=competition.pk).update(finalized_at=timezone.now())

    (job,) = run_queued_jobs()

    assert job.status == "failed"
    assert job.message == "The competition is finalized; its ranked version can't change."
    assert job.result == {"code": "finalized"}
    competition.task.refresh_from_db()
    assert competition.task.version == 1
    assert set(LeaderboardEntry.objects.values_list("task_version", flat=True)) == {1}


@pytest.mark.django_db
def test_a_missing_version_or_a_finalized_competition_is_refused_at_once(competition, organizer):
    from competitions.errors import InvalidState
    from competitions.permissions import NotFound

    with pytest.raises(NotFound, match="Version 5 does not exist"):
        version_switch_start(competition=competition, user=organizer, number=5)
    add_version(competition, TRUTH_V2)
    Competition.objects.filter(pk=competition.pk).update(finalized_at=timezone.now())
    competition.refresh_from_db()
    with pytest.raises(InvalidState, match="finalized"):
        version_switch_start(competition=competition, user=organizer, number=2)
    assert not OrganizerJob.objects.exists()


@pytest.mark.django_db
def test_one_switch_or_rescore_at_a_time_unless_the_earlier_one_is_stale(
    settings, competition, organizer
):
    from competitions.errors import InvalidState

    add_version(competition, TRUTH_V2)
    first = version_switch_start(competition=competition, user=organizer, number=2)

    with pytest.raises(InvalidState, match=f"Version switch #{first.pk} is queued"):
        rescore_all_start(competition=competition, user=organizer)

    # Its worker died long ago: it no longer blocks.
    long_ago = timezone.now() - timedelta(seconds=settings.HELDOUT_RESEND_AFTER_S + 1)
    OrganizerJob.objects.filter(pk=first.pk).update(status="running", started_at=long_ago)
    second = rescore_all_start(competition=competition, user=organizer)
    assert second.status == "queued"


@pytest.mark.django_db
def test_rescore_all_is_one_update_and_its_job_counts_the_submissions_queued(
    competition, organizer, participant, other_participant, django_capture_on_commit_callbacks
):
    for user in (participant, other_participant, participant):
        scored(competition, user)
    job = rescore_all_start(competition=competition, user=organizer)
    assert job.progress_total == 3

    with django_capture_on_commit_callbacks(execute=True) as sent:
        (job,) = run_queued_jobs()

    assert len(sent) == 1  # one chunk
    assert (job.status, job.progress_done, job.progress_total) == ("done", 3, 3)
    assert job.result == {"queued": 3}
    assert set(Submission.objects.values_list("status", flat=True)) == {"queued"}


def _rescore_queries(competition, user, count: int) -> int:
    for _ in range(count):
        submission = factories.submission_row(
            user.teams.get(competition=competition), status="scored", task_version=1
        )
        submission.save()
    with CaptureQueriesContext(connection) as ctx:
        assert submissions_rescore_all(competition=competition) == count
    return len(ctx.captured_queries)


@pytest.mark.django_db
def test_rescore_all_takes_the_same_queries_for_5_and_50_submissions(
    competition, other_competition, participant, other_organizer
):
    from competitions.services.teams import competition_join

    competition_join(competition=other_competition, user=participant, accept_rules=True)

    assert _rescore_queries(competition, participant, 5) == _rescore_queries(
        other_competition, participant, 50
    )


# --- who may start or see a job ---------------------------------------------------------------


def _post_actions(client, slug: str) -> list[int]:
    base = f"/api/v1/competitions/{slug}"
    return [
        client.post(f"{base}/versions/2/activate/", {"rescore": True}, format="json").status_code,
        client.post(f"{base}/rescore/").status_code,
        client.post(
            f"{base}/scorer/",
            {"program": factories.upload(b"pass\n", "score.py")},
            format="multipart",
        ).status_code,
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("persona", STRANGERS)
def test_only_the_competitions_organizers_start_or_see_its_jobs(
    request, api, competition, other_competition, organizer, persona
):
    user = request.getfixturevalue(persona)
    add_version(competition, TRUTH_V2)
    job = rescore_all_start(competition=competition, user=organizer)

    assert _post_actions(api(user), competition.slug) == [403, 403, 403]
    response = api(user).get(f"/api/v1/jobs/{job.pk}/")

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert list(OrganizerJob.objects.values_list("pk", flat=True)) == [job.pk]
    assert api(organizer).get(f"/api/v1/jobs/{job.pk}/").status_code == 200


@pytest.mark.django_db
def test_an_anonymous_user_is_asked_to_sign_in(api, competition, organizer):
    job = rescore_all_start(competition=competition, user=organizer)

    assert _post_actions(api(None), competition.slug) == [401, 401, 401]
    assert api(None).get(f"/api/v1/jobs/{job.pk}/").status_code == 401


@pytest.mark.django_db
def test_an_invite_only_competitions_jobs_are_not_found_by_strangers(
    api, competition, organizer, outsider
):
    job = rescore_all_start(competition=competition, user=organizer)
    Competition.objects.filter(pk=competition.pk).update(
        visibility=Competition.Visibility.INVITE_ONLY
    )

    assert api(outsider).get(f"/api/v1/jobs/{job.pk}/").status_code == 404
    assert _post_actions(api(outsider), competition.slug) == [404, 404, 404]
    assert api(organizer).get("/api/v1/jobs/999999/").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("persona", STRANGERS)
def test_nobody_else_sees_the_jobs_on_the_organize_pages(
    request, client, competition, other_competition, organizer, persona
):
    rescore_all_start(competition=competition, user=organizer)
    client.force_login(request.getfixturevalue(persona))

    assert client.get(f"/c/{competition.slug}/organize/").status_code == 403
    assert client.get(f"/c/{competition.slug}/organize/data/").status_code == 403
    assert client.post(f"/c/{competition.slug}/organize/versions/1/activate/").status_code == 403
    assert OrganizerJob.objects.count() == 1


# --- end to end, with a real worker ------------------------------------------------------------


def _wait_for_job(api, user, url: str, proc, log, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        body = api(user).get(url).json()
        if not seen or seen[-1] != body["status"]:
            seen.append(body["status"])
        if body["status"] in ("done", "failed"):
            return body
        if proc.poll() is not None:
            pytest.fail(f"the worker exited:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    pytest.fail(f"job still {seen} after {timeout}s; worker log:\n{log.read_text()[-3000:]}")


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_version_switch_posted_to_the_api_runs_on_the_worker_and_switches_the_board(
    tmp_path, api, organizer, participant
):
    competition = factories.make_competition(organizers=[organizer])
    slug = competition.slug
    api(participant).post(f"/api/v1/competitions/{slug}/join/", {"accept_rules": True})
    log = tmp_path / "worker.log"
    with worker_process(log) as proc:
        posted = api(participant).post(
            f"/api/v1/competitions/{slug}/submissions/",
            {"file": factories.upload(factories.perfect_predictions())},
            format="multipart",
        )
        submission_id = posted.json()["id"]
        assert wait_for_status(submission_id, {"scored", "failed"}, proc, log) == "scored"
        created = api(organizer).post(
            f"/api/v1/competitions/{slug}/versions/",
            {"ground_truth": factories.upload(TRUTH_V2.encode(), "truth.csv")},
            format="multipart",
        )
        assert created.status_code == 201, created.content

        switched = api(organizer).post(
            f"/api/v1/competitions/{slug}/versions/2/activate/", {"rescore": True}, format="json"
        )

        assert switched.status_code == 202, switched.content
        job = switched.json()
        assert job["status"] in ("queued", "running", "done")
        assert switched["Location"] == job["url"]
        done = _wait_for_job(api, organizer, job["url"], proc, log)
        assert done["status"] == "done", done
        assert (done["progress_done"], done["progress_total"]) == (1, 1)
        assert done["result"] == {"number": 2, "rescore": True, "queued": 1}
        # The rescore it queued is scored by the worker too, under version 2.
        assert wait_for_status(submission_id, {"scored", "failed"}, proc, log) == "scored"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            board = api(None).get(f"/api/v1/competitions/{slug}/leaderboard/").json()
            if board["results"] and board["results"][0]["score"] < 1.0:
                break
            time.sleep(0.2)
    assert board["task_version"] == 2
    (row,) = board["results"]
    assert row["team"] == "alice"
    assert row["score"] < 1.0  # the perfect predictions of v1 miss v2's corrected labels
    assert "competitions.tasks.organizer_job_task" in log.read_text()
