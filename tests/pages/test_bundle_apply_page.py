"""/organize/apply/: upload a bundle, review its diff, confirm (docs/bundle.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.storage import storages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from competitions.models import Competition
from competitions.services.bundle_apply import bundle_apply
from competitions.services.teams import competition_join
from tests import factories
from tests.competitions.test_bundle_apply import rewrite
from tests.competitions.test_bundles import write_bundle, zip_folder

pytestmark = pytest.mark.django_db
URL = "/organize/apply/"


def upload(folder: Path) -> SimpleUploadedFile:
    path = zip_folder(folder, folder.parent / "upload.zip")
    return SimpleUploadedFile("b.zip", path.read_bytes(), content_type="application/zip")


def staged_files() -> list[Path]:
    root = Path(storages["private"].path("bundle_staging"))
    return sorted(root.iterdir()) if root.exists() else []


@pytest.fixture
def folder(tmp_path) -> Path:
    return write_bundle(tmp_path / "repo")


@pytest.fixture
def orga_client(client, organizer) -> Client:
    client.force_login(organizer)
    return client


def review(client: Client, folder: Path):
    return client.post(URL, {"bundle": upload(folder), "action": "diff"})


def confirm(client: Client):
    staged = client.session["bundle_apply_staged"]["name"]
    return client.post(URL, {"action": "apply", "staged": staged})


def test_a_new_bundle_is_shown_then_created_once_confirmed(orga_client, organizer, folder):
    before = staged_files()
    response = review(orga_client, folder)

    page = response.content.decode()
    assert response.status_code == 200
    assert "Creates <code>tiny-bundle</code>" in page
    assert "Apply these changes" in page
    assert not Competition.objects.filter(slug="tiny-bundle").exists()

    response = confirm(orga_client)

    assert response["Location"] == "/c/tiny-bundle/organize/"
    assert Competition.objects.get(slug="tiny-bundle").organizers.get() == organizer
    assert staged_files() == before


def test_an_update_shows_each_change_before_applying(orga_client, organizer, folder):
    bundle_apply(source=folder, organizer=organizer, dry_run=False)
    rewrite(folder, lambda doc: doc.update(title="Renamed"))

    page = review(orga_client, folder).content.decode()

    assert "Changes to <code>tiny-bundle</code>" in page
    assert "<td><code>title</code></td><td>A tiny bundle</td><td>Renamed</td>" in page
    assert Competition.objects.get(slug="tiny-bundle").title == "A tiny bundle"
    confirm(orga_client)
    assert Competition.objects.get(slug="tiny-bundle").title == "Renamed"


def test_it_asks_again_when_the_competition_changed_since_the_review(
    orga_client, organizer, folder
):
    bundle_apply(source=folder, organizer=organizer, dry_run=False)
    rewrite(folder, lambda doc: doc.update(title="Renamed"))
    review(orga_client, folder)
    Competition.objects.filter(slug="tiny-bundle").update(max_team_size=9)

    response = confirm(orga_client)

    assert response.status_code == 409
    assert "changed since you reviewed" in response.content.decode()
    competition = Competition.objects.get(slug="tiny-bundle")
    assert (competition.title, competition.max_team_size) == ("A tiny bundle", 9)


def test_a_refused_bundle_shows_why_and_offers_no_confirmation(
    orga_client, organizer, participant, folder
):
    bundle_apply(source=folder, organizer=organizer, dry_run=False)
    competition = Competition.objects.get(slug="tiny-bundle")
    team = competition_join(competition=competition, user=participant, accept_rules=True).team
    factories.submission_row(team).save()
    rewrite(folder, lambda doc: doc["phases"][0].update(name="Other"))
    before = staged_files()

    page = review(orga_client, folder).content.decode()

    assert "Applying would be refused" in page
    assert "Apply these changes" not in page
    assert staged_files() == before


def test_a_confirmation_without_a_reviewed_bundle_applies_nothing(orga_client, folder):
    review(orga_client, folder)

    response = orga_client.post(URL, {"action": "apply", "staged": "bundle_staging/other.zip"})

    assert response.status_code == 400
    assert not Competition.objects.filter(slug="tiny-bundle").exists()


def test_signing_in_is_required(client):
    response = client.get(URL)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("persona", ["outsider", "participant", "other_organizer"])
def test_only_its_organizers_review_or_apply_a_bundle_for_a_competition(
    request, organizer, folder, persona, competition, other_competition
):
    bundle_apply(source=folder, organizer=organizer, dry_run=False)
    client = Client()
    client.force_login(request.getfixturevalue(persona))
    rewrite(folder, lambda doc: doc.update(title="Hijacked"))
    before = staged_files()

    response = review(client, folder)

    assert response.status_code == 403
    assert "bundle_apply_staged" not in client.session
    assert Competition.objects.get(slug="tiny-bundle").title == "A tiny bundle"
    assert staged_files() == before
