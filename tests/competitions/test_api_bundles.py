"""Import and export of competition bundles through the REST API."""

import io
import tempfile
import zipfile

import pytest
import yaml

from competitions.models import Competition

pytestmark = pytest.mark.django_db


def _export(api, user, slug: str):
    response = api(user).get(f"/api/v1/competitions/{slug}/export/")
    return response.status_code, b"".join(
        response.streaming_content
    ) if response.status_code == 200 else b""


def _with_slug(bundle: bytes, slug: str) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(bundle))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith("competition.yaml"):
                doc = yaml.safe_load(data)
                doc["slug"] = slug
                data = yaml.safe_dump(doc).encode()
            target.writestr(info, data)
    return out.getvalue()


def test_an_organizer_exports_a_bundle_and_imports_it_again(api, competition, organizer):
    status, bundle = _export(api, organizer, competition.slug)
    assert status == 200
    upload = io.BytesIO(_with_slug(bundle, "tiny-again"))
    upload.name = "bundle.zip"
    response = api(organizer).post(
        "/api/v1/competitions/import/", {"bundle": upload}, format="multipart"
    )
    assert response.status_code == 201, response.content
    copy = Competition.objects.get(slug="tiny-again")
    assert copy.organizers.get() == organizer
    assert copy.task.ground_truth_sha256
    assert copy.task.primary_metric == competition.task.primary_metric


def test_a_participant_cannot_import_a_bundle(api, competition, organizer, participant):
    _, bundle = _export(api, organizer, competition.slug)
    upload = io.BytesIO(_with_slug(bundle, "stolen"))
    upload.name = "bundle.zip"
    response = api(participant).post(
        "/api/v1/competitions/import/", {"bundle": upload}, format="multipart"
    )
    assert response.status_code == 403
    assert not Competition.objects.filter(slug="stolen").exists()


def test_a_broken_bundle_reports_its_problems(api, organizer):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("competition.yaml", "slug: x\ntask:\n  type: nonsense\n")
    buffer.seek(0)
    buffer.name = "bundle.zip"
    response = api(organizer).post(
        "/api/v1/competitions/import/", {"bundle": buffer}, format="multipart"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "bundle_invalid"
    assert len(body["problems"]) > 1


def test_an_export_leaves_no_copy_of_the_ground_truth_on_disk(
    api, competition, organizer, tmp_path, monkeypatch
):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    status, bundle = _export(api, organizer, competition.slug)

    assert status == 200
    assert "private/solution.csv" in zipfile.ZipFile(io.BytesIO(bundle)).namelist()
    assert list(tmp_path.iterdir()) == []
