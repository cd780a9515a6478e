"""A method's reproducibility bundle: every task's manifest for its current cells, and
method.json; never a label (suites/reproducibility.py)."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.management import call_command
from django.http import FileResponse, Http404
from django.test import RequestFactory

from competitions.models import Competition
from judging.services import submission_score
from scoring.scorers import InProcessScorer
from suites import services
from suites.models import Method
from suites.reproducibility import method_bundle_write
from suites.views_downloads import method_bundle_download
from tests import factories
from tests.suites.test_suite_services import joined, suite_of

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite_too]


def scored_method() -> Method:
    """A method with a scored cell on iris, a failed one on wine, none on digits (an
    earlier, worse run on iris is replaced by the later one)."""
    suite, _ = suite_of("iris", "wine", "digits")
    user = joined(suite, "ada")
    method = services.method_create(
        suite=suite,
        owner=user,
        name="Oracle",
        description="Knows the answers.",
        paper_url="https://example.org/paper",
        code_url="https://example.org/code",
        hardware_declared="1 CPU",
        components={"model": "oracle", "preprocessing": ["none"]},
    )
    iris, wine, _digits = suite.tasks.all()
    uploads = [
        (iris, factories.predictions_csv()),
        (iris, factories.perfect_predictions()),
        (wine, b"nonsense\n"),
    ]
    for task, content in uploads:
        run = services.method_submit(
            method=method, task=task, user=user, uploaded_file=factories.upload(content)
        )
        submission_score(submission_id=run.submission_id, scorer=InProcessScorer())
    return method


def members(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def test_the_bundle_holds_the_method_and_each_current_cells_manifest(tmp_path):
    method = scored_method()
    bundle = members(
        method_bundle_write(method=method, user=AnonymousUser(), dest=tmp_path / "m.zip")
    )

    assert sorted(bundle) == [
        "README.txt",
        "manifests/iris.json",
        "manifests/wine.json",  # a failed scoring has its manifest too
        "method.json",
        "replay.py",
    ]
    document = json.loads(bundle["method.json"])
    assert document["name"] == "Oracle"
    assert document["components"] == {"model": ["oracle"], "preprocessing": ["none"]}
    assert document["links"] == {
        "paper": "https://example.org/paper",
        "code": "https://example.org/code",
    }
    assert document["hardware"] == "1 CPU"
    cells = {line["key"]: line for line in document["tasks"]}
    assert [line["key"] for line in document["tasks"]] == ["iris", "wine", "digits"]
    assert (cells["iris"]["status"], cells["iris"]["manifest"]) == ("scored", "manifests/iris.json")
    assert (cells["wine"]["status"], cells["wine"]["manifest"]) == ("failed", "manifests/wine.json")
    assert (cells["digits"]["status"], cells["digits"]["submission"]) == ("missing", None)
    manifest = json.loads(bundle["manifests/iris.json"])
    # The current cell: the later, perfect file, not the earlier one.
    assert manifest["submission"]["id"] == cells["iris"]["submission"]
    assert manifest["scores"]["public"]["roc_auc"] == 1.0


def test_the_bundle_holds_no_label_and_nothing_of_the_private_split(tmp_path):
    method = scored_method()
    bundle = members(
        method_bundle_write(method=method, user=AnonymousUser(), dest=tmp_path / "m.zip")
    )

    text = b"".join(content for name, content in bundle.items() if name != "replay.py").decode()
    # Neither the ground truth's rows (their ids, labels, split) nor the file itself.
    assert not any(
        f'"{row_id}"' in text or f"{row_id}," in text for row_id, _, _ in factories.TRUTH_ROWS
    )
    assert not any(f"{i},{y},{u}" in text for i, y, u in factories.TRUTH_ROWS)
    assert not any(name.startswith(("ground_truth/", "predictions/", "logs/")) for name in bundle)
    manifest = json.loads(bundle["manifests/iris.json"])
    assert "private" not in manifest["scores"]
    assert manifest["ground_truth"]["rows"]["private"] is None
    assert set(manifest["ground_truth"]) == {"sha256", "size", "split_sha256", "rows"}


def test_anyone_who_sees_the_suite_downloads_it_and_nobody_else(tmp_path):
    public = scored_method()
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    response = method_bundle_download(request, public.suite.slug, public.pk)
    assert isinstance(response, FileResponse)
    assert response.status_code == 200
    content = b"".join(response.streaming_content)  # type: ignore[arg-type]
    assert "method.json" in zipfile.ZipFile(io.BytesIO(content)).namelist()

    suite = public.suite
    suite.visibility = "invite_only"
    suite.save()
    Competition.objects.filter(suite_tasks__suite=suite).update(visibility="invite_only")
    with pytest.raises(Http404):
        method_bundle_download(request, suite.slug, public.pk)
    request.user = public.owner  # a member of the tasks' competitions
    assert method_bundle_download(request, suite.slug, public.pk).status_code == 200
    request.user = factories.make_user("stranger")
    with pytest.raises(Http404):
        method_bundle_download(request, suite.slug, public.pk)


def test_the_command_writes_the_bundle(tmp_path):
    method = scored_method()
    call_command("method_bundle", method.suite.slug, "oracle", str(tmp_path / "m.zip"))
    assert "manifests/iris.json" in members(tmp_path / "m.zip")
