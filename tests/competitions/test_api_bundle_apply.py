"""POST /api/v1/competitions/apply/: a bundle repository's CI diffs and applies through it."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from competitions.models import Competition
from competitions.services.teams import competition_join
from tests import factories
from tests.competitions.test_bundle_apply import FLIPPED, rewrite
from tests.competitions.test_bundles import write_bundle, zip_folder

pytestmark = pytest.mark.django_db
URL = "/api/v1/competitions/apply/"


def post(api, user, folder: Path, *, dry_run: bool = False):
    data = io.BytesIO(zip_folder(folder, folder.parent / "upload.zip").read_bytes())
    data.name = "bundle.zip"
    url = URL + ("?dry_run=1" if dry_run else "")
    return api(user).post(url, {"bundle": data}, format="multipart")


@pytest.fixture
def bundle(tmp_path) -> Path:
    return write_bundle(tmp_path / "repo")


@pytest.fixture
def applied(api, organizer, bundle) -> Competition:
    response = post(api, organizer, bundle)
    assert response.status_code == 201, response.content
    return Competition.objects.get(slug="tiny-bundle")


def test_applying_a_new_slug_creates_the_competition(api, organizer, bundle):
    response = post(api, organizer, bundle)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["created"] is True
    assert body["applied"] is True
    assert response["Location"] == body["url"]
    assert body["url"].endswith("/api/v1/competitions/tiny-bundle/")
    assert Competition.objects.get(slug="tiny-bundle").organizers.get() == organizer


def test_a_dry_run_answers_the_diff_and_changes_nothing(api, organizer, bundle, applied):
    rewrite(bundle, lambda doc: doc["phases"][0].update(daily_limit=9))
    (bundle / "train.csv").write_text("id,x,label\nt0,1,yes\n")

    response = post(api, organizer, bundle, dry_run=True)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["applied"] is False
    assert body["created"] is False
    assert body["changes"] == [{"field": "phases[Main].daily_limit", "old": 5, "new": 9}]
    assert [(f["path"], f["change"]) for f in body["files"]] == [
        ("task.files[train.csv]", "changed")
    ]
    assert applied.phases.get().daily_limit == 5


def test_apply_answers_the_applied_diff(api, organizer, bundle, applied):
    rewrite(bundle, lambda doc: doc.update(title="Renamed"))

    response = post(api, organizer, bundle)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["applied"] is True
    assert body["changes"] == [{"field": "title", "old": "A tiny bundle", "new": "Renamed"}]
    applied.refresh_from_db()
    assert applied.title == "Renamed"


def test_a_refused_apply_answers_409_with_the_refusals(
    api, organizer, participant, bundle, applied
):
    team = competition_join(competition=applied, user=participant, accept_rules=True).team
    factories.submission_row(team).save()
    rewrite(bundle, lambda doc: doc["phases"][0].update(name="Other"))

    response = post(api, organizer, bundle)

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "bundle_refused"
    assert body["problems"][0].startswith('phases: "Main" has 1 submission(s)')
    assert post(api, organizer, bundle, dry_run=True).json()["refusals"] == body["problems"]


def test_an_invalid_bundle_answers_every_problem(api, organizer, bundle):
    rewrite(bundle, lambda doc: doc["task"].update(queue="a b", limits={"nope": 1}))

    response = post(api, organizer, bundle, dry_run=True)

    assert response.status_code == 400
    assert [p.split(":")[0] for p in response.json()["problems"]] == ["task.queue", "task.limits"]


@pytest.mark.parametrize("persona", ["outsider", "participant", "other_organizer"])
@pytest.mark.parametrize("dry_run", [True, False])
def test_only_its_organizers_apply_to_a_competition(
    api, bundle, applied, competition, other_competition, persona, dry_run, request
):
    user = request.getfixturevalue(persona)
    if persona == "participant":  # a team of this competition too, not an organizer
        competition_join(competition=applied, user=user, accept_rules=True)
    rewrite(bundle, lambda doc: doc.update(title="Hijacked"))

    response = post(api, user, bundle, dry_run=dry_run)

    assert response.status_code in (403, 404)
    assert "changes" not in response.json()
    applied.refresh_from_db()
    assert applied.title == "A tiny bundle"


def test_signing_in_is_required(api, bundle):
    response = post(api, None, bundle, dry_run=True)

    assert response.status_code in (401, 403)
    assert not Competition.objects.filter(slug="tiny-bundle").exists()


def test_activating_a_new_ground_truth_answers_the_switch_job(api, organizer, bundle, applied):
    (bundle / "solution.csv").write_text(FLIPPED)
    rewrite(bundle, lambda doc: doc["task"].update(activate=True))

    body = post(api, organizer, bundle).json()

    assert body["version"] == 2
    job = api(organizer).get(body["job"]).json()
    assert (job["kind"], job["status"], job["params"]) == (
        "version_switch",
        "queued",
        {"number": 2, "rescore": True},
    )
