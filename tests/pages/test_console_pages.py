"""The organizer console's pages: the overview with its Markdown preview, adding and
deleting phases, people, actions on a selection behind a confirmation, and the log, which
only the competition's organizers see."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from competitions.models import OrganizerAction, Submission
from competitions.services import console
from tests import factories
from tests.pages.builders import scored

pytestmark = pytest.mark.django_db


@pytest.fixture
def orga_client(client, organizer):
    client.force_login(organizer)
    return client


def _overview_post(competition, **changes) -> dict:
    data = {
        "title": competition.title,
        "description": competition.description,
        "rules": competition.rules,
        "prize": competition.prize,
        "visibility": competition.visibility,
        "start_at": "",
        "end_at": "",
        "reason": "",
        "action": "save",
    }
    return data | changes


def test_the_preview_renders_the_markdown_sanitized_and_saves_nothing(orga_client, competition):
    url = f"/c/{competition.slug}/organize/overview/"
    text = "# Welcome\n\nPredict **labels**.<script>alert(1)</script>"
    response = orga_client.post(
        url, _overview_post(competition, description=text, action="preview")
    )
    assert response.status_code == 200
    page = response.content.decode()
    preview = page[page.index('id="preview-description"') :]
    assert "<h1>Welcome</h1>" in preview
    assert "<strong>labels</strong>" in preview
    assert "<script>alert(1)</script>" not in page
    # What was typed stays in the form, to be saved next.
    assert "Predict **labels**" in page
    competition.refresh_from_db()
    assert competition.description == ""
    assert not OrganizerAction.objects.exists()


def test_saving_the_overview_records_who_and_why(orga_client, competition, organizer):
    url = f"/c/{competition.slug}/organize/overview/"
    data = _overview_post(competition, rules="No hand labelling.", reason="clarified")
    response = orga_client.post(url, data)
    assert response.status_code == 302
    competition.refresh_from_db()
    assert competition.rules == "No hand labelling."
    line = OrganizerAction.objects.get()
    assert (line.by, line.reason, line.target) == (organizer, "clarified", "rules")


def test_an_end_before_the_start_is_shown_beside_the_field_with_the_values_kept(
    orga_client, competition
):
    url = f"/c/{competition.slug}/organize/overview/"
    data = _overview_post(
        competition, title="Renamed", start_at="2027-01-10T00:00", end_at="2027-01-01T00:00"
    )
    response = orga_client.post(url, data)
    assert response.status_code == 400
    form = response.context["form"]
    assert form.errors["end_at"] == ["A competition must end after it starts."]
    page = response.content.decode()
    assert 'value="Renamed"' in page
    assert 'value="2027-01-01T00:00"' in page
    competition.refresh_from_db()
    assert competition.title == "Competition tiny"


def test_a_phase_is_added_in_date_order_and_an_empty_one_deleted(orga_client, competition):
    main = competition.phases.get()
    url = f"/c/{competition.slug}/organize/phases/"
    start = (main.end_at + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    data = {
        "which": "new",
        "new-name": "Final",
        "new-start_at": start,
        "new-end_at": "",
        "new-daily_limit": "2",
        "new-total_limit": "",
    }
    assert orga_client.post(url, data).status_code == 302
    assert list(competition.phases.values_list("name", flat=True)) == ["Main", "Final"]
    page = orga_client.get(url).content.decode()
    assert page.index("1. Phase “Main”") < page.index("2. Phase “Final”")
    final = competition.phases.get(name="Final")
    response = orga_client.post(f"/c/{competition.slug}/organize/phases/{final.pk}/delete/")
    assert response.status_code == 302
    assert list(competition.phases.values_list("name", flat=True)) == ["Main"]


def test_an_invalid_phase_end_is_shown_beside_the_field_with_what_was_typed(
    orga_client, competition
):
    main = competition.phases.get()
    url = f"/c/{competition.slug}/organize/phases/"
    data = {
        "which": str(main.pk),
        f"p{main.pk}-name": "Main stage",
        f"p{main.pk}-start_at": "2027-03-10T00:00",
        f"p{main.pk}-end_at": "2027-03-01T00:00",
        f"p{main.pk}-daily_limit": "4",
        f"p{main.pk}-total_limit": "",
    }
    response = orga_client.post(url, data)
    assert response.status_code == 400
    forms = dict(response.context["phase_forms"])
    assert forms[main]["end_at"].errors == ["A phase must end after it starts."]
    page = response.content.decode()
    assert 'value="Main stage"' in page
    assert 'value="2027-03-01T00:00"' in page
    main.refresh_from_db()
    assert main.name == "Main"


def test_a_phase_with_submissions_offers_no_delete_and_refuses_one(
    orga_client, competition, participant
):
    main = competition.phases.get()
    scored(participant.teams.get(), 0.5)
    page = orga_client.get(f"/c/{competition.slug}/organize/phases/").content.decode()
    assert "Delete the phase" not in page
    orga_client.post(f"/c/{competition.slug}/organize/phases/{main.pk}/delete/")
    assert competition.phases.count() == 1


def test_an_unknown_organizer_is_refused_beside_the_field_with_the_name_kept(
    orga_client, competition
):
    url = f"/c/{competition.slug}/organize/people/"
    response = orga_client.post(
        url, {"which": "organizer-add", "organizer-add-username": "nobody-here"}
    )
    assert response.status_code == 400
    form = response.context["organizer_form"]
    assert form.errors["username"] == ['No user is named "nobody-here".']
    assert 'value="nobody-here"' in response.content.decode()


def test_organizers_and_invitees_are_added_and_removed_on_the_people_page(
    orga_client, competition, organizer, outsider
):
    url = f"/c/{competition.slug}/organize/people/"
    orga_client.post(url, {"which": "invitee-add", "invitee-add-username": "charlie"})
    orga_client.post(url, {"which": "organizer-add", "organizer-add-username": "charlie"})
    assert list(competition.invited.all()) == [outsider]
    assert set(competition.organizers.all()) == {organizer, outsider}
    orga_client.post(url, {"which": "invitee-remove", "user": outsider.pk})
    orga_client.post(url, {"which": "organizer-remove", "user": outsider.pk})
    assert not competition.invited.exists()
    assert list(competition.organizers.all()) == [organizer]
    kinds = OrganizerAction.objects.values_list("kind", flat=True)
    assert len(kinds) == 4


def test_a_selection_asks_for_confirmation_stating_the_count_before_acting(
    orga_client, competition, participant
):
    team = participant.teams.get()
    chosen = [scored(team, 0.5 + i / 10) for i in range(3)]
    url = f"/c/{competition.slug}/organize/submissions/bulk/"
    back = f"/c/{competition.slug}/organize/submissions/?q=alice&page=1"
    data = {"action": "disqualify", "ids": [s.pk for s in chosen], "next": back}
    response = orga_client.post(url, data)
    assert response.status_code == 200
    assert "Disqualify 3 submissions?" in response.content.decode()
    assert not Submission.objects.filter(is_disqualified=True).exists()

    response = orga_client.post(url, data | {"confirm": "yes", "reason": ""})
    assert response.status_code == 400
    assert response.context["form"].errors["reason"]
    assert not Submission.objects.filter(is_disqualified=True).exists()

    response = orga_client.post(url, data | {"confirm": "yes", "reason": "leak"})
    assert response.status_code == 302
    assert response["Location"] == back
    assert Submission.objects.filter(is_disqualified=True).count() == 3


def test_a_selection_never_reaches_another_competitions_submissions(
    orga_client, competition, other_competition
):
    theirs = scored(factories.team_for(other_competition, "zed"), 0.5)
    url = f"/c/{competition.slug}/organize/submissions/bulk/"
    data = {"action": "rescore", "ids": [theirs.pk], "confirm": "yes"}
    response = orga_client.post(url, data)
    assert response.status_code == 302
    theirs.refresh_from_db()
    assert theirs.status == Submission.Status.SCORED


def test_the_log_shows_who_what_when_and_why_to_organizers(
    orga_client, competition, organizer, participant
):
    submission = scored(participant.teams.get(), 0.5)
    console.submissions_disqualify_selected(
        competition=competition, by=organizer, submission_ids=[submission.pk], reason="leak"
    )
    page = orga_client.get(f"/c/{competition.slug}/organize/log/").content.decode()
    row = page[page.index("<tbody>") :]
    assert "orga" in row
    assert "Disqualified a submission" in row
    assert "leak" in row
    assert f"submission #{submission.pk}" in row
    assert timezone.now().strftime("%Y-%m-%d") in row


@pytest.mark.parametrize("who", ["outsider", "other_participant", "other_organizer"])
def test_the_log_is_refused_to_everyone_but_the_competitions_organizers(
    client, competition, other_competition, who, request
):
    console.competition_invitee_add(
        competition=competition, by=competition.organizers.get(), username="bob"
    )
    client.force_login(request.getfixturevalue(who))
    assert client.get(f"/c/{competition.slug}/organize/log/").status_code == 403


@pytest.mark.parametrize("who", ["outsider", "other_organizer"])
def test_an_invite_only_competitions_console_is_not_found_for_outsiders(
    client, organizer, other_competition, who, request
):
    hidden = factories.make_competition(
        slug="hidden", organizers=[organizer], visibility="invite_only"
    )
    client.force_login(request.getfixturevalue(who))
    for page in ("log", "overview", "people", "phases"):
        assert client.get(f"/c/{hidden.slug}/organize/{page}/").status_code == 404


def test_the_admin_is_branded_heldout_administration(admin_client):
    page = admin_client.get("/admin/").content.decode()
    assert "Heldout administration" in page
    assert "Django administration" not in page
