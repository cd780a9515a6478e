"""scoring.image_archive: what a `docker save` archive must be before the engine sees it."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import tarfile

import pytest

from scoring.image_archive import ArchiveReport, archive_check, archive_untagged
from tests.sandbox import hostile_images as h

LIMIT = 4 * 1024**2
RUNNABLE = h.layer({"app/run": b"#!/bin/sh\necho hi\n"})


def check(
    data: bytes, *, max_bytes: int = LIMIT, architecture: str | None = "amd64"
) -> ArchiveReport:
    return archive_check(io.BytesIO(data), max_bytes=max_bytes, architecture=architecture)


def codes(report: ArchiveReport) -> list[str]:
    return [p.code for p in report.problems]


def test_it_accepts_a_legacy_docker_save_archive_and_names_the_image_id():
    config = h.image_config([RUNNABLE], Cmd=["python3", "run.py"], WorkingDir="/app")

    report = check(h.legacy_archive([RUNNABLE], config=config, repo_tags=["mine:1"]))

    assert report.ok, report.problems
    assert report.image_id == f"sha256:{hashlib.sha256(config).hexdigest()}"
    assert report.command == ["python3", "run.py"]
    assert report.working_dir == "/app"
    assert report.layers == 1


def test_it_accepts_the_oci_layout_docker_25_writes():
    legacy = h.legacy_archive([RUNNABLE, h.layer({"data": b"x" * 100})])

    report = check(h.oci_archive(legacy))

    assert report.ok, report.problems
    assert report.image_id == check(legacy).image_id
    assert report.layers == 2


def test_it_accepts_a_gzipped_archive():
    report = check(h.legacy_archive([RUNNABLE], gz=True))

    assert report.ok, report.problems


def test_it_accepts_links_between_entries_inside_the_archive():
    # docker save writes a layer shared by two images once and links the second to it.
    entries, manifest = h.legacy_entries([RUNNABLE])
    manifest["Layers"].append("other/layer.tar")
    config = h.image_config([RUNNABLE, RUNNABLE])
    entries[-1] = h.file_entry(f"{hashlib.sha256(config).hexdigest()}.json", config)
    manifest["Config"] = entries[-1][0].name
    first = manifest["Layers"][0]
    entries += [h.dir_entry("other"), h.link_entry("other/layer.tar", f"../{first}")]
    entries.append(h.file_entry("manifest.json", json.dumps([manifest]).encode()))

    report = check(h.tar_bytes(entries))

    assert report.ok, report.problems


def test_it_refuses_an_archive_over_the_size_limit_without_reading_it():
    report = check(h.legacy_archive([h.layer({"big": os.urandom(200_000)})]), max_bytes=100_000)

    assert codes(report) == ["too_large"]
    assert "more than the limit of 97.66 KiB" in report.problems[0].message


def test_it_refuses_a_small_gzip_that_unpacks_past_the_limit():
    bomb = h.tar_bytes([h.file_entry("zeros", bytes(20 * 1024**2))], gz=True)
    assert len(bomb) < 100_000

    report = check(bomb, max_bytes=LIMIT)

    assert codes(report) == ["too_large_unpacked"]
    assert "unpacks to more than the limit of 4 MiB" in report.problems[0].message


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress])
def test_it_refuses_a_compressed_layer_that_unpacks_past_the_limit(compress):
    bomb_layer = compress(h.layer({"zeros": bytes(20 * 1024**2)}))
    assert len(bomb_layer) < 200_000

    report = check(h.legacy_archive([bomb_layer]))

    assert "too_large_unpacked" in codes(report)


def test_it_refuses_a_zstd_layer_it_cannot_measure():
    report = check(h.legacy_archive([b"\x28\xb5\x2f\xfd" + b"\0" * 100]))

    assert codes(report) == ["compression"]
    assert "zstd-compressed" in report.problems[0].message


def test_it_reports_every_problem_of_the_archive_at_once():
    extra = [
        h.file_entry("../../etc/cron.d/evil", b"* * * * * root sh\n"),
        h.file_entry("/tmp/heldout-absolute", b"x"),
        h.link_entry("escape", "/etc/passwd"),
        h.link_entry("sneaky/up", "../../../etc"),
        h.link_entry("hard", "/etc/shadow", hard=True),
        h.link_entry("hard-up", "../outside", hard=True),
        h.special_entry("dev/null"),
        h.special_entry("dev/sda", tarfile.BLKTYPE),
        h.special_entry("fifo", tarfile.FIFOTYPE),
    ]

    report = check(h.legacy_archive([RUNNABLE], extra=extra))

    assert codes(report) == [
        "path_escape",
        "path_escape",
        "link_escape",
        "link_escape",
        "link_escape",
        "link_escape",
        "special_file",
        "special_file",
        "special_file",
    ]
    messages = " | ".join(p.message for p in report.problems)
    assert "'../../etc/cron.d/evil' points outside the archive" in messages
    assert "'/tmp/heldout-absolute' points outside the archive" in messages
    assert "'escape' is a symbolic link to '/etc/passwd', outside the archive" in messages
    assert "'sneaky/up' is a symbolic link to '../../../etc'" in messages
    assert "'hard' is a hard link to '/etc/shadow'" in messages
    assert "'dev/null' is a character device" in messages
    assert "'dev/sda' is a block device" in messages
    assert "'fifo' is a named pipe" in messages


def test_it_refuses_an_entry_named_twice():
    # Two entries with one name: a checker and an engine could each read a different one.
    extra = [h.file_entry("manifest.json", b"[]")]

    report = check(h.legacy_archive([RUNNABLE], extra=extra))

    assert "duplicate" in codes(report)


def test_it_refuses_random_bytes():
    report = check(os.urandom(10_000))

    assert codes(report) == ["not_tar"]
    assert "not a readable tar archive" in report.problems[0].message


def test_it_refuses_an_empty_file():
    assert "empty" in codes(check(b""))


def test_it_refuses_a_tar_without_a_manifest():
    report = check(h.tar_bytes([h.file_entry("predictions.csv", b"id,label\n1,0\n")]))

    assert codes(report) == ["no_manifest"]
    assert "not an image saved with `docker save`" in report.problems[0].message


def test_it_refuses_an_oci_layout_without_the_docker_manifest():
    oci = h.oci_archive(h.legacy_archive([RUNNABLE]))
    with tarfile.open(fileobj=io.BytesIO(oci)) as tar:
        entries = [
            (i, tar.extractfile(i).read() if i.isreg() else None)  # type: ignore[union-attr]
            for i in tar
            if i.name != "manifest.json"
        ]

    report = check(h.tar_bytes(entries))

    assert codes(report) == ["no_manifest"]
    assert "OCI layout without manifest.json" in report.problems[0].message


def test_it_refuses_two_images_in_one_archive():
    other = h.layer({"app/run": b"#!/bin/sh\necho other\n"})
    both = h.merged_archive(h.legacy_archive([RUNNABLE]), h.legacy_archive([other]))

    report = check(both)

    assert codes(report) == ["several_images"]
    assert "holds 2 images; save exactly one" in report.problems[0].message


def test_it_refuses_an_oci_index_listing_two_images():
    oci = h.oci_archive(h.legacy_archive([RUNNABLE]))
    with tarfile.open(fileobj=io.BytesIO(oci)) as tar:
        entries = []
        for info in tar:
            data = tar.extractfile(info).read() if info.isreg() else None  # type: ignore[union-attr]
            if info.name == "index.json":
                index = json.loads(data)
                index["manifests"] *= 2
                info, data = h.file_entry("index.json", json.dumps(index).encode())
            entries.append((info, data))

    assert codes(check(h.tar_bytes(entries))) == ["several_images"]


def test_it_refuses_a_manifest_naming_missing_layers_and_config():
    entries, manifest = h.legacy_entries([RUNNABLE])
    manifest["Layers"].append("nowhere/layer.tar")
    manifest["Config"] = "missing.json"
    entries.append(h.file_entry("manifest.json", json.dumps([manifest]).encode()))

    report = check(h.tar_bytes(entries))

    assert codes(report) == ["missing_layer", "missing_config"]


def test_it_refuses_a_config_that_does_not_match_its_digest():
    entries, manifest = h.legacy_entries([RUNNABLE])
    config = json.loads(entries[-1][1])
    config["config"]["Cmd"] = ["evil"]
    entries[-1] = h.file_entry(entries[-1][0].name, json.dumps(config).encode())
    entries.append(h.file_entry("manifest.json", json.dumps([manifest]).encode()))

    assert codes(check(h.tar_bytes(entries))) == ["corrupt"]


def test_it_refuses_a_manifest_that_is_not_json():
    entries, _ = h.legacy_entries([RUNNABLE])
    entries.append(h.file_entry("manifest.json", b"[{not json"))

    assert codes(check(h.tar_bytes(entries))) == ["bad_manifest"]


@pytest.mark.parametrize(
    ("settings", "code", "words"),
    [
        ({"Volumes": {"/data": {}}}, "volume", "declares VOLUME ['/data']"),
        ({"Entrypoint": ["/entry.sh"]}, "entrypoint", "add `ENTRYPOINT []`"),
        ({"Cmd": None}, "no_command", "has no CMD"),
        ({"os": "windows"}, "platform", "is for 'windows'"),
        ({"architecture": "arm64"}, "platform", "build with --platform linux/amd64"),
    ],
)
def test_it_refuses_image_settings_the_sandbox_cannot_honour(settings, code, words):
    config = h.image_config([RUNNABLE], **settings)

    report = check(h.legacy_archive([RUNNABLE], config=config))

    assert codes(report) == [code]
    assert words in report.problems[0].message


def test_it_leaves_the_architecture_to_the_worker_when_not_given():
    config = h.image_config([RUNNABLE], architecture="arm64")

    assert check(h.legacy_archive([RUNNABLE], config=config), architecture=None).ok


@pytest.mark.parametrize("gz", [False, True])
def test_it_refuses_an_archive_cut_short(gz):
    data = h.legacy_archive([h.layer({"big": os.urandom(2 * 1024**2)})], gz=gz)

    report = check(data[: len(data) * 3 // 4])

    assert codes(report) == ["truncated"]
    assert "cut short" in report.problems[0].message


def test_the_load_stream_drops_every_image_name_and_keeps_the_rest():
    legacy = h.legacy_archive(
        [RUNNABLE],
        repo_tags=["heldout-scorer:latest"],
        extra=[h.file_entry("repositories", b'{"heldout-scorer": {"latest": "x"}}')],
    )
    for archive in (legacy, gzip.compress(legacy), h.oci_archive(legacy)):
        stream = b"".join(archive_untagged(io.BytesIO(archive)))

        with tarfile.open(fileobj=io.BytesIO(stream)) as tar:
            files = {i.name: tar.extractfile(i).read() for i in tar if i.isreg()}  # type: ignore[union-attr]
        assert "repositories" not in files
        assert json.loads(files["manifest.json"])[0]["RepoTags"] is None
        assert b"heldout-scorer" not in b"".join(files.values())
        if "index.json" in files:
            assert b"io.containerd.image.name" not in files["index.json"]
        assert RUNNABLE in files.values()
        assert check(stream).image_id == check(legacy).image_id
