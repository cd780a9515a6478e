"""What an image archive unpacks to: every file of every layer at its apparent size, sparse
files refused, bombs stopped within a second, the workers' platform checked at upload; and
a refusal the worker makes for such a reason is invalid, so it costs no quota."""

from __future__ import annotations

import gzip
import io
import tarfile
import time
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from competitions.image_uploads import worker_platform
from competitions.models import Submission
from judging import inference
from judging.images import FakeImages, ImageRefused
from judging.services import submission_score
from scoring import image_layers
from scoring.image_archive import ArchiveReport, archive_check
from scoring.image_checks import engine_architecture
from scoring.scorers import InProcessScorer
from tests.sandbox import hostile_images as h
from tests.sandbox.hostile_setup import make_container_phase

LIMIT = 4 * 1024**3  # the default HELDOUT_MAX_IMAGE_BYTES
RUNNABLE = h.layer({"app/run": b"#!/bin/sh\necho hi\n"})
OTHER_ARCH = "arm64" if engine_architecture() == "amd64" else "amd64"


def check(data: bytes, *, max_bytes: int = LIMIT, **options) -> ArchiveReport:
    return archive_check(io.BytesIO(data), max_bytes=max_bytes, architecture="amd64", **options)


def codes(report: ArchiveReport) -> list[str]:
    return [p.code for p in report.problems]


# --- Sparse files and apparent sizes ------------------------------------------------------------


@pytest.mark.parametrize(
    ("tar_format", "shown"),
    [("posix", "PAX 1.0"), ("posix-0.0", "PAX 0.0"), ("posix-0.1", "PAX 0.1"), ("gnu", "GNU")],
)
def test_a_10_kib_layer_holding_a_5_gib_sparse_file_is_refused_naming_the_file(
    tmp_path, tar_format, shown
):
    layer = h.sparse_layer(tmp_path, tar_format)
    assert len(layer) <= 10 * 1024

    report = check(h.legacy_archive([RUNNABLE, layer]))

    assert codes(report) == ["sparse_file", "too_large_unpacked"]
    sparse, size = (p.message for p in report.problems)
    assert f"holds 'big', a sparse file of 5 GiB ({shown} format). Sparse files are refused" in (
        sparse
    )
    assert "The image unpacks to more than the limit of 4 GiB: 'big' in layer" in size


def test_a_sparse_file_is_refused_under_the_limit_too_with_the_other_problems(tmp_path):
    layer = h.sparse_layer(tmp_path, "posix", apparent=1024**2)
    config = h.image_config([RUNNABLE, layer], architecture="arm64")

    report = check(h.legacy_archive([RUNNABLE, layer], config=config))

    assert codes(report) == ["sparse_file", "platform"]
    assert "a sparse file of 1 MiB (PAX 1.0 format)" in report.problems[0].message


def test_every_file_of_every_layer_counts_at_its_size():
    layers = [gzip.compress(h.layer({f"weights-{i}.bin": bytes(2 * 1024**2)})) for i in range(3)]
    limit = 5 * 1024**2

    two = check(h.legacy_archive(layers[:2]), max_bytes=limit)
    three = check(h.legacy_archive(layers), max_bytes=limit)

    assert two.ok, two.problems
    assert 4 * 1024**2 < two.unpacked_bytes < 4.1 * 1024**2
    assert codes(three) == ["too_large_unpacked"]
    assert "'weights-2.bin' in layer" in three.problems[0].message


def test_a_layer_with_too_many_files_is_refused(monkeypatch):
    monkeypatch.setattr(image_layers, "MAX_LAYER_FILES", 10)
    layer = h.layer({f"f{i}": b"x" for i in range(11)})

    report = check(h.legacy_archive([layer]))

    assert codes(report) == ["too_many_files"]


def test_a_damaged_layer_is_refused_at_upload_not_on_the_worker():
    layer = bytearray(h.layer({"a": b"x" * 600, "b": b"y"}))
    layer[1536 + 100] ^= 0xFF  # the second header (after 1 + 2 blocks): its checksum fails

    report = check(h.legacy_archive([bytes(layer)]))

    assert codes(report) == ["bad_layer"]
    assert "is not a tar the engine can read (a tar header at byte 1536 is damaged)" in (
        report.problems[0].message
    )


# --- Bombs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("apparent", "as_tar", "code"),
    [
        (3 * 1024**3, True, "bomb"),  # under the size limit: stopped by its ratio
        (20 * 1024**3, True, "too_large_unpacked"),  # stopped at the file's header
        (3 * 1024**3, False, "trailing_data"),  # zeros, no tar: stopped past its end
    ],
)
def test_a_gzip_bomb_layer_is_refused_in_under_a_second(apparent, as_tar, code):
    bomb = h.gzip_bomb(apparent, tar=as_tar)
    assert len(bomb) < apparent / 900
    data = h.legacy_archive([RUNNABLE, bomb])

    started = time.perf_counter()
    report = check(data)
    elapsed = time.perf_counter() - started

    assert codes(report) == [code]
    assert elapsed < 2  # about 0.2 s here; the bound leaves room for a busy machine


def test_a_gzipped_archive_that_is_a_bomb_is_refused_in_under_a_second():
    bomb = h.gzip_bomb(3 * 1024**3)  # a gzipped tar of one 3 GiB file: the archive itself

    started = time.perf_counter()
    report = check(bomb)
    elapsed = time.perf_counter() - started

    assert codes(report) == ["bomb"]
    assert "unpacks to more than 100 times its size" in report.problems[0].message
    assert elapsed < 2


@pytest.mark.parametrize("where", ["archive", "gzipped archive", "layer"])
def test_a_tar_header_claiming_a_gigabyte_is_refused_without_reading_it(where):
    info = tarfile.TarInfo("././@PaxHeader")
    info.type, info.size = tarfile.XHDTYPE, 1024**3
    claim = info.tobuf(tarfile.USTAR_FORMAT) + bytes(64 * 1024)
    data = {
        "archive": claim,
        "gzipped archive": gzip.compress(claim),
        "layer": h.legacy_archive([RUNNABLE, gzip.compress(claim)]),
    }[where]

    report = check(data)

    assert codes(report) == ["header_too_large"]


def test_a_sparse_entry_of_the_archive_itself_is_refused_without_reading_its_map():
    # Old GNU sparse: a header, then map blocks, each saying another follows; tarfile would
    # keep every block's 21 map entries in memory (4 GiB of them: some 14 GB).
    info = tarfile.TarInfo("big")
    info.type = tarfile.GNUTYPE_SPARSE
    header = bytearray(info.tobuf(tarfile.GNU_FORMAT))
    header[482] = 1  # "an extension block follows"
    header[148:156] = b" " * 8
    header[148:155] = b"%06o\0" % sum(header)
    extension = bytearray(b"%011o\0" % 1 * 42 + bytes(8))
    extension[504] = 1
    data = bytes(header) + bytes(extension) * 10_000 + bytes(1024)

    report = check(data)

    assert codes(report) == ["sparse_file"]


def test_a_check_past_its_time_limit_is_refused_with_the_way_out():
    report = check(h.legacy_archive([RUNNABLE], gz=True), time_limit_s=-1)

    assert codes(report) == ["too_slow"]
    assert "Upload the uncompressed tar `docker save` writes" in report.problems[0].message


# --- Platform --------------------------------------------------------------------------------------


def test_the_workers_platform_is_this_hosts_unless_set(settings):
    settings.HELDOUT_WORKER_PLATFORM = ""
    assert worker_platform() == ("linux", engine_architecture())
    settings.HELDOUT_WORKER_PLATFORM = "linux/arm64/v8"
    assert worker_platform() == ("linux", "arm64")
    settings.HELDOUT_WORKER_PLATFORM = "arm64"
    assert worker_platform() == ("linux", "arm64")


# --- Through the API and the worker ------------------------------------------------------------


def url(competition) -> str:
    return f"/api/v1/competitions/{competition.slug}/submissions/"


def quota(api, user, competition) -> dict:
    return api(user).get(f"/api/v1/competitions/{competition.slug}/quota/").json()


def test_a_sparse_file_image_is_refused_at_upload_with_every_problem_and_no_quota(
    api, participant, competition, tmp_path
):
    make_container_phase(competition)
    before = quota(api, participant, competition)
    archive = h.legacy_archive([RUNNABLE, h.sparse_layer(tmp_path, "posix")])

    response = api(participant).post(
        url(competition), {"file": SimpleUploadedFile("image.tar", archive)}
    )

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_image"
    assert [p["code"] for p in body["problems"]] == ["sparse_file", "too_large_unpacked"]
    assert "holds 'big', a sparse file of 5 GiB" in body["problems"][0]["message"]
    assert not Submission.objects.exists()
    assert quota(api, participant, competition) == before


def test_an_image_for_another_architecture_is_refused_at_upload(
    api, participant, competition, settings
):
    settings.HELDOUT_WORKER_PLATFORM = "linux/amd64"
    make_container_phase(competition)
    config = h.image_config([RUNNABLE], architecture="arm64")

    response = api(participant).post(
        url(competition),
        {"file": SimpleUploadedFile("image.tar", h.legacy_archive([RUNNABLE], config=config))},
    )

    assert response.status_code == 400
    (problem,) = response.json()["problems"]
    assert problem == {
        "code": "platform",
        "message": "The image is for 'arm64'; the workers run amd64 "
        "(build with --platform linux/amd64).",
    }
    assert not Submission.objects.exists()


def upload_for_other_arch(api, participant, competition, settings) -> int:
    """An image the upload takes (the web tier is told the workers run OTHER_ARCH) and this
    host's worker then refuses."""
    settings.HELDOUT_WORKER_PLATFORM = f"linux/{OTHER_ARCH}"
    make_container_phase(competition)
    config = h.image_config([RUNNABLE], architecture=OTHER_ARCH)
    response = api(participant).post(
        url(competition),
        {"file": SimpleUploadedFile("image.tar", h.legacy_archive([RUNNABLE], config=config))},
    )
    assert response.status_code == 202, response.json()
    return response.json()["id"]


def assert_invalid_without_quota(api, participant, competition, submission_id: int) -> None:
    submission = Submission.objects.get(pk=submission_id)
    assert submission.status == Submission.Status.FAILED
    assert submission.failure == Submission.Failure.INVALID
    assert [p["code"] for p in submission.problems] == ["platform"]
    assert submission.total_problems == 1
    assert submission.error_message == (
        f"The image archive was refused: The image is for '{OTHER_ARCH}'; the workers run "
        f"{engine_architecture()} (build with --platform linux/{engine_architecture()})."
    )
    used = quota(api, participant, competition)
    assert (used["daily"]["used"], used["total"]["used"]) == (0, 0)
    assert used["invalid_today"]["used"] == 1


def test_a_refusal_by_the_image_store_makes_the_submission_invalid(
    api, participant, competition, settings, monkeypatch
):
    submission_id = upload_for_other_arch(api, participant, competition, settings)
    archive = Path(Submission.objects.get(pk=submission_id).file.path)
    with archive.open("rb") as f:
        report = archive_check(f, max_bytes=LIMIT, architecture=engine_architecture())
    images = FakeImages(error=ImageRefused(report))
    monkeypatch.setattr(inference, "_engine_images", lambda runner: images)

    assert submission_score(submission_id=submission_id, scorer=InProcessScorer())

    assert_invalid_without_quota(api, participant, competition, submission_id)


@pytest.mark.docker
def test_an_image_the_worker_refuses_for_its_platform_is_invalid_and_costs_no_quota(
    api, participant, competition, settings, runner
):
    submission_id = upload_for_other_arch(api, participant, competition, settings)

    assert submission_score(submission_id=submission_id, runner=runner)

    assert_invalid_without_quota(api, participant, competition, submission_id)
    assert not Submission.objects.get(pk=submission_id).container_image  # nothing loaded


@pytest.mark.docker
def test_a_real_docker_save_archive_is_measured_at_about_its_image_size(
    docker_client, scorer_image, tmp_path
):
    base = h.slim_python_image(docker_client, scorer_image)
    tag = h.script_image(docker_client, base, "predict", h.PREDICT)
    archive = h.save_image(docker_client, tag, tmp_path / "predict.tar")
    size = docker_client.images.get(tag).attrs["Size"]

    started = time.perf_counter()
    with archive.open("rb") as f:
        report = archive_check(f, max_bytes=LIMIT, architecture=engine_architecture())
    elapsed = time.perf_counter() - started

    assert report.ok, report.problems
    assert 0.9 * size < report.unpacked_bytes < 1.2 * size
    assert elapsed < 2
