"""Test inputs released with a phase (TaskFile.released_with): before the phase starts the
file does not exist for anyone but the competition's organizers (lists, downloads, the data
page, container inference); from its start on it is everywhere, with no job, since the
release is decided at read time."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db.models import RestrictedError
from django.test import Client
from django.utils import timezone

from competitions.errors import ApplicationError
from competitions.models import Competition, Phase, TaskFile
from competitions.services.console import phase_delete
from judging.inference import inference_mounts
from tests.conftest import client_for, persona_user

pytestmark = pytest.mark.django_db

HIDDEN = "final_test.csv"
NOT_PARTICIPANTS = ["participant", "outsider", "other_organizer", "anonymous"]


def _final(competition: Competition) -> Phase:
    """A final phase a week after the competition's main phase ends."""
    main_end = competition.phases.get().end_at
    assert main_end is not None
    return Phase.objects.create(
        competition=competition,
        name="Final",
        start_at=main_end + timedelta(days=7),
        end_at=main_end + timedelta(days=14),
    )


@pytest.fixture
def final(competition) -> Phase:
    return _final(competition)


@pytest.fixture
def held_back(competition, final) -> TaskFile:
    task_file = TaskFile(
        task=competition.task, kind=TaskFile.Kind.TEST, name=HIDDEN, released_with=final
    )
    task_file.file.save(HIDDEN, ContentFile(b"id,x\nf1,1\n"), save=False)
    task_file.size = 10
    task_file.full_clean()
    task_file.save()
    return task_file


def _open(phase: Phase) -> None:
    """Move the phase's start to the past (the main phase ends first, so they never overlap)."""
    now = timezone.now()
    Phase.objects.filter(competition=phase.competition).exclude(pk=phase.pk).update(
        end_at=now - timedelta(hours=1)
    )
    Phase.objects.filter(pk=phase.pk).update(start_at=now - timedelta(minutes=1))


def _listed(user, competition: Competition) -> list[str]:
    detail = client_for(user).get(f"/api/v1/competitions/{competition.slug}/")
    assert detail.status_code == 200
    return [f["name"] for f in detail.json()["files"]]


def _download(user, competition: Competition, name: str):
    return client_for(user).get(f"/api/v1/competitions/{competition.slug}/files/{name}")


def _page(user, competition: Competition) -> str:
    client = Client()
    if user is not None:
        client.force_login(user)
    response = client.get(f"/c/{competition.slug}/data/")
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("persona", NOT_PARTICIPANTS)
def test_a_file_released_with_the_final_phase_does_not_exist_for_others_before_it_starts(
    request, competition, held_back, persona
):
    user = persona_user(request, persona)

    assert HIDDEN not in _listed(user, competition)
    assert "sample_submission.csv" in _listed(user, competition)
    assert HIDDEN not in _page(user, competition)
    hidden = _download(user, competition, HIDDEN)
    missing = _download(user, competition, "no_such_file.csv")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["code"] == missing.json()["code"]
    assert hidden.json()["detail"].replace(HIDDEN, "?") == missing.json()["detail"].replace(
        "no_such_file.csv", "?"
    )


@pytest.mark.parametrize("persona", NOT_PARTICIPANTS)
def test_the_file_appears_for_everyone_once_the_final_phase_starts(
    request, competition, held_back, final, persona
):
    user = persona_user(request, persona)
    _open(final)

    assert HIDDEN in _listed(user, competition)
    assert HIDDEN in _page(user, competition)
    download = _download(user, competition, HIDDEN)
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == b"id,x\nf1,1\n"


def test_the_organizers_see_it_before_with_the_phase_that_releases_it(
    competition, held_back, organizer
):
    detail = client_for(organizer).get(f"/api/v1/competitions/{competition.slug}/").json()
    entry = next(f for f in detail["files"] if f["name"] == HIDDEN)
    assert (entry["released_with"], entry["released"]) == ("Final", False)
    assert _download(organizer, competition, HIDDEN).status_code == 200
    assert "released when Final opens" in _page(organizer, competition)

    client = Client()
    client.force_login(organizer)
    organize = client.get(f"/c/{competition.slug}/organize/data/").content.decode()
    assert HIDDEN in organize
    assert "released when Final opens" in organize


def test_after_the_start_the_api_says_it_was_released_with_the_phase(
    competition, held_back, final, participant
):
    _open(final)
    detail = client_for(participant).get(f"/api/v1/competitions/{competition.slug}/").json()
    entry = next(f for f in detail["files"] if f["name"] == HIDDEN)
    assert (entry["released_with"], entry["released"]) == ("Final", True)


def test_container_inference_mounts_only_the_test_files_released_by_now(
    competition, held_back, final, tmp_path: Path
):
    before = inference_mounts(competition.task, tmp_path)
    assert [m.target for m in before] == ["/input/test"]  # no test file released yet

    _open(final)
    after = inference_mounts(competition.task, tmp_path)
    assert [m.target for m in after] == [f"/input/test/{HIDDEN}"]


def test_a_file_cannot_be_released_with_another_competitions_phase(competition, other_competition):
    task_file = TaskFile(
        task=competition.task,
        kind=TaskFile.Kind.TEST,
        name="x.csv",
        file="task_files/x.csv",
        released_with=other_competition.phases.get(),
    )
    with pytest.raises(ValidationError) as excinfo:
        task_file.full_clean()
    assert "released_with" in excinfo.value.message_dict


def test_a_phase_that_releases_files_is_not_deleted_but_its_competition_is(
    competition, held_back, final, organizer
):
    with pytest.raises(ApplicationError, match=HIDDEN):
        phase_delete(phase=final, by=organizer)
    with pytest.raises(RestrictedError):
        final.delete()
    assert TaskFile.objects.filter(pk=held_back.pk).exists()

    competition.delete()
    assert not TaskFile.objects.filter(pk=held_back.pk).exists()
