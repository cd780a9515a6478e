"""Who may call what: each endpoint tried by every persona."""

import pytest

from competitions.models import Submission
from tests import factories
from tests.conftest import persona_user

pytestmark = pytest.mark.django_db


PERSONAS = ["anonymous", "outsider", "other_participant", "other_organizer"]


@pytest.mark.parametrize("persona", PERSONAS)
def test_only_the_team_and_organizers_can_read_a_submission(request, api, submission, persona):
    user = persona_user(request, persona)
    for url in (
        f"/api/v1/submissions/{submission.pk}/",
        f"/api/v1/submissions/{submission.pk}/file/",
    ):
        response = api(user).get(url)
        assert response.status_code in (401, 404), (persona, url, response.status_code)


def test_the_team_and_the_organizer_can_read_a_submission(api, submission, participant, organizer):
    for user in (participant, organizer):
        response = api(user).get(f"/api/v1/submissions/{submission.pk}/")
        assert response.status_code == 200
        assert response.json()["sha256"] == submission.sha256
        file_response = api(user).get(f"/api/v1/submissions/{submission.pk}/file/")
        assert b"".join(file_response.streaming_content) == factories.perfect_predictions()


@pytest.mark.parametrize(
    "persona", ["anonymous", "outsider", "participant", "other_participant", "other_organizer"]
)
def test_nobody_but_organizers_can_download_the_ground_truth(request, api, competition, persona):
    user = persona_user(request, persona)
    response = api(user).get(f"/api/v1/competitions/{competition.slug}/ground-truth/")
    assert response.status_code == 404


def test_the_organizer_can_download_the_ground_truth(api, competition, organizer):
    response = api(organizer).get(f"/api/v1/competitions/{competition.slug}/ground-truth/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content).decode() == factories.truth_csv()


def test_the_ground_truth_is_not_reachable_through_the_public_file_url(
    api, competition, participant
):
    task = competition.task
    names = {
        task.ground_truth.name,
        task.ground_truth.name.split("/")[-1],
        "truth.csv",
        "../truth.csv",
    }
    for name in names:
        response = api(participant).get(f"/api/v1/competitions/{competition.slug}/files/{name}")
        assert response.status_code == 404, name


def test_public_files_download_for_anyone_who_can_see_the_competition(api, competition):
    response = api(None).get(f"/api/v1/competitions/{competition.slug}/files/sample_submission.csv")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == factories.predictions_csv()


@pytest.mark.parametrize("persona", [*PERSONAS, "participant"])
@pytest.mark.parametrize(
    "path",
    ["rescore/", "finalize/", "export/"],
)
def test_organizer_actions_are_refused_to_everyone_else(request, api, competition, persona, path):
    user = persona_user(request, persona)
    client = api(user)
    url = f"/api/v1/competitions/{competition.slug}/{path}"
    response = client.get(url) if path == "export/" else client.post(url)
    assert response.status_code in (401, 403), (persona, path, response.status_code)
    competition.refresh_from_db()
    assert competition.finalized_at is None


@pytest.mark.parametrize("persona", [*PERSONAS, "participant"])
def test_submission_organizer_actions_are_refused_to_everyone_else(
    request, api, submission, persona
):
    user = persona_user(request, persona)
    for action in ("rescore/", "disqualify/"):
        response = api(user).post(f"/api/v1/submissions/{submission.pk}/{action}")
        assert response.status_code in (401, 403, 404), (persona, action)
    submission.refresh_from_db()
    assert not submission.is_disqualified


@pytest.mark.parametrize("persona", [*PERSONAS, "participant"])
def test_banning_a_team_is_refused_to_everyone_else(
    request, api, competition, participant, persona
):
    user = persona_user(request, persona)
    team = participant.teams.get()
    response = api(user).post(
        f"/api/v1/competitions/{competition.slug}/teams/{team.pk}/ban/", {"reason": "x"}
    )
    assert response.status_code in (401, 403)
    team.refresh_from_db()
    assert not team.is_banned


def test_another_teams_submission_cannot_be_selected(api, submission, other_participant):
    response = api(other_participant).post(
        f"/api/v1/submissions/{submission.pk}/select/", {"selected": True}
    )
    assert response.status_code == 404


def test_an_invite_only_competition_is_invisible_to_outsiders(api, organizer, outsider):
    factories.make_competition(slug="secret", organizers=[organizer], visibility="invite_only")
    for user in (None, outsider):
        assert api(user).get("/api/v1/competitions/secret/").status_code == 404
        assert api(user).get("/api/v1/competitions/secret/leaderboard/").status_code == 404
        slugs = [c["slug"] for c in api(user).get("/api/v1/competitions/").json()["results"]]
        assert "secret" not in slugs
    assert api(organizer).get("/api/v1/competitions/secret/").status_code == 200


@pytest.mark.parametrize("persona", ["anonymous", "outsider", "participant", "other_organizer"])
def test_the_private_leaderboard_is_hidden_until_finalized(request, api, competition, persona):
    user = persona_user(request, persona)
    response = api(user).get(f"/api/v1/competitions/{competition.slug}/leaderboard/?split=private")
    assert response.status_code == 403
    assert response.json()["code"] == "not_finalized"


def test_a_submission_list_holds_only_my_teams_submissions(
    api, competition, submission, other_participant
):
    response = api(other_participant).get(f"/api/v1/competitions/{competition.slug}/submissions/")
    assert response.status_code == 200
    assert response.json()["count"] == 0


def test_the_submission_is_stored_with_its_hash_before_it_is_queued(submission):
    assert submission.status == Submission.Status.QUEUED
    with submission.file.open("rb") as fh:
        assert fh.read() == factories.perfect_predictions()


def test_no_url_serves_the_stored_ground_truth_file(client, competition, participant):
    stored = competition.task.ground_truth.name  # e.g. ground_truth/truth.csv
    client.force_login(participant)
    for url in (
        f"/media/{stored}",
        f"/files/private/{stored}",
        f"/static/{stored}",
        f"/static/../files/private/{stored}",
        f"/{stored}",
    ):
        response = client.get(url)
        assert response.status_code == 404, url


def test_an_outsider_cannot_join_an_invite_only_competition(api, organizer, outsider):
    factories.make_competition(slug="secret", organizers=[organizer], visibility="invite_only")
    response = api(outsider).post("/api/v1/competitions/secret/join/", {"accept_rules": True})
    assert response.status_code == 404


def test_an_invited_user_can_join_an_invite_only_competition(api, organizer, outsider):
    secret = factories.make_competition(
        slug="secret", organizers=[organizer], visibility="invite_only"
    )
    secret.invited.add(outsider)
    response = api(outsider).post("/api/v1/competitions/secret/join/", {"accept_rules": True})
    assert response.status_code == 200
    assert response.json()["team"]["name"] == "charlie"


def test_joining_requires_accepting_the_rules(api, organizer, outsider):
    factories.make_competition(slug="open", organizers=[organizer])
    response = api(outsider).post("/api/v1/competitions/open/join/", {"accept_rules": False})
    assert response.status_code == 400
    assert response.json()["code"] == "rules_not_accepted"
