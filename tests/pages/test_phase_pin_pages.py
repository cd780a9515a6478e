"""Where organizers see and set a phase's task version: the Phases page (its own form per
phase) and the API (GET .../phases/, GET and PATCH .../phases/{id}/); and the version
switch refused, on the Data page and in the API, while an open phase pins another version.
Nobody but the competition's organizers sees or sets a pin."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.test import Client

from competitions.models import Competition, OrganizerAction, Phase
from competitions.services.phase_versions import phase_version_set
from competitions.services.versions import task_version_create, task_version_ensure
from tests import factories
from tests.conftest import persona_user

pytestmark = pytest.mark.django_db
STRANGERS = ["outsider", "other_participant", "other_organizer"]


@pytest.fixture
def two_versions(competition: Competition) -> Competition:
    """The competition (its one phase, Main, open) with a second version, not ranked."""
    task = competition.task
    task_version_ensure(task=task)
    truth = factories.truth_csv().replace("Public", "Private", 1)
    task_version_create(task=task, ground_truth=ContentFile(truth.encode(), "v2.csv"), note="v2")
    return competition


def _main(competition: Competition) -> Phase:
    return competition.phases.get(name="Main")


def _ranked(competition: Competition) -> int:
    competition.task.refresh_from_db()
    return competition.task.version


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- The Phases page ------------------------------------------------------------------------


def test_the_phases_page_shows_each_phases_task_version_with_the_tasks_versions(
    two_versions, organizer
):
    phase_version_set(phase=_main(two_versions), task_version=2, by=organizer)

    page = _client(organizer).get(f"/c/{two_versions.slug}/organize/phases/").content.decode()

    main = _main(two_versions)
    form = page[page.index(f'id="phase-version-{main.pk}"') :]
    assert '<option value="2" selected>Version 2: v2</option>' in form
    assert "None: the ranked version (now 2)" in form


def test_an_organizer_pins_the_open_phase_on_the_page_and_the_board_ranks_it(
    two_versions, organizer
):
    main = _main(two_versions)
    client = _client(organizer)

    response = client.post(
        f"/c/{two_versions.slug}/organize/phases/",
        {"which": f"pin{main.pk}", f"v{main.pk}-task_version": "2"},
        follow=True,
    )

    assert response.status_code == 200
    assert "The phase “Main” scores under version 2. The leaderboard ranks it now." in (
        response.content.decode()
    )
    assert _main(two_versions).task_version == 2
    assert _ranked(two_versions) == 2
    assert OrganizerAction.objects.filter(kind="phase_updated", by=organizer).exists()


def test_an_organizer_removes_the_pin_on_the_page(two_versions, organizer):
    main = _main(two_versions)
    phase_version_set(phase=main, task_version=2, by=organizer)

    _client(organizer).post(
        f"/c/{two_versions.slug}/organize/phases/",
        {"which": f"pin{main.pk}", f"v{main.pk}-task_version": ""},
    )

    assert _main(two_versions).task_version is None


def test_a_refused_pin_is_shown_beside_the_form_and_nothing_changes(two_versions, organizer):
    main = _main(two_versions)
    version = two_versions.task.versions.get(number=2)
    version.ground_truth.storage.delete(version.ground_truth.name)

    response = _client(organizer).post(
        f"/c/{two_versions.slug}/organize/phases/",
        {"which": f"pin{main.pk}", f"v{main.pk}-task_version": "2"},
    )

    assert response.status_code == 400
    page = response.content.decode()
    form = page[page.index(f'id="phase-version-{main.pk}"') :]
    assert "Version 2&#x27;s ground truth is missing from storage" in form[:3000]
    assert _main(two_versions).task_version is None
    assert _ranked(two_versions) == 1


@pytest.mark.parametrize("persona", STRANGERS)
def test_nobody_but_the_organizers_pins_a_phase_on_the_page(request, two_versions, persona):
    main = _main(two_versions)
    user = persona_user(request, persona)

    response = _client(user).post(
        f"/c/{two_versions.slug}/organize/phases/",
        {"which": f"pin{main.pk}", f"v{main.pk}-task_version": "2"},
    )

    assert response.status_code == 403
    assert _main(two_versions).task_version is None
    assert _ranked(two_versions) == 1


# --- The version switch on the Data page and in the API --------------------------------------


def test_the_data_page_refuses_a_switch_the_open_phases_pin_would_undo(two_versions, organizer):
    phase_version_set(phase=_main(two_versions), task_version=2, by=organizer)

    response = _client(organizer).post(
        f"/c/{two_versions.slug}/organize/versions/1/activate/", follow=True
    )

    page = response.content.decode()
    assert "The phase “Main” is open and pins version 2" in page
    assert "Change the phase&#x27;s task version instead" in page
    assert _ranked(two_versions) == 2


def test_the_api_refuses_a_switch_the_open_phases_pin_would_undo(api, two_versions, organizer):
    phase_version_set(phase=_main(two_versions), task_version=2, by=organizer)

    response = api(organizer).post(f"/api/v1/competitions/{two_versions.slug}/versions/1/activate/")

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "phase_pins_version"
    assert (body["phase_name"], body["pinned"]) == ("Main", 2)
    assert "Change the phase's task version instead" in body["detail"]


# --- The API ------------------------------------------------------------------------------


def test_the_api_lists_the_phases_with_the_version_each_pins(api, two_versions, organizer):
    phase_version_set(phase=_main(two_versions), task_version=2, by=organizer)

    response = api(organizer).get(f"/api/v1/competitions/{two_versions.slug}/phases/")

    assert response.status_code == 200
    [row] = response.json()["results"]
    main = _main(two_versions)
    assert (row["id"], row["name"], row["task_version"], row["scores_under"]) == (
        main.pk,
        "Main",
        2,
        2,
    )
    assert row["is_open"] is True
    assert row["url"].endswith(f"/api/v1/competitions/{two_versions.slug}/phases/{main.pk}/")


def test_the_api_pins_the_open_phase_and_answers_the_phase(api, two_versions, organizer):
    main = _main(two_versions)
    url = f"/api/v1/competitions/{two_versions.slug}/phases/{main.pk}/"

    response = api(organizer).patch(url, {"task_version": 2}, format="json")

    assert response.status_code == 200, response.content
    assert (response.json()["task_version"], response.json()["scores_under"]) == (2, 2)
    assert _ranked(two_versions) == 2
    cleared = api(organizer).patch(url, {"task_version": None}, format="json")
    assert (cleared.json()["task_version"], cleared.json()["scores_under"]) == (None, 2)
    assert api(organizer).get(url).json()["task_version"] is None


def test_the_api_refuses_a_version_the_task_does_not_have_with_the_rules_sentence(
    api, two_versions, organizer
):
    main = _main(two_versions)
    url = f"/api/v1/competitions/{two_versions.slug}/phases/{main.pk}/"

    response = api(organizer).patch(url, {"task_version": 9}, format="json")

    assert response.status_code == 400
    assert response.json()["detail"] == (
        "The task has no version 9; a phase scores under one of the task's versions."
    )
    assert _main(two_versions).task_version is None


def test_the_api_answers_404_for_a_phase_of_another_competition(
    api, two_versions, organizer, other_competition
):
    other_phase = other_competition.phases.get()
    url = f"/api/v1/competitions/{two_versions.slug}/phases/{other_phase.pk}/"

    assert api(organizer).patch(url, {"task_version": 1}, format="json").status_code == 404
    assert other_competition.phases.get().task_version is None


@pytest.mark.parametrize("persona", STRANGERS)
def test_nobody_but_the_organizers_sees_or_sets_a_pin_in_the_api(
    request, api, two_versions, persona
):
    main = _main(two_versions)
    client = api(persona_user(request, persona))
    base = f"/api/v1/competitions/{two_versions.slug}/phases/"

    assert client.get(base).status_code == 403
    assert client.get(f"{base}{main.pk}/").status_code == 403
    response = client.patch(f"{base}{main.pk}/", {"task_version": 2}, format="json")

    assert response.status_code == 403
    assert _main(two_versions).task_version is None
    assert _ranked(two_versions) == 1


def test_an_invite_only_competitions_phases_are_not_found_for_an_outsider(
    api, two_versions, outsider
):
    Competition.objects.filter(pk=two_versions.pk).update(
        visibility=Competition.Visibility.INVITE_ONLY
    )
    main = _main(two_versions)
    url = f"/api/v1/competitions/{two_versions.slug}/phases/{main.pk}/"

    response = api(outsider).patch(url, {"task_version": 2}, format="json")

    assert response.status_code == 404
    assert _main(two_versions).task_version is None
