"""The declared tie rule (issue 11 part 7): the organizer picks how ties are resolved for
prizes, the rules page and the API state it, a tie-break metric must be one the task
computes, and the rule is frozen with the competition."""

from __future__ import annotations

import pytest
from django.test import Client

from competitions.errors import ApplicationError
from competitions.rules import tie_rule_problems
from competitions.services.lifecycle import competition_finalize
from competitions.services.organize import competition_tie_rule_update
from tests import factories
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def _organizer_client(organizer) -> Client:
    client = Client()
    client.force_login(organizer)
    return client


def test_the_rules_page_states_the_default_rule_the_earlier_submission_wins(competition):
    page = Client().get(f"/c/{competition.slug}/rules/").content.decode()
    assert "When teams have exactly the same score, the team whose submission came first" in page
    assert "statistically tied" in page


def test_an_organizer_declares_a_tie_break_metric_and_the_rules_page_and_api_state_it(
    competition, organizer
):
    url = f"/c/{competition.slug}/organize/phases/"
    posted = _organizer_client(organizer).post(
        url, {"which": "ties", "tie_rule": "metric", "tie_break_metric": "accuracy"}
    )
    assert posted.status_code == 302
    page = Client().get(f"/c/{competition.slug}/rules/").content.decode()
    assert "the team with the better Accuracy takes the higher place" in page
    detail = client_for(None).get(f"/api/v1/competitions/{competition.slug}/").json()
    assert (detail["tie_rule"], detail["tie_break_metric"]) == ("metric", "accuracy")
    assert "better Accuracy" in detail["tie_rule_text"]


def test_shared_places_are_stated_and_the_api_has_no_tie_break_metric(competition, organizer):
    competition_tie_rule_update(competition=competition, tie_rule="shared", tie_break_metric="")
    page = Client().get(f"/c/{competition.slug}/rules/").content.decode()
    assert "the tied teams share the place and its prize" in page
    detail = client_for(None).get(f"/api/v1/competitions/{competition.slug}/").json()
    assert (detail["tie_rule"], detail["tie_break_metric"]) == ("shared", None)


def test_the_form_refuses_a_metric_the_task_does_not_compute(competition, organizer):
    url = f"/c/{competition.slug}/organize/phases/"
    refused = _organizer_client(organizer).post(
        url, {"which": "ties", "tie_rule": "metric", "tie_break_metric": "rmse"}
    )
    assert refused.status_code == 400
    competition.refresh_from_db()
    assert competition.tie_rule == "earlier"


def test_the_service_refuses_a_tie_break_metric_the_task_does_not_compute(competition):
    with pytest.raises(ApplicationError, match="does not compute 'log_loss'"):
        competition_tie_rule_update(
            competition=competition, tie_rule="metric", tie_break_metric="log_loss"
        )
    with pytest.raises(ApplicationError, match="Name the tie-break metric"):
        competition_tie_rule_update(competition=competition, tie_rule="metric", tie_break_metric="")


def test_the_primary_metric_cannot_break_its_own_ties(competition):
    with pytest.raises(ApplicationError, match="does not compute 'roc_auc'"):
        competition_tie_rule_update(
            competition=competition, tie_rule="metric", tie_break_metric="roc_auc"
        )


def test_the_tie_rule_is_frozen_from_finalize_on(competition, organizer):
    competition_finalize(competition=competition, by=organizer)
    with pytest.raises(ApplicationError, match="tie rule can't change"):
        competition_tie_rule_update(competition=competition, tie_rule="shared", tie_break_metric="")


def test_only_the_competitions_organizers_may_change_the_tie_rule(
    competition, participant, other_organizer
):
    factories.make_competition(slug="elsewhere", organizers=[other_organizer])
    body = {"which": "ties", "tie_rule": "shared", "tie_break_metric": ""}
    for user in (participant, other_organizer):
        answer = _organizer_client(user).post(f"/c/{competition.slug}/organize/phases/", body)
        assert answer.status_code == 403
    competition.refresh_from_db()
    assert competition.tie_rule == "earlier"


def test_the_tie_rule_problems_name_the_metric_only_when_it_decides():
    computed = ["accuracy"]
    assert tie_rule_problems(tie_rule="earlier", tie_break_metric="", computed=computed) == {}
    assert set(
        tie_rule_problems(tie_rule="shared", tie_break_metric="accuracy", computed=computed)
    ) == {"tie_break_metric"}
    assert tie_rule_problems(tie_rule="metric", tie_break_metric="accuracy", computed=None) == {}
    assert set(tie_rule_problems(tie_rule="coin", tie_break_metric="", computed=None)) == {
        "tie_rule"
    }
