"""A participant's pages with Django's test client: finding, joining, submitting (the plain
form and the page script's JSON), the refusals, the submission's page, selecting."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from competitions.models import Competition, Membership, Submission, Task
from competitions.services.teams import team_set_banned
from tests import factories
from tests.pages.builders import failed_invalid, scored

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}


def _titles(response) -> list[str]:
    return re.findall(r'<h2><a href="/c/[^/]+/">([^<]+)</a></h2>', response.content.decode())


@pytest.fixture
def catalogue(organizer):
    """Three competitions: open (binary), upcoming (regression), finished (binary)."""
    now = timezone.now()
    factories.make_competition(slug="open-one", organizers=[organizer])
    upcoming = factories.make_competition(slug="soon", organizers=[organizer])
    Competition.objects.filter(pk=upcoming.pk).update(
        start_at=now + timedelta(days=3), title="Coming soon", description="Houses"
    )
    Task.objects.filter(competition=upcoming).update(task_type=Task.Type.REGRESSION)
    finished = factories.make_competition(slug="done", organizers=[organizer])
    Competition.objects.filter(pk=finished.pk).update(end_at=now - timedelta(days=1))


def test_the_list_filters_by_status_task_type_and_words(client, catalogue):
    assert sorted(_titles(client.get("/"))) == [
        "Coming soon",
        "Competition done",
        "Competition open-one",
    ]
    assert _titles(client.get("/?status=open")) == ["Competition open-one"]
    assert _titles(client.get("/?status=upcoming")) == ["Coming soon"]
    assert _titles(client.get("/?status=finished")) == ["Competition done"]
    assert _titles(client.get("/?task_type=regression")) == ["Coming soon"]
    assert _titles(client.get("/?q=houses")) == ["Coming soon"]
    assert _titles(client.get("/?q=nothing-like-it")) == []
    assert "No competition matches these filters." in client.get("/?q=zzz").content.decode()


def test_joining_needs_the_rules_accepted(client, competition, outsider):
    client.force_login(outsider)
    response = client.post(f"/c/{competition.slug}/join/", {})
    assert response.status_code == 400
    assert not Membership.objects.filter(user=outsider).exists()

    response = client.post(f"/c/{competition.slug}/join/", {"accept_rules": "on"})
    assert response["Location"] == f"/c/{competition.slug}/submit/"
    membership = Membership.objects.get(user=outsider)
    assert membership.team.name == "charlie"
    assert "You joined" in client.get(response["Location"]).content.decode()


def test_the_rules_tab_offers_joining_only_to_who_can_join(client, competition, participant):
    url = f"/c/{competition.slug}/rules/"
    assert "Log in</a> or <a" in client.get(url).content.decode()
    client.force_login(participant)
    page = client.get(url).content.decode()
    assert "You have joined" in page
    assert 'name="accept_rules"' not in page


def _post(client, competition, content: bytes, *, json: bool = False, **fields):
    data = {"file": factories.upload(content), **fields}
    return client.post(f"/c/{competition.slug}/submit/", data, **(JSON if json else {}))


def test_the_plain_form_stores_the_file_and_its_metadata_then_shows_the_submission(
    client, competition, participant
):
    client.force_login(participant)
    response = _post(
        client,
        competition,
        factories.perfect_predictions(),
        method_name="oracle",
        description="Looks at the answers",
        paper_url="https://example.org/paper",
        code_url="https://example.org/code",
        hardware_declared="1 CPU, 2 s",
    )
    submission = Submission.objects.get()
    assert response["Location"] == f"/c/{competition.slug}/submissions/{submission.pk}/"
    assert (submission.method_name, submission.hardware_declared) == ("oracle", "1 CPU, 2 s")
    assert submission.paper_url == "https://example.org/paper"
    page = client.get(response["Location"]).content.decode()
    assert "Queued" in page
    assert f'data-status-url="/api/v1/submissions/{submission.pk}/"' in page
    assert "1 CPU, 2 s" in page


def test_the_page_script_gets_json_with_where_to_follow_the_submission(
    client, competition, participant
):
    client.force_login(participant)
    response = _post(client, competition, factories.perfect_predictions(), json=True)
    assert response.status_code == 202
    body = response.json()
    submission = Submission.objects.get()
    assert body == {
        "id": submission.pk,
        "status": "queued",
        "status_url": f"/api/v1/submissions/{submission.pk}/",
        "page_url": f"/c/{competition.slug}/submissions/{submission.pk}/",
    }


def test_a_form_error_is_shown_next_to_its_field(client, competition, participant):
    client.force_login(participant)
    response = _post(client, competition, b"id,label\n", paper_url="not a url at all")
    assert response.status_code == 400
    assert "Enter a valid URL." in response.content.decode()
    response = _post(client, competition, b"id,label\n", json=True, paper_url="not a url at all")
    assert response.status_code == 400
    assert response.json()["errors"]["paper_url"] == ["Enter a valid URL."]
    assert not Submission.objects.exists()


def test_the_quota_is_a_429_page_saying_when_it_resets(client, organizer, participant):
    competition = factories.make_competition(slug="tight", organizers=[organizer], daily_limit=1)
    client.force_login(participant)
    client.post("/c/tight/join/", {"accept_rules": "on"})
    assert _post(client, competition, factories.perfect_predictions()).status_code == 302

    response = _post(client, competition, factories.perfect_predictions())
    assert response.status_code == 429
    page = response.content.decode()
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    assert "used its 1 submissions for today" in page
    assert f"{tomorrow} 00:00 UTC" in page

    body = _post(client, competition, factories.perfect_predictions(), json=True).json()
    assert body["code"] == "quota_exceeded"
    assert body["resets_at"].startswith(f"{tomorrow}T00:00:00")
    assert Submission.objects.count() == 1


def test_a_closed_phase_a_ban_and_not_having_joined_are_said_plainly(
    client, competition, participant, outsider
):
    client.force_login(outsider)
    response = _post(client, competition, factories.perfect_predictions())
    assert response.status_code == 403
    assert "Join the competition" in response.content.decode()

    client.force_login(participant)
    team_set_banned(team=participant.teams.get(), banned=True, reason="shared accounts")
    response = _post(client, competition, factories.perfect_predictions())
    assert response.status_code == 403
    assert "shared accounts" in response.content.decode()

    competition.phases.update(end_at=timezone.now() - timedelta(minutes=1))
    body = _post(client, competition, factories.perfect_predictions(), json=True).json()
    assert body["code"] == "phase_closed"
    assert not Submission.objects.exists()


def test_a_file_over_the_upload_limit_gets_the_413_page(client, competition, participant, settings):
    settings.HELDOUT_MAX_UPLOAD_BYTES = 1000
    client.force_login(participant)
    response = _post(client, competition, b"id,label\n" + b"id0,0.5\n" * 500)
    assert response.status_code == 413
    assert "File too large" in response.content.decode()
    assert not Submission.objects.exists()


def test_the_submission_page_lists_every_problem_with_its_line(client, competition, participant):
    problems: list[dict] = [
        {
            "code": "duplicate_id",
            "message": 'Line 3: id "id0" appears again.',
            "line": 3,
            "column": "id",
        },
        {"code": "missing_id", "message": "8 test ids are missing.", "line": None, "column": "id"},
    ]
    submission = failed_invalid(participant.teams.get(), problems)
    Submission.objects.filter(pk=submission.pk).update(total_problems=130)
    client.force_login(participant)
    page = client.get(f"/c/{competition.slug}/submissions/{submission.pk}/").content.decode()
    rows = re.findall(r"<tr><td class=\"num\">([^<]+)</td>.*?<td>([^<]+)</td></tr>", page)
    assert rows == [
        ("3", "Line 3: id &quot;id0&quot; appears again."),
        ("—", "8 test ids are missing."),
    ]
    assert "130 problems found in bad.csv" in page
    assert "… and 128 more" in page


def test_a_scored_submission_shows_its_scores_but_not_the_hidden_private_ones(
    client, competition, participant
):
    submission = scored(participant.teams.get(), 0.75, 0.25)
    client.force_login(participant)
    page = client.get(f"/c/{competition.slug}/submissions/{submission.pk}/").content.decode()
    assert "0.75000" in page
    assert "0.25000" not in page
    assert "revealed when the competition is finalized" in page


def test_a_team_selects_and_unselects_a_submission_for_the_private_board(
    client, competition, participant
):
    submission = scored(participant.teams.get(), 0.75)
    client.force_login(participant)
    url = f"/c/{competition.slug}/submissions/{submission.pk}/select/"
    client.post(url, {"selected": "1"})
    assert Submission.objects.get(pk=submission.pk).is_selected
    client.post(url, {"selected": "0"})
    assert not Submission.objects.get(pk=submission.pk).is_selected

    Competition.objects.filter(pk=competition.pk).update(finalized_at=timezone.now())
    response = client.post(url, {"selected": "1"}, follow=True)
    assert "selections can no longer change" in response.content.decode()
    assert not Submission.objects.get(pk=submission.pk).is_selected


def _fill(team, count: int) -> None:
    for i in range(count):
        scored(team, 0.5 + i / 1000, minutes_ago=count - i)


@pytest.mark.parametrize("count", [3, 30])
def test_my_submissions_runs_the_same_queries_whatever_their_number(
    client, competition, participant, django_assert_num_queries, count
):
    _fill(participant.teams.get(), count)
    client.force_login(participant)
    # session, user, competition, membership, organizer?, task, count, page, scores,
    # the plot's leader and scores, the team's submitters on the page (select_related: 0),
    # the header bell's unread count
    with django_assert_num_queries(12):
        response = client.get(f"/c/{competition.slug}/submissions/")
    assert response.status_code == 200
    assert response.content.decode().count('class="badge scored"') == min(count, 25)


@pytest.mark.parametrize("count", [3, 30])
def test_the_organizers_submissions_page_runs_the_same_queries_whatever_their_number(
    client, competition, organizer, django_assert_num_queries, count
):
    _fill(competition.teams.first(), count)
    client.force_login(organizer)
    # session, user, competition, organizer check (x2: access, tabs), membership, count,
    # page, task, scores, the competition's latest background jobs, the bell's unread count
    with django_assert_num_queries(12):
        response = client.get(f"/c/{competition.slug}/organize/submissions/")
    assert response.status_code == 200


def test_without_javascript_a_pending_submission_page_refreshes_itself(
    client, competition, participant
):
    client.force_login(participant)
    _post(client, competition, factories.perfect_predictions())
    submission = Submission.objects.get()
    url = f"/c/{competition.slug}/submissions/{submission.pk}/"
    refresh = '<noscript><meta http-equiv="refresh" content="3"></noscript>'
    assert refresh in client.get(url).content.decode()
    Submission.objects.filter(pk=submission.pk).update(status=Submission.Status.FAILED)
    assert refresh not in client.get(url).content.decode()


def test_a_submission_scored_in_process_says_it_had_no_sandbox(
    client, settings, competition, participant
):
    from competitions.services.submissions import submission_create
    from judging.services import submission_score

    settings.HELDOUT_SCORER = "in-process"
    submission = submission_create(
        competition=competition,
        user=participant,
        uploaded_file=factories.upload(factories.perfect_predictions()),
    )
    submission_score(submission_id=submission.pk)
    client.force_login(participant)

    body = client.get(f"/c/{competition.slug}/submissions/{submission.pk}/").content.decode()

    assert "in-process (no sandbox" in body


def test_a_bad_image_archive_on_the_submit_page_lists_every_problem(
    client, competition, participant
):
    from competitions.models import Submission

    competition.phases.update(submission_kind="container")
    client.force_login(participant)

    response = client.post(
        f"/c/{competition.slug}/submit/",
        {"file": factories.upload(b"this is not a tar archive at all" * 10, "image.tar")},
    )

    assert response.status_code == 400
    body = response.content.decode()
    assert "nothing was stored" in body
    assert '<ul class="problems">' in body
    assert not Submission.objects.exists()


def test_the_submit_page_states_the_image_limit_on_a_container_phase(
    client, settings, competition, participant
):
    settings.HELDOUT_MAX_UPLOAD_BYTES = 1000
    settings.HELDOUT_MAX_IMAGE_BYTES = 10_000
    client.force_login(participant)
    assert 'data-max-bytes="1000"' in client.get(f"/c/{competition.slug}/submit/").content.decode()

    competition.phases.update(submission_kind="container")

    assert 'data-max-bytes="10000"' in client.get(f"/c/{competition.slug}/submit/").content.decode()
