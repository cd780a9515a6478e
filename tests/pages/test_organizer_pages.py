"""The organizer pages: the dashboard's figures, the sample submission's validation,
phases and limits, the actions (rescore, disqualify, ban, finalize, export), bundles."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from competitions.models import Competition, LeaderboardEntry, Phase, Submission, Team
from competitions.services.submissions import submission_create
from competitions.services.teams import competition_join
from tests import factories
from tests.competitions.test_bundles import bundle_yaml, write_bundle, zip_folder
from tests.jobs import run_queued_jobs
from tests.pages.builders import failed_invalid, scored

pytestmark = pytest.mark.django_db


@pytest.fixture
def orga_client(client, organizer):
    client.force_login(organizer)
    return client


def test_the_dashboard_counts_participants_queue_and_failures(
    orga_client, competition, participant
):
    alice = participant.teams.get()
    scored(alice, 0.8, minutes_ago=0)
    submission_create(
        competition=competition,
        user=participant,
        uploaded_file=factories.upload(factories.perfect_predictions()),
    )
    failed_invalid(alice, [{"code": "duplicate_id", "message": "x", "line": 3, "column": "id"}])
    failed_invalid(alice, [{"code": "duplicate_id", "message": "x", "line": 3, "column": "id"}])
    factories.submission_row(
        alice, status=Submission.Status.FAILED, failure=Submission.Failure.ERROR
    ).save(force_insert=True)
    response = orga_client.get(f"/c/{competition.slug}/organize/")
    board = response.context["board"]
    assert (board.participants, board.teams, board.submissions) == (2, 2, 5)
    assert (board.queued, board.running, board.queue_depth) == (1, 0, 1)
    assert board.failures == [
        ("The file did not pass validation", 2),
        ("Scoring failed", 1),
        ("Scoring was interrupted", 0),
    ]
    assert board.problem_codes == [("duplicate_id", 2)]
    assert board.per_day[-1] == (timezone.now().date(), 5)
    assert sum(n for _day, n in board.per_day) == 5
    page = response.content.decode()
    assert '<strong id="queue-depth">1</strong>' in page
    assert "Submissions per day, last 30 days" in page


def test_the_data_page_shows_what_validation_says_of_the_sample(orga_client, competition):
    page = orga_client.get(f"/c/{competition.slug}/organize/data/").content.decode()
    assert "sample_submission.csv</strong> passes validation" in page

    sample = competition.task.files.get()
    sample.file.save("sample_submission.csv", io.BytesIO(b"id,label\nid0,banana\n"), save=True)
    page = orga_client.get(f"/c/{competition.slug}/organize/data/").content.decode()
    assert "fails validation" in page
    assert "Line 2" in page


def test_the_phases_page_saves_limits_and_dates(orga_client, competition):
    phase = competition.phases.get()
    url = f"/c/{competition.slug}/organize/phases/"
    orga_client.post(url, {"which": "limits", "selection_limit": "3", "max_team_size": "2"})
    competition.refresh_from_db()
    assert (competition.selection_limit, competition.max_team_size) == (3, 2)

    end = (timezone.now() + timedelta(days=3)).replace(second=0, microsecond=0)
    data = {
        "which": str(phase.pk),
        f"p{phase.pk}-name": "Final",
        f"p{phase.pk}-start_at": phase.start_at.strftime("%Y-%m-%dT%H:%M"),
        f"p{phase.pk}-end_at": end.strftime("%Y-%m-%dT%H:%M"),
        f"p{phase.pk}-daily_limit": "7",
        f"p{phase.pk}-total_limit": "",
        f"p{phase.pk}-late_submissions_scored": "on",
    }
    response = orga_client.post(url, data, follow=True)
    assert "The phase “Final” is saved." in response.content.decode()
    phase.refresh_from_db()
    assert (phase.name, phase.end_at, phase.daily_limit, phase.total_limit) == (
        "Final",
        end,
        7,
        None,
    )
    assert phase.late_submissions_scored


def test_the_phases_page_refuses_overlaps_and_bad_limits(orga_client, competition):
    first = competition.phases.get()
    second = Phase.objects.create(
        competition=competition, name="Second", start_at=first.end_at + timedelta(days=1)
    )
    url = f"/c/{competition.slug}/organize/phases/"
    data = {
        "which": str(second.pk),
        f"p{second.pk}-name": "Second",
        f"p{second.pk}-start_at": first.start_at.strftime("%Y-%m-%dT%H:%M"),
        f"p{second.pk}-daily_limit": "5",
    }
    response = orga_client.post(url, data, follow=True)
    assert "would overlap" in response.content.decode()
    response = orga_client.post(url, {**data, f"p{second.pk}-daily_limit": "0"})
    assert response.status_code == 400
    assert Phase.objects.get(pk=second.pk).start_at != first.start_at


def test_disqualifying_needs_a_reason_and_drops_the_team_from_the_board(
    orga_client, competition, participant
):
    submission = scored(participant.teams.get(), 0.9)
    url = f"/c/{competition.slug}/organize/submissions/{submission.pk}/disqualify/"
    response = orga_client.post(url, {"disqualified": "1", "reason": ""}, follow=True)
    assert "Say why" in response.content.decode()
    assert LeaderboardEntry.objects.filter(submission=submission).exists()

    orga_client.post(url, {"disqualified": "1", "reason": "used the test labels"})
    submission.refresh_from_db()
    assert submission.disqualified_reason == "used the test labels"
    assert not LeaderboardEntry.objects.filter(submission=submission).exists()
    orga_client.post(url, {"disqualified": "0"})
    assert LeaderboardEntry.objects.filter(submission=submission).exists()


def test_banning_a_team_needs_a_reason(orga_client, competition, participant):
    team = participant.teams.get()
    url = f"/c/{competition.slug}/organize/teams/{team.pk}/ban/"
    response = orga_client.post(url, {"banned": "1", "reason": ""}, follow=True)
    assert "Say why the team is banned" in response.content.decode()
    orga_client.post(url, {"banned": "1", "reason": "two accounts"})
    assert Team.objects.get(pk=team.pk).banned_reason == "two accounts"
    page = orga_client.get(f"/c/{competition.slug}/organize/teams/?q=ali").content.decode()
    assert "two accounts" in page
    assert "bob" not in page


def test_rescoring_all_queues_every_finished_submission(orga_client, competition, participant):
    scored(participant.teams.get(), 0.9)
    scored(participant.teams.get(), 0.8)
    response = orga_client.post(
        f"/c/{competition.slug}/organize/rescore/", {"confirm": "yes"}, follow=True
    )
    assert "queues 2 submission(s) for scoring again." in response.content.decode()
    assert set(Submission.objects.values_list("status", flat=True)) == {"scored"}

    (job,) = run_queued_jobs()

    assert (job.status, job.progress_done, job.result) == ("done", 2, {"queued": 2})
    assert set(Submission.objects.values_list("status", flat=True)) == {"queued"}
    page = orga_client.get(f"/c/{competition.slug}/organize/").content.decode()
    assert "Rescore every submission" in page
    assert "2 queued" in page


def test_finalizing_needs_the_confirmation_and_happens_once(orga_client, competition):
    url = f"/c/{competition.slug}/organize/finalize/"
    response = orga_client.post(url, {}, follow=True)
    assert "Tick the box" in response.content.decode()
    assert not Competition.objects.get(pk=competition.pk).is_finalized
    orga_client.post(url, {"confirm": "yes"})
    assert Competition.objects.get(pk=competition.pk).is_finalized
    response = orga_client.post(url, {"confirm": "yes"}, follow=True)
    assert "already finalized" in response.content.decode()


def test_the_export_is_a_bundle_with_the_ground_truth(orga_client, competition):
    response = orga_client.get(f"/c/{competition.slug}/organize/export/")
    assert response["Content-Disposition"] == 'attachment; filename="tiny.zip"'
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as zf:
        names = set(zf.namelist())
        assert {"competition.yaml", "private/solution.csv", "data/sample_submission.csv"} <= names
        assert zf.read("private/solution.csv").decode() == factories.truth_csv()


def _bundle_upload(tmp_path, **overrides) -> SimpleUploadedFile:
    folder = write_bundle(tmp_path / "b", bundle_yaml(**overrides))
    path = zip_folder(folder, tmp_path / "b.zip")
    return SimpleUploadedFile("b.zip", path.read_bytes(), content_type="application/zip")


def test_checking_a_bundle_reports_it_valid_and_creates_nothing(orga_client, tmp_path):
    response = orga_client.post(
        "/organize/import/", {"bundle": _bundle_upload(tmp_path), "action": "check"}
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "The bundle is valid." in page
    assert "The sample submission passes validation against the ground truth." in page
    assert not Competition.objects.filter(slug="tiny-bundle").exists()


def test_a_bad_bundle_lists_every_problem(orga_client, tmp_path):
    upload = _bundle_upload(tmp_path, slug="Bad Slug", phases=[])
    response = orga_client.post("/organize/import/", {"bundle": upload, "action": "import"})
    page = response.content.decode()
    assert response.status_code == 400
    assert "may hold only lowercase letters" in page
    assert "must list at least one phase" in page
    assert not Competition.objects.exclude(slug="tiny").exists()


def test_importing_a_bundle_makes_the_uploader_its_organizer(orga_client, organizer, tmp_path):
    response = orga_client.post(
        "/organize/import/", {"bundle": _bundle_upload(tmp_path), "action": "import"}
    )
    assert response["Location"] == "/c/tiny-bundle/organize/"
    assert list(Competition.objects.get(slug="tiny-bundle").organizers.all()) == [organizer]


def test_the_submissions_page_finds_submissions_by_the_day_they_were_made(
    orga_client, competition, participant
):
    from datetime import datetime

    team = competition_join(competition=competition, user=participant, accept_rules=True).team
    days = {}
    for day in (1, 2, 3):
        made = factories.submission_row(team, created_at=datetime(2026, 11, day, 12, tzinfo=UTC))
        made.save()
        days[day] = made.pk
    url = f"/c/{competition.slug}/organize/submissions/"

    def shown(query: str) -> set[int]:
        page = orga_client.get(url + query).content.decode()
        return {pk for pk in days.values() if f">#{pk}</a>" in page}

    assert shown("?since=2026-11-02&until=2026-11-02") == {days[2]}
    assert shown("?since=2026-11-02") == {days[2], days[3]}
    assert shown("?until=2026-11-01") == {days[1]}
    page = orga_client.get(url + "?since=30/11/2026").content.decode()
    assert "is not a day: write it as 2026-11-30" in page
    assert shown("?since=30/11/2026") == set(days.values())  # the rest of the filter holds
