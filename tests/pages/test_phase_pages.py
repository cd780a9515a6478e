"""The pages of a competition whose phases differ: the leaderboard's columns are the
current phase's, and a file released with a later phase is on no one's data page but the
organizers' until that phase starts."""

from __future__ import annotations

import re

import pytest
from django.core.files.base import ContentFile
from django.test import Client

from competitions.models import Competition, TaskFile
from tests.competitions.test_phase_board_columns import after_final_starts, two_phases

pytestmark = pytest.mark.django_db
__all__ = ["two_phases"]  # the fixture, shared


def _columns(page: str) -> list[str]:
    head = re.search(r"<thead>(.*?)</thead>", page, re.S)
    assert head is not None
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<th[^>]*>(.*?)</th>", head[1])]


def _page(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_the_leaderboard_page_shows_the_current_phases_columns(two_phases, participant):
    url = f"/c/{two_phases.slug}/leaderboard/"
    anonymous, signed_in = Client(), Client()
    signed_in.force_login(participant)
    for client in (anonymous, signed_in):
        columns = _columns(_page(client, url))
        assert "ROC AUC" in columns
        assert "Log loss" in columns
        assert "Accuracy" not in columns

    with after_final_starts():
        for client in (anonymous, signed_in):
            columns = _columns(_page(client, url))
            assert "ROC AUC" in columns
            assert "Accuracy" in columns
            assert "Log loss" not in columns


def test_the_overview_names_the_columns_the_board_shows_now(two_phases):
    url = f"/c/{two_phases.slug}/"
    assert "also shown now: Log loss</dd>" in _page(Client(), url)

    with after_final_starts():
        assert "also shown now: Accuracy</dd>" in _page(Client(), url)


def _release_with_final(competition: Competition) -> None:
    final = competition.phases.get(name="Final")
    task_file = TaskFile(
        task=competition.task, kind="test", name="final_test.csv", released_with=final
    )
    task_file.file.save("final_test.csv", ContentFile(b"id,x\n"), save=False)
    task_file.save()


def test_the_data_page_shows_a_file_of_a_later_phase_to_the_organizers_only(
    two_phases, organizer, participant
):
    _release_with_final(two_phases)
    url = f"/c/{two_phases.slug}/data/"
    participants = Client()
    participants.force_login(participant)
    organizers = Client()
    organizers.force_login(organizer)

    assert "final_test.csv" not in _page(participants, url)
    assert "final_test.csv" not in _page(Client(), url)
    page = _page(organizers, url)
    assert "final_test.csv" in page
    assert "released when Final opens" in page

    with after_final_starts():
        assert "final_test.csv" in _page(participants, url)
        assert "released when" not in _page(organizers, url)


def test_the_organizers_data_tab_says_when_each_held_back_file_is_released(two_phases, organizer):
    _release_with_final(two_phases)
    client = Client()
    client.force_login(organizer)
    page = _page(client, f"/c/{two_phases.slug}/organize/data/")
    final = two_phases.phases.get(name="Final").start_at
    assert "released when Final opens" in page
    assert f"{final:%Y-%m-%d %H:%M} UTC" in page
