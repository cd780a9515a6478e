"""The admin shows a suite's organizer their own suites, methods and runs, and nothing of
another suite; the organizers, the visibility and the tasks stay the superuser's."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.suites.world import make_suite, scored_world

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite_too]


def test_an_organizer_sees_their_suite_in_the_admin_and_not_anothers(organizer, other_organizer):
    world = scored_world(organizer=organizer)
    theirs = make_suite(slug="theirs", organizer=other_organizer, tasks=("x",))
    client = Client()
    client.force_login(organizer)

    index = client.get("/admin/")
    assert b"/admin/suites/suite/" in index.content
    listing = client.get("/admin/suites/suite/")
    assert listing.status_code == 200
    assert b"Suite bench" in listing.content
    assert b"Suite theirs" not in listing.content
    assert client.get(f"/admin/suites/suite/{world.suite.pk}/change/").status_code == 200
    assert client.get(f"/admin/suites/suite/{theirs.pk}/change/").status_code in (302, 404)
    methods = client.get("/admin/suites/method/")
    assert methods.status_code == 200
    assert b"forest" in methods.content
    assert client.get("/admin/suites/methodrun/").status_code == 200
    assert client.get("/admin/suites/suite/add/").status_code == 403


def test_an_organizer_edits_the_description_but_not_the_visibility_or_organizers(
    organizer, other_organizer
):
    suite = make_suite(organizer=organizer, tasks=("x",))
    client = Client()
    client.force_login(organizer)
    form = client.get(f"/admin/suites/suite/{suite.pk}/change/").content.decode()
    assert 'name="description"' in form
    assert 'name="visibility"' not in form
    assert 'name="organizers"' not in form


def test_staff_who_organize_no_suite_do_not_see_the_suites_admin(other_organizer):
    client = Client()
    client.force_login(other_organizer)
    assert b"/admin/suites/" not in client.get("/admin/").content
    assert client.get("/admin/suites/suite/").status_code == 403
