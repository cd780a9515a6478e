"""Finalize is a freeze (docs/lifecycle.md): from finalize on, nothing a participant or an
organizer does moves the final board until an organizer reopens the competition, with a
reason the board shows. Each refusal is tried through the API and the pages, and the final
board (JSON and CSV bytes, both splits) is compared before and after."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from competitions.errors import ApplicationError, FinalizedError
from competitions.models import (
    Competition,
    CompetitionEvent,
    LeaderboardEntry,
    Membership,
    Phase,
    Score,
    Submission,
    Team,
    TeamInvitation,
)
from competitions.services.lifecycle import competition_finalize, competition_reopen
from competitions.services.teams import team_invite
from competitions.services.versions import task_version_ensure
from judging.services import submission_score
from scoring.scorers import InProcessScorer
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite_too]

T0 = timezone.now() - timedelta(hours=6)
FINAL_UPLOAD = "The competition is finalized: it no longer takes submissions."
FINAL_JOIN = "The competition is finalized: it no longer takes new participants."
FINAL_TEAMS = "The competition is finalized; teams can no longer change."
FINAL_SELECTION = "The competition is finalized; selections can no longer change."
FINAL_RESCORE = (
    "The competition is finalized: its submissions can't be rescored unless an "
    "organizer reopens it."
)
FINAL_DISQUALIFY = (
    "The competition is finalized: disqualifications can't change unless an organizer reopens it."
)
FINAL_BAN = "The competition is finalized: bans can't change unless an organizer reopens it."


def _scored(team: Team, public: float, private: float, minutes: int) -> Submission:
    return factories.scored_submission(
        team,
        {
            "public": {"roc_auc": public, "accuracy": 0.5},
            "private": {"roc_auc": private, "accuracy": 0.5},
        },
        created_at=T0 + timedelta(minutes=minutes),
    )


def _team_of(user, competition) -> Team:
    return user.teams.get(competition=competition)


@pytest.fixture
def board(competition, participant, other_participant):
    """Alice leads the public board, Bob the private one; Alice has a better private
    submission she did not select (selection_limit 2 keeps her two best public ones)."""
    alice = _team_of(participant, competition)
    bob = _team_of(other_participant, competition)
    return {
        "alice_public": _scored(alice, 0.9, 0.5, 1),
        "alice_second": _scored(alice, 0.8, 0.6, 2),
        "alice_private": _scored(alice, 0.7, 0.99, 3),
        "bob": _scored(bob, 0.85, 0.7, 4),
    }


def _snapshot(api, competition) -> list[bytes]:
    """The boards as anyone reads them: JSON and CSV, public and private."""
    url = f"/api/v1/competitions/{competition.slug}/leaderboard/"
    out = []
    for split in ("public", "private"):
        for params in ({"split": split}, {"split": split, "format": "csv"}):
            response = api(None).get(url, params)
            assert response.status_code == 200, response.content
            out.append(response.content)
    return out


def _finalize(api, organizer, competition) -> dict:
    response = api(organizer).post(f"/api/v1/competitions/{competition.slug}/finalize/")
    assert response.status_code == 200, response.content
    return response.json()


def _refused(response, sentence: str, code: str = "finalized") -> None:
    assert response.status_code == 409, response.content
    assert response.json()["code"] == code
    assert response.json()["detail"] == sentence


def _state(competition) -> tuple:
    """Everything a refused action could have changed."""
    return (
        sorted(Submission.objects.values_list("pk", "team_id", "status", "is_selected")),
        sorted(Submission.objects.values_list("pk", "is_disqualified", "queued_at")),
        sorted(Membership.objects.values_list("user_id", "team_id")),
        sorted(Team.objects.values_list("pk", "name", "is_banned")),
        sorted(TeamInvitation.objects.values_list("pk", "accepted_at", "revoked_at")),
        Competition.objects.values_list("finalized_at", "selection_limit").get(pk=competition.pk),
        competition.task.__class__.objects.values_list("version", flat=True).get(
            pk=competition.task.pk
        ),
    )


# --- Refused through the API ----------------------------------------------------------


def test_after_finalize_every_action_that_could_move_the_board_is_refused_by_the_api(
    api, competition, organizer, participant, other_participant, outsider, board
):
    slug = competition.slug
    task_version_ensure(task=competition.task)  # version 1 exists, so activating it is tried
    _finalize(api, organizer, competition)
    before, state = _snapshot(api, competition), _state(competition)

    upload = api(participant).post(
        f"/api/v1/competitions/{slug}/submissions/",
        {"file": factories.upload(factories.perfect_predictions())},
        format="multipart",
    )
    _refused(upload, FINAL_UPLOAD)
    _refused(
        api(outsider).post(f"/api/v1/competitions/{slug}/join/", {"accept_rules": True}),
        FINAL_JOIN,
    )
    _refused(
        api(participant).post(
            f"/api/v1/submissions/{board['alice_private'].pk}/select/", {"selected": True}
        ),
        FINAL_SELECTION,
    )
    _refused(api(organizer).post(f"/api/v1/submissions/{board['bob'].pk}/rescore/"), FINAL_RESCORE)
    _refused(api(organizer).post(f"/api/v1/competitions/{slug}/rescore/"), FINAL_RESCORE)
    _refused(
        api(organizer).post(
            f"/api/v1/submissions/{board['bob'].pk}/disqualify/", {"reason": "late fix"}
        ),
        FINAL_DISQUALIFY,
    )
    _refused(
        api(organizer).post(
            f"/api/v1/competitions/{slug}/teams/{board['bob'].team_id}/ban/", {"reason": "x"}
        ),
        FINAL_BAN,
    )
    activate = api(organizer).post(f"/api/v1/competitions/{slug}/versions/1/activate/")
    _refused(activate, "The competition is finalized; its ranked version can't change.")
    program = factories.upload(b"print('x')", "score.py")
    scorer = api(organizer).post(
        f"/api/v1/competitions/{slug}/scorer/", {"program": program}, format="multipart"
    )
    _refused(scorer, "The competition is finalized; its scorer can't change.")
    adopt = api(organizer).post(f"/api/v1/competitions/{slug}/scorer/adopt/")
    _refused(adopt, "The competition is finalized; its scorer can't change.")
    again = api(organizer).post(f"/api/v1/competitions/{slug}/finalize/")
    _refused(again, "The competition is already finalized.", code="invalid_state")

    assert _snapshot(api, competition) == before
    assert _state(competition) == state
    assert not Membership.objects.filter(user=outsider).exists()


def test_after_finalize_team_changes_are_refused(
    competition, participant, other_participant, outsider, board
):
    alice = _team_of(participant, competition)
    link = team_invite(team=alice, by=participant)
    named = team_invite(team=alice, by=participant, username=outsider.username)
    competition_finalize(competition=competition)
    from competitions.services import teams

    attempts = [
        lambda: teams.team_rename(team=alice, user=participant, name="Winners"),
        lambda: teams.team_invite(team=alice, by=participant, username="bob"),
        lambda: teams.invitation_accept(invitation=link, user=other_participant),
        lambda: teams.invitation_accept(invitation=named, user=outsider, accept_rules=True),
    ]
    for attempt in attempts:
        with pytest.raises(FinalizedError, match="teams can no longer change"):
            attempt()
    assert Team.objects.get(pk=alice.pk).name == "alice"
    assert Membership.objects.filter(team=alice).count() == 1
    assert not Membership.objects.filter(user=outsider).exists()


# --- Refused through the pages ----------------------------------------------------------


def _flashed(response) -> list[str]:
    """The messages the page shows after the redirect (the service's sentence on refusal)."""
    return [str(m) for m in response.context["messages"]]


def test_the_submit_tab_says_the_competition_is_final_and_shows_no_form(
    client, api, competition, organizer, participant, board
):
    _finalize(api, organizer, competition)
    client.force_login(participant)
    url = f"/c/{competition.slug}/submit/"

    page = client.get(url).content.decode()
    posted = client.post(url, {"file": factories.upload(factories.perfect_predictions())})

    assert FINAL_UPLOAD in page
    assert 'id="submit-form"' not in page
    assert posted.status_code == 409
    assert FINAL_UPLOAD in posted.content.decode()
    assert not Submission.objects.filter(created_at__gt=T0 + timedelta(hours=1)).exists()


def test_after_finalize_the_pages_refuse_joins_team_changes_selections_and_organizer_actions(
    client, api, competition, organizer, participant, other_participant, outsider, board
):
    slug = competition.slug
    alice = _team_of(participant, competition)
    link = team_invite(team=alice, by=participant)
    _finalize(api, organizer, competition)
    before, state = _snapshot(api, competition), _state(competition)

    client.force_login(outsider)
    assert FINAL_JOIN in client.get(f"/c/{slug}/rules/").content.decode()
    joined = client.post(f"/c/{slug}/join/", {"accept_rules": "on"}, follow=True)
    assert _flashed(joined) == [FINAL_JOIN]

    client.force_login(participant)
    participant_posts = [
        (f"/c/{slug}/team/name/", {"name": "Winners"}, FINAL_TEAMS),
        (f"/c/{slug}/team/invite/", {"username": "charlie"}, FINAL_TEAMS),
        (f"/c/{slug}/team/leave/", {}, FINAL_TEAMS),
        (
            f"/c/{slug}/submissions/{board['alice_private'].pk}/select/",
            {"selected": "1"},
            FINAL_SELECTION,
        ),
    ]
    team_page = client.get(f"/c/{slug}/team/").content.decode()
    assert FINAL_TEAMS in team_page
    assert f'action="/c/{slug}/team/name/"' not in team_page
    client.force_login(other_participant)
    accepted = client.post(f"/c/{slug}/team/invitations/{link.token}/", {}, follow=True)
    assert _flashed(accepted) == [FINAL_TEAMS]
    client.force_login(organizer)
    organizer_posts = [
        (f"/c/{slug}/organize/rescore/", {"confirm": "yes"}, FINAL_RESCORE),
        (f"/c/{slug}/organize/submissions/{board['bob'].pk}/rescore/", {}, FINAL_RESCORE),
        (
            f"/c/{slug}/organize/submissions/{board['bob'].pk}/disqualify/",
            {"disqualified": "1", "reason": "x"},
            FINAL_DISQUALIFY,
        ),
        (
            f"/c/{slug}/organize/teams/{board['bob'].team_id}/ban/",
            {"banned": "1", "reason": "x"},
            FINAL_BAN,
        ),
    ]
    for user, posts in ((participant, participant_posts), (organizer, organizer_posts)):
        client.force_login(user)
        for url, data, sentence in posts:
            response = client.post(url, data, follow=True)
            assert _flashed(response) == [sentence], url
    # A refused form is shown again with the refusal in it, and what was typed.
    limits = {"which": "limits", "selection_limit": 3, "max_team_size": 5}
    refused = client.post(f"/c/{slug}/organize/phases/", limits)
    assert refused.status_code == 400
    assert refused.context["limits_form"].non_field_errors() == [
        "The competition is finalized: its limits can't change unless an organizer reopens it."
    ]

    assert _snapshot(api, competition) == before
    assert _state(competition) == state


# --- Reopen -----------------------------------------------------------------------------


def test_reopening_needs_a_reason_and_is_recorded_shown_and_lifts_the_freeze(
    client, api, competition, organizer, participant, board
):
    slug = competition.slug
    _finalize(api, organizer, competition)
    url = f"/api/v1/competitions/{slug}/reopen/"

    blank = api(organizer).post(url, {"reason": "   "})
    with pytest.raises(ApplicationError, match="Say why"):
        competition_reopen(competition=competition, by=organizer, reason=" \n ")
    competition.refresh_from_db()
    assert blank.status_code == 400
    assert competition.is_finalized

    response = api(organizer).post(url, {"reason": "A label error in the private split"})

    assert response.status_code == 200, response.content
    assert response.json()["finalized_at"] is None
    assert response.json()["reopen_reason"] == "A label error in the private split"
    event = CompetitionEvent.objects.filter(competition=competition).latest("at", "id")
    assert (event.kind, event.by, event.reason) == (
        "reopened",
        organizer,
        "A label error in the private split",
    )
    assert CompetitionEvent.objects.filter(competition=competition).count() == 2
    board_json = api(organizer).get(f"/api/v1/competitions/{slug}/leaderboard/").json()
    assert board_json["finalized_at"] is None
    assert board_json["reopened"]["reason"] == "A label error in the private split"
    detail = api(None).get(f"/api/v1/competitions/{slug}/").json()
    assert detail["reopened"]["reason"] == "A label error in the private split"
    assert detail["finalized_at"] is None
    assert (
        "A label error in the private split"
        in client.get(f"/c/{slug}/leaderboard/").content.decode()
    )
    # The freeze is lifted: a selection and a rescore go through again.
    selected = api(participant).post(
        f"/api/v1/submissions/{board['alice_private'].pk}/select/", {"selected": True}
    )
    assert selected.status_code == 200
    assert api(organizer).post(f"/api/v1/submissions/{board['bob'].pk}/rescore/").status_code == 202
    # Finalized again, the board says so and still tells of the reopen.
    _finalize(api, organizer, competition)
    page = client.get(f"/c/{slug}/leaderboard/?split=private").content.decode()
    assert "this board no longer changes" in page
    assert "A label error in the private split" in page


def test_reopening_from_the_organizer_page_needs_a_reason(
    client, api, competition, organizer, board
):
    slug = competition.slug
    _finalize(api, organizer, competition)
    client.force_login(organizer)
    assert 'id="reopen-form"' in client.get(f"/c/{slug}/organize/").content.decode()

    refused = client.post(f"/c/{slug}/organize/reopen/", {"reason": ""}, follow=True)
    competition.refresh_from_db()
    assert "Say why the competition is reopened" in refused.content.decode()
    assert competition.is_finalized

    done = client.post(f"/c/{slug}/organize/reopen/", {"reason": "Wrong metric"}, follow=True)
    competition.refresh_from_db()
    assert "The competition is reopened" in done.content.decode()
    history = client.get(f"/c/{slug}/organize/").content.decode()
    assert "reopened by orga: “Wrong metric”" in history
    assert "finalized by orga, ending Main" in history
    assert not competition.is_finalized
    assert competition.reopen_reason == "Wrong metric"


def test_reopening_a_competition_that_is_not_final_is_refused(api, competition, organizer):
    response = api(organizer).post(
        f"/api/v1/competitions/{competition.slug}/reopen/", {"reason": "why not"}
    )
    assert response.status_code == 409
    assert not CompetitionEvent.objects.exists()


@pytest.mark.parametrize("persona", ["outsider", "other_participant", "other_organizer"])
def test_only_the_competitions_organizers_can_reopen(
    request, client, api, competition, organizer, other_competition, board, persona
):
    _finalize(api, organizer, competition)
    user = request.getfixturevalue(persona)
    slug = competition.slug

    via_api = api(user).post(f"/api/v1/competitions/{slug}/reopen/", {"reason": "mine now"})
    client.force_login(user)
    via_page = client.post(f"/c/{slug}/organize/reopen/", {"reason": "mine now"})
    anonymous = api(None).post(f"/api/v1/competitions/{slug}/reopen/", {"reason": "x"})

    assert via_api.status_code in (403, 404)
    assert via_page.status_code in (403, 404)
    assert anonymous.status_code in (401, 403)
    competition.refresh_from_db()
    assert competition.is_finalized
    assert competition.reopen_reason == ""
    assert list(CompetitionEvent.objects.values_list("kind", flat=True)) == ["finalized"]


# --- Finalize ends open phases ----------------------------------------------------------


def test_finalizing_ends_the_open_phase_in_the_same_transaction_and_says_so(
    client, api, competition, organizer, board
):
    main = competition.phases.get()
    earlier = Phase.objects.create(
        competition=competition,
        name="Warm-up",
        start_at=T0 - timedelta(days=9),
        end_at=T0 - timedelta(days=5),
    )

    body = _finalize(api, organizer, competition)

    competition.refresh_from_db()
    main.refresh_from_db()
    earlier.refresh_from_db()
    assert body["ended_phases"] == ["Main"]
    assert main.end_at == competition.finalized_at
    assert earlier.end_at == T0 - timedelta(days=5)
    event = CompetitionEvent.objects.get(competition=competition)
    assert (event.kind, event.by, event.ended_phases, event.at) == (
        "finalized",
        organizer,
        ["Main"],
        competition.finalized_at,
    )


def test_the_finalize_page_names_the_phase_it_ended(client, competition, organizer, board):
    client.force_login(organizer)
    response = client.post(
        f"/c/{competition.slug}/organize/finalize/", {"confirm": "yes"}, follow=True
    )
    assert "The phase “Main” was still open; it ended now." in response.content.decode()


def test_a_refused_finalize_leaves_the_phases_open(api, competition, organizer, board):
    main = competition.phases.get()
    end_at = main.end_at
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            "competitions.services.lifecycle.replications_missing", lambda competition: [41]
        )
        response = api(organizer).post(f"/api/v1/competitions/{competition.slug}/finalize/")
    main.refresh_from_db()
    assert response.status_code == 409
    assert main.end_at == end_at
    assert not CompetitionEvent.objects.exists()


# --- Scores that arrive after finalize; late submissions ----------------------------------


def test_a_submission_accepted_before_finalize_is_scored_after_it_without_moving_the_board(
    api, competition, organizer, participant, board
):
    submission = (
        api(participant)
        .post(
            f"/api/v1/competitions/{competition.slug}/submissions/",
            {"file": factories.upload(factories.perfect_predictions())},
            format="multipart",
        )
        .json()
    )
    _finalize(api, organizer, competition)
    before = _snapshot(api, competition)

    assert submission_score(submission_id=submission["id"], scorer=InProcessScorer())

    detail = api(participant).get(f"/api/v1/submissions/{submission['id']}/").json()
    assert detail["status"] == "scored"
    assert detail["scores"]["private"]["roc_auc"] == 1.0
    assert _snapshot(api, competition) == before
    # Reopened, the board takes the score in.
    competition_reopen(competition=competition, by=organizer, reason="count the last run")
    entry = LeaderboardEntry.objects.get(
        competition=competition, split="public", team__name="alice"
    )
    assert entry.submission_id == submission["id"]


@pytest.fixture
def ended_with_late_scoring(competition):
    Phase.objects.filter(competition=competition).update(
        end_at=timezone.now() - timedelta(minutes=1), late_submissions_scored=True
    )
    return competition


def test_late_submissions_are_scored_for_the_team_only_and_labelled_late(
    client, api, ended_with_late_scoring, organizer, participant, other_participant, board
):
    competition = ended_with_late_scoring
    url = f"/api/v1/competitions/{competition.slug}/submissions/"
    before = [
        api(organizer)
        .get(f"/api/v1/competitions/{competition.slug}/leaderboard/", {"split": s})
        .json()["results"]
        for s in ("public", "private")
    ]

    response = api(participant).post(
        url, {"file": factories.upload(factories.perfect_predictions())}, format="multipart"
    )
    assert response.status_code == 202, response.content
    late_id = response.json()["id"]
    assert submission_score(submission_id=late_id, scorer=InProcessScorer())

    mine = {s["id"]: s for s in api(participant).get(url).json()["results"]}
    assert mine[late_id]["is_late"] is True
    assert mine[late_id]["status"] == "scored"
    assert mine[late_id]["scores"]["public"]["roc_auc"] == 1.0
    assert late_id not in {s["id"] for s in api(other_participant).get(url).json()["results"]}
    client.force_login(participant)
    page = client.get(f"/c/{competition.slug}/submissions/").content.decode()
    assert '<span class="muted">late</span>' in page
    after = [
        api(organizer)
        .get(f"/api/v1/competitions/{competition.slug}/leaderboard/", {"split": s})
        .json()["results"]
        for s in ("public", "private")
    ]
    assert after == before
    assert not LeaderboardEntry.objects.filter(submission_id=late_id).exists()
    assert Score.objects.filter(submission_id=late_id).exists()


def test_after_finalize_late_submissions_are_refused_too(
    api, ended_with_late_scoring, organizer, participant, board
):
    competition = ended_with_late_scoring
    _finalize(api, organizer, competition)
    response = api(participant).post(
        f"/api/v1/competitions/{competition.slug}/submissions/",
        {"file": factories.upload(factories.perfect_predictions())},
        format="multipart",
    )
    _refused(response, FINAL_UPLOAD)


# --- The freeze's lock --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_finalize_waits_for_an_action_in_flight_and_later_actions_see_it(
    competition, organizer, participant
):
    """An action holding the freeze check's share lock delays finalize until it commits, so
    no write lands on a board after finalize revealed it."""
    import threading

    from django.db import connection, transaction

    from competitions.services.freeze import competition_require_not_final

    finished = threading.Event()

    def finalize() -> None:
        try:
            competition_finalize(competition=Competition.objects.get(pk=competition.pk))
            finished.set()
        finally:
            connection.close()

    with transaction.atomic():
        competition_require_not_final(competition_id=competition.pk, refusal="final")
        thread = threading.Thread(target=finalize)
        thread.start()
        assert not finished.wait(timeout=1.5)  # blocked on the action's lock
        in_flight_saw = Competition.objects.get(pk=competition.pk).finalized_at
    thread.join(timeout=10)

    assert finished.is_set()
    assert in_flight_saw is None
    with pytest.raises(FinalizedError, match="final"):
        competition_require_not_final(competition_id=competition.pk, refusal="final")


def test_the_admin_shows_the_lifecycle_events_read_only(client, api, competition, organizer):
    from django.contrib.auth.models import User

    _finalize(api, organizer, competition)
    competition_reopen(competition=competition, by=organizer, reason="Fix the split")
    admin = User.objects.create_superuser("root", "root@example.org", "pw")
    client.force_login(admin)

    page = client.get(f"/admin/competitions/competition/{competition.pk}/change/")

    text = page.content.decode()
    assert page.status_code == 200
    assert "Fix the split" in text
    assert 'name="reopen_reason"' not in text  # shown, not editable
    assert 'name="events-0-reason"' not in text
