"""One rule book (docs/site.md): each rule refused alike, with the same sentence, through
the API, the pages and the admin (its change forms and inlines posted as a staff organizer)."""

from __future__ import annotations

import re
from datetime import timedelta
from html import escape
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from competitions import rules
from competitions.admin import organizers_group_sync
from competitions.errors import ApplicationError
from competitions.models import Phase, Submission, Team
from competitions.services import teams as teams_service
from competitions.services.lifecycle import competition_finalize
from competitions.services.organize import (
    LIMITS_FROZEN,
    competition_limits_update,
    phase_update,
)
from competitions.services.teams import TEAMS_FROZEN, competition_join, team_set_banned
from tests import factories
from tests.competitions.admin_forms import admin_form_post
from tests.pages.builders import scored

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(organizer) -> Client:
    organizer.groups.add(organizers_group_sync())
    client = Client()
    client.force_login(organizer)
    return client


def _page(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _shows(response, sentence: str) -> bool:
    return escape(sentence) in response.content.decode()


def _change_url(obj) -> str:
    return reverse(f"admin:competitions_{obj._meta.model_name}_change", args=[obj.pk])


# --- Disqualify: a reason is required ---------------------------------------------------


@pytest.mark.parametrize("reason", ["", "   "])
def test_disqualifying_without_a_reason_is_refused_alike_by_api_page_and_admin(
    api, organizer, admin_client, competition, participant, reason
):
    submission = scored(participant.teams.get(), 0.9)
    sentence = rules.DISQUALIFY_REASON_REQUIRED

    response = api(organizer).post(
        f"/api/v1/submissions/{submission.pk}/disqualify/", {"reason": reason}
    )
    assert response.status_code == 400
    assert response.json()["detail"] == sentence

    page = admin_client.post(
        f"/c/{competition.slug}/organize/submissions/{submission.pk}/disqualify/",
        {"disqualified": "1", "reason": reason},
        follow=True,
    )
    assert _shows(page, sentence)

    admin = admin_client.post(
        reverse("admin:competitions_submission_changelist"),
        {"action": "disqualify", "_selected_action": [submission.pk], "reason": reason},
        follow=True,
    )
    assert _shows(admin, sentence)
    submission.refresh_from_db()
    assert (submission.is_disqualified, submission.disqualified_reason) == (False, "")


def test_the_api_disqualifies_with_a_reason_and_requalifies_without_one(
    api, organizer, competition, participant
):
    submission = scored(participant.teams.get(), 0.9)
    url = f"/api/v1/submissions/{submission.pk}/disqualify/"
    assert api(organizer).post(url, {"reason": " leaked labels "}).status_code == 200
    submission.refresh_from_db()
    assert (submission.is_disqualified, submission.disqualified_reason) == (True, "leaked labels")

    assert api(organizer).post(url, {"disqualified": False}).status_code == 200
    submission.refresh_from_db()
    assert (submission.is_disqualified, submission.disqualified_reason) == (False, "")


# --- Teams: names unique regardless of case; banned teams can't change --------------------


def test_a_name_differing_only_in_case_is_refused_by_the_page_and_the_admin(
    admin_client, competition, participant, other_participant
):
    bob_team = other_participant.teams.get()
    sentence = rules.team_name_taken("ALICE")

    page = _page(other_participant).post(
        f"/c/{competition.slug}/team/name/", {"name": "ALICE"}, follow=True
    )
    assert _shows(page, sentence)

    admin = admin_form_post(admin_client, _change_url(bob_team), "team_form", {"name": "ALICE"})
    assert admin.status_code == 200  # the form again, with its error
    assert _shows(admin, sentence)
    assert Team.objects.get(pk=bob_team.pk).name == "bob"


def test_the_admin_renames_a_team_through_the_name_rules(
    admin_client, competition, other_participant
):
    bob_team = other_participant.teams.get()
    response = admin_form_post(
        admin_client, _change_url(bob_team), "team_form", {"name": "  The   Bobs "}
    )
    assert response.status_code == 302
    assert Team.objects.get(pk=bob_team.pk).name == "The Bobs"


def test_joining_as_a_user_whose_name_differs_only_in_case_gets_a_free_team_name(competition):
    user = factories.make_user("ALICE")
    membership = competition_join(competition=competition, user=user, accept_rules=True)
    assert membership.team.name == "ALICE-2"


def test_a_join_that_loses_the_race_for_its_team_name_takes_the_next_free_one(
    monkeypatch, competition
):
    real = teams_service._free_team_name
    calls = []

    def stale(competition, wanted):  # as if "alice" was free when read, then taken
        calls.append(wanted)
        return "Alice" if len(calls) == 1 else real(competition, wanted)

    monkeypatch.setattr(teams_service, "_free_team_name", stale)
    user = factories.make_user("ALICE")
    membership = competition_join(competition=competition, user=user, accept_rules=True)
    assert (membership.team.name, len(calls)) == ("ALICE-2", 2)


def test_a_banned_team_can_neither_rename_itself_nor_change_its_members(
    competition, participant, other_participant
):
    bob_team = other_participant.teams.get()
    team_set_banned(team=bob_team, banned=True, reason="shared accounts")
    sentence = rules.team_banned("bob")
    bob = _page(other_participant)

    page = bob.post(f"/c/{competition.slug}/team/name/", {"name": "Fresh start"}, follow=True)
    assert _shows(page, sentence)
    page = bob.post(f"/c/{competition.slug}/team/invite/", {"username": "alice"}, follow=True)
    assert _shows(page, sentence)
    assert Team.objects.get(pk=bob_team.pk).name == "bob"
    assert not bob_team.invitations.exists()


def test_an_organizer_may_rename_a_banned_team_in_the_admin(
    admin_client, competition, other_participant
):
    bob_team = other_participant.teams.get()
    team_set_banned(team=bob_team, banned=True, reason="offensive name")
    response = admin_form_post(admin_client, _change_url(bob_team), "team_form", {"name": "t-2"})
    assert response.status_code == 302
    assert Team.objects.get(pk=bob_team.pk).name == "t-2"


def test_after_finalize_the_admin_refuses_a_rename_like_the_page(
    admin_client, organizer, competition, other_participant
):
    bob_team = other_participant.teams.get()
    competition_finalize(competition=competition, by=organizer)

    page = _page(other_participant).post(
        f"/c/{competition.slug}/team/name/", {"name": "Winners"}, follow=True
    )
    assert _shows(page, TEAMS_FROZEN)
    admin = admin_form_post(admin_client, _change_url(bob_team), "team_form", {"name": "Winners"})
    assert _shows(admin, TEAMS_FROZEN)
    assert Team.objects.get(pk=bob_team.pk).name == "bob"


# --- Phases: end after start, limits >= 1, no overlap -------------------------------------


def _phase_page_data(phase: Phase, **changes: str) -> dict[str, str]:
    values = {
        "name": phase.name,
        "start_at": phase.start_at.strftime("%Y-%m-%dT%H:%M"),
        "end_at": phase.end_at.strftime("%Y-%m-%dT%H:%M") if phase.end_at else "",
        "daily_limit": str(phase.daily_limit),
        "total_limit": "",
        **changes,
    }
    return {"which": str(phase.pk), **{f"p{phase.pk}-{k}": v for k, v in values.items()}}


def _inline_changes(row: int, **values) -> dict[str, str]:
    """Admin inline fields of the competition's phase row `row` (dates split in two)."""
    changes = {}
    for field, value in values.items():
        if field in ("start_at", "end_at"):
            changes[f"phases-{row}-{field}_0"] = value.strftime("%Y-%m-%d") if value else ""
            changes[f"phases-{row}-{field}_1"] = value.strftime("%H:%M:%S") if value else ""
        else:
            changes[f"phases-{row}-{field}"] = str(value)
    return changes


@pytest.mark.parametrize(
    ("change", "sentence"),
    [
        ({"end_days": -2}, rules.PHASE_END_AFTER_START),
        ({"daily_limit": 0}, rules.LIMIT_AT_LEAST_ONE),
        ({"total_limit": 0}, rules.LIMIT_AT_LEAST_ONE),
    ],
)
def test_a_phase_breaking_its_own_rules_is_refused_by_page_admin_and_service(
    admin_client, competition, change, sentence
):
    phase = competition.phases.get()
    before = (phase.end_at, phase.daily_limit, phase.total_limit)
    end_at = phase.start_at + timedelta(days=change.get("end_days", 40))
    values = {k: v for k, v in change.items() if k != "end_days"}

    page = admin_client.post(
        f"/c/{competition.slug}/organize/phases/",
        _phase_page_data(
            phase,
            end_at=end_at.strftime("%Y-%m-%dT%H:%M"),
            **{k: str(v) for k, v in values.items()},
        ),
    )
    assert page.status_code == 400
    assert _shows(page, sentence)

    admin = admin_form_post(
        admin_client,
        _change_url(competition),
        "competition_form",
        _inline_changes(0, end_at=end_at, **values),
    )
    assert admin.status_code == 200
    assert _shows(admin, sentence)

    with pytest.raises(ApplicationError, match=sentence):
        phase_update(
            phase=Phase.objects.get(pk=phase.pk),
            name="Main",
            start_at=phase.start_at,
            end_at=end_at,
            daily_limit=values.get("daily_limit", 5),
            total_limit=values.get("total_limit"),
            late_submissions_scored=False,
        )
    phase.refresh_from_db()
    assert (phase.end_at, phase.daily_limit, phase.total_limit) == before


def test_the_admin_inline_refuses_a_new_phase_overlapping_another(admin_client, competition):
    main = competition.phases.get()
    changes = {
        "phases-TOTAL_FORMS": "2",
        "phases-1-id": "",
        "phases-1-competition": str(competition.pk),
        **_inline_changes(
            1, name="Overlap", start_at=main.start_at + timedelta(days=2), end_at=None,
            daily_limit=3, total_limit="",
        ),
    }  # fmt: skip
    response = admin_form_post(admin_client, _change_url(competition), "competition_form", changes)

    assert response.status_code == 200
    assert _shows(response, rules.phase_overlap("Main"))
    assert competition.phases.count() == 1


def test_the_admin_inline_checks_overlap_across_rows_saved_together(admin_client, competition):
    """Two phases swapping places in one save: each row overlaps the other's stored dates,
    but not its new ones, so the save passes; the inline's rows among themselves decide."""
    main = competition.phases.get()
    start = main.start_at
    later = Phase.objects.create(
        competition=competition,
        name="Later",
        start_at=main.end_at,
        end_at=main.end_at + timedelta(days=5),
    )
    swapped = {
        **_inline_changes(
            0, start_at=start + timedelta(days=60), end_at=start + timedelta(days=70)
        ),
        **_inline_changes(1, start_at=start, end_at=start + timedelta(days=60)),
    }
    response = admin_form_post(admin_client, _change_url(competition), "competition_form", swapped)
    assert response.status_code == 302, _errors(response)
    later.refresh_from_db()
    assert later.start_at == start.replace(microsecond=0)  # the admin edits to the second

    # Rows now run Later, Main: moving Main into Later's period is refused.
    clash = _inline_changes(
        1, start_at=start + timedelta(days=30), end_at=start + timedelta(days=80)
    )
    response = admin_form_post(admin_client, _change_url(competition), "competition_form", clash)
    assert response.status_code == 200
    assert _shows(response, rules.phase_overlap("Later"))
    main.refresh_from_db()
    assert main.start_at == (start + timedelta(days=60)).replace(microsecond=0)


def test_phase_update_refuses_an_overlap_with_the_same_sentence(competition):
    main = competition.phases.get()
    second = Phase.objects.create(
        competition=competition, name="Second", start_at=main.end_at + timedelta(days=1)
    )
    with pytest.raises(ApplicationError, match=rules.phase_overlap("Main")):
        phase_update(
            phase=second, name="Second", start_at=main.start_at, end_at=None,
            daily_limit=5, total_limit=None, late_submissions_scored=False,
        )  # fmt: skip


# --- Competition limits >= 1 ------------------------------------------------------------


@pytest.mark.parametrize("field", ["selection_limit", "max_team_size"])
def test_competition_limits_below_one_are_refused_by_page_admin_and_service(
    admin_client, competition, field
):
    limits = {"selection_limit": "2", "max_team_size": "5", field: "0"}
    page = admin_client.post(
        f"/c/{competition.slug}/organize/phases/", {"which": "limits", **limits}
    )
    assert page.status_code == 400
    assert _shows(page, rules.LIMIT_AT_LEAST_ONE)

    admin = admin_form_post(
        admin_client, _change_url(competition), "competition_form", {field: "0"}
    )
    assert admin.status_code == 200
    assert _shows(admin, rules.LIMIT_AT_LEAST_ONE)

    numbers: dict[str, Any] = {k: int(v) for k, v in limits.items()}
    with pytest.raises(ApplicationError, match=rules.LIMIT_AT_LEAST_ONE):
        competition_limits_update(competition=competition, **numbers)
    competition.refresh_from_db()
    assert (competition.selection_limit, competition.max_team_size) == (2, 5)


def test_after_finalize_the_admin_refuses_new_limits_like_the_page(
    admin_client, organizer, competition
):
    competition_finalize(competition=competition, by=organizer)
    page = admin_client.post(
        f"/c/{competition.slug}/organize/phases/",
        {"which": "limits", "selection_limit": "3", "max_team_size": "5"},
        follow=True,
    )
    assert _shows(page, LIMITS_FROZEN)
    admin = admin_form_post(
        admin_client, _change_url(competition), "competition_form", {"selection_limit": "3"}
    )
    assert _shows(admin, LIMITS_FROZEN)
    competition.refresh_from_db()
    assert competition.selection_limit == 2


# --- The quota: the submit page shows the submission rule's own counts ---------------------


def test_the_submit_page_shows_a_used_up_phase_total_as_nothing_left(competition, participant):
    Phase.objects.filter(competition=competition).update(total_limit=1)
    factories.submission_row(participant.teams.get(), created_at=timezone.now()).save()

    page = _page(participant).get(f"/c/{competition.slug}/submit/").content.decode()

    assert '<span id="quota-used">1</span> of 5' in page
    assert '<span id="quota-total-used">1</span> of 1' in page
    assert 'id="quota-none-left">No submissions are left.' in page


def _errors(response) -> list[str]:
    return re.findall(
        r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', response.content.decode(), re.S
    )


# --- One file per request ---------------------------------------------------------------


def test_two_file_parts_are_refused_by_the_api_and_the_submit_page(api, competition, participant):
    def files():
        return [factories.upload(factories.perfect_predictions()) for _ in range(2)]

    response = api(participant).post(
        f"/api/v1/competitions/{competition.slug}/submissions/",
        {"file": files()},
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json() == {
        "detail": 'Send one file: the request has two "file" parts.',
        "code": "upload_malformed",
    }

    page = _page(participant).post(f"/c/{competition.slug}/submit/", {"file": files()})
    assert page.status_code == 400
    assert not Submission.objects.exists()
