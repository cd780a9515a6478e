"""scoring.image_archive: what a `docker save` archive must be before the engine sees it;
judging.images: build contexts, and loading and collecting images on a real engine."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import tarfile
from pathlib import Path

import docker
import pytest

from judging.images import DockerImages, images_gc
from scoring.image_archive import ArchiveReport, archive_check
from scoring.image_checks import dockerfile_check
from scoring.image_untag import archive_untagged
from scoring.sandbox import SandboxError, SandboxUnavailable
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
                assert data is not None
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
    config_bytes = entries[-1][1]
    assert config_bytes is not None
    config = json.loads(config_bytes)
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


# --- Loading and collecting on a real engine ---------------------------------------------


@pytest.fixture(scope="module")
def predict_archive(docker_client, scorer_image, tmp_path_factory) -> Path:
    base = h.slim_python_image(docker_client, scorer_image)
    tag = h.script_image(docker_client, base, "predict", h.PREDICT)
    return h.save_image(docker_client, tag, tmp_path_factory.mktemp("predict") / "predict.tar")


@pytest.fixture
def test_repository(docker_client):
    """A repository of its own, so collection in a test touches no other image."""
    repository = f"heldout-submission-test-{id(object()):x}"
    yield repository
    images_gc(keep=set(), client=docker_client, repository=repository)


@pytest.mark.docker
@pytest.mark.parametrize("layout", ["legacy", "gzip", "oci"])
def test_an_image_loads_from_each_archive_layout_under_its_own_tag(
    docker_client, predict_archive, tmp_path, layout, test_repository
):
    data = predict_archive.read_bytes()
    data = {"legacy": data, "gzip": gzip.compress(data, 1), "oci": h.oci_archive(data)}[layout]
    archive = tmp_path / "image.tar"
    archive.write_bytes(data)
    tag = f"{test_repository}:1-{layout}"

    image = DockerImages(docker_client, max_bytes=2**32).ensure(tag=tag, archive=archive)

    with predict_archive.open("rb") as f:
        checked = archive_check(f, max_bytes=2**32)
    assert image.tag == tag
    assert image.digest == checked.image_id == docker_client.images.get(tag).id
    assert image.command == ["python3", "run.py"]
    assert image.working_dir == "/app"
    assert image.size > 30 * 1024**2


@pytest.mark.docker
def test_an_image_without_a_shell_is_refused_and_removed(docker_client, tmp_path, test_repository):
    archive = tmp_path / "noshell.tar"
    archive.write_bytes(h.legacy_archive([h.layer({"app/run": b"x"})]))
    tag = f"{test_repository}:noshell"

    with pytest.raises(SandboxError, match="has no /bin/sh"):
        DockerImages(docker_client, max_bytes=2**32).ensure(tag=tag, archive=archive)

    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(tag)
    with archive.open("rb") as f:
        image_id = archive_check(f, max_bytes=2**32).image_id
    with pytest.raises(docker.errors.ImageNotFound):  # loaded, found wanting, removed
        docker_client.images.get(image_id)


@pytest.mark.docker
def test_a_loaded_image_is_reused_and_a_tag_moved_elsewhere_is_loaded_again(
    docker_client, predict_archive, scorer_image, test_repository
):
    images = DockerImages(docker_client, max_bytes=2**32)
    tag = f"{test_repository}:reuse"
    first = images.ensure(tag=tag, archive=predict_archive)
    docker_client.images.get(scorer_image).tag(test_repository, "reuse")  # someone moved the tag

    again = images.ensure(tag=tag, archive=predict_archive, digest=first.digest)

    assert again.digest == first.digest
    assert docker_client.images.get(tag).id == first.digest
    assert images.ensure(tag=tag, archive=Path("/nonexistent"), digest=first.digest) == again


@pytest.mark.docker
def test_collection_removes_the_images_not_kept_and_only_those(
    docker_client, predict_archive, test_repository
):
    images = DockerImages(docker_client, max_bytes=2**32)
    kept, dropped = f"{test_repository}:1-kept", f"{test_repository}:2-dropped"
    images.ensure(tag=kept, archive=predict_archive)
    images.ensure(tag=dropped, archive=predict_archive)

    removed = images_gc(keep={kept}, client=docker_client, repository=test_repository)

    assert removed == 1
    assert docker_client.images.get(kept).tags
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(dropped)
    assert images_gc(keep={kept}, client=docker_client, repository=test_repository) == 0


@pytest.mark.docker
def test_an_archive_the_engine_refuses_is_the_submissions_fault_not_a_retry(
    docker_client, tmp_path, test_repository
):
    # Passes every check, but the layer is not the one the config's diff_ids name.
    config = h.image_config([RUNNABLE])
    archive = tmp_path / "mismatch.tar"
    archive.write_bytes(h.legacy_archive([h.layer({"other": b"x"})], config=config))

    with pytest.raises(SandboxError, match="Docker could not load the image: invalid diffID"):
        DockerImages(docker_client, max_bytes=2**32).ensure(
            tag=f"{test_repository}:mismatch", archive=archive
        )


# --- Build contexts ----------------------------------------------------------------------------

BASES = ["heldout-scorer:latest"]
GOOD = 'FROM heldout-scorer:latest\nCOPY run.py model.bin /app/\nWORKDIR /app\nCMD ["python", "run.py"]\n'


def context(dockerfile: str, *, gz: bool = False, extra: tuple = ()) -> bytes:
    entries = [
        h.file_entry("Dockerfile", dockerfile.encode()),
        h.file_entry("run.py", h.PREDICT_ONLY.encode()),
        h.file_entry("model.bin", b"\0" * 100),
        *extra,
    ]
    return h.tar_bytes(entries, gz=gz)


def check_context(data: bytes, bases: list[str] = BASES) -> ArchiveReport:
    report = archive_check(io.BytesIO(data), max_bytes=LIMIT, accept_build_context=True)
    if report.ok and report.kind == "build_context":
        dockerfile_check(report, bases=bases)
    return report


@pytest.mark.parametrize("gz", [False, True])
def test_a_build_context_on_a_platform_image_passes(gz):
    report = check_context(context(GOOD, gz=gz))

    assert report.ok, report.problems
    assert report.kind == "build_context"
    assert report.bases == ["heldout-scorer:latest"]


@pytest.mark.parametrize(
    "dockerfile",
    [
        'FROM heldout-scorer\nCMD ["python", "run.py"]\n',  # the implicit :latest
        "# a comment\n\nFROM heldout-scorer:latest AS model\nCOPY model.bin /m/\n"
        "FROM heldout-scorer:latest\nCOPY --from=model --chown=65534 /m /app/\n"
        "ENV A=1 \\\n    B=2\nLABEL x=y\nUSER 65534\nEXPOSE 80\nCMD python run.py\n",
    ],
    ids=["implicit-latest", "two-stages"],
)
def test_a_build_context_may_use_stages_and_harmless_instructions(dockerfile):
    report = check_context(context(dockerfile))

    assert report.ok, report.problems


@pytest.mark.parametrize(
    ("dockerfile", "words"),
    [
        ("RUN pip install torch", "line 2: RUN is not allowed: nothing may run"),
        (
            'ENTRYPOINT ["python"]',
            "line 2: ENTRYPOINT is not allowed: put the whole command in CMD",
        ),
        ("VOLUME /data", "VOLUME is not allowed"),
        ("ARG X=1", "ARG is not allowed"),
        ("HEALTHCHECK CMD true", "HEALTHCHECK is not allowed"),
        ("FROM python:3.11-slim", "FROM python:3.11-slim is not an image the platform offers"),
        ("FROM --platform=linux/arm64 heldout-scorer:latest", "without options or variables"),
        ("FROM $BASE", "without options or variables"),
        ("ADD https://example.org/model.bin /app/", "ADD may not fetch URLs"),
        ("COPY --from=alpine:3 /bin/busybox /bin/", "--from=alpine:3 names no earlier stage"),
        ("COPY --chmod=4755 run.py /app/", "option --chmod is not supported"),
        ("FROBNICATE now", "unknown instruction FROBNICATE"),
        ("COPY run.py \\\n  # a comment inside\n  /app/\nRUN id", "line 5: RUN is not allowed"),
    ],
)
def test_a_build_context_refuses_what_would_run_fetch_or_escape(dockerfile, words):
    report = check_context(
        context(f"FROM heldout-scorer:latest\n{dockerfile}\nCMD python run.py\n")
    )

    messages = " | ".join(p.message for p in report.problems)
    assert words in messages, messages


def test_a_build_context_reports_every_problem_of_its_dockerfile():
    dockerfile = 'LABEL a=b\nFROM ubuntu\nRUN make\nENTRYPOINT ["x"]\n'

    report = check_context(context(dockerfile))

    assert [p.message.split(":")[0] for p in report.problems] == [
        "The Dockerfile must start with FROM.",
        "Dockerfile line 2",
        "Dockerfile line 3",
        "Dockerfile line 4",
        "The Dockerfile has no CMD",
    ]


def test_a_build_context_is_checked_entry_by_entry_like_an_image():
    report = check_context(context(GOOD, extra=(h.link_entry("model.bin2", "/etc/shadow"),)))

    assert [p.code for p in report.problems] == ["link_escape"]


def test_a_build_context_is_refused_where_the_phase_takes_images_only():
    report = check(context(GOOD))

    assert [p.code for p in report.problems] == ["no_manifest"]
    assert (
        "build context (a Dockerfile), which this phase does not accept"
        in report.problems[0].message
    )


@pytest.mark.docker
def test_a_build_context_is_built_offline_on_the_platform_image(
    docker_client, scorer_image, tmp_path, test_repository
):
    archive = tmp_path / "context.tar.gz"
    archive.write_bytes(context(GOOD.replace("heldout-scorer:latest", scorer_image), gz=True))
    tag = f"{test_repository}:context"

    image = DockerImages(docker_client, max_bytes=2**32).ensure(
        tag=tag, archive=archive, build_bases=[scorer_image]
    )

    assert image.command == ["python", "run.py"]
    assert image.working_dir == "/app"
    built = docker_client.images.get(tag).attrs["RootFS"]["Layers"]
    base = docker_client.images.get(scorer_image).attrs["RootFS"]["Layers"]
    assert built[: len(base)] == base  # the platform image's layers, then the context's


@pytest.mark.docker
def test_a_build_context_that_does_not_build_is_the_submissions_fault(
    docker_client, scorer_image, tmp_path, test_repository
):
    archive = tmp_path / "context.tar"
    dockerfile = f'FROM {scorer_image}\nCOPY missing.txt /app/\nCMD ["python"]\n'
    archive.write_bytes(context(dockerfile))

    with pytest.raises(SandboxError, match=r"The image could not be built: .*missing\.txt"):
        DockerImages(docker_client, max_bytes=2**32).ensure(
            tag=f"{test_repository}:broken", archive=archive, build_bases=[scorer_image]
        )


@pytest.mark.docker
def test_a_build_context_on_a_base_missing_from_this_engine_is_retried_not_blamed(
    docker_client, tmp_path, test_repository
):
    archive = tmp_path / "context.tar"
    archive.write_bytes(context(GOOD.replace("heldout-scorer:latest", "heldout-absent:1")))

    with pytest.raises(SandboxUnavailable, match="heldout-absent:1 is not on this Docker engine"):
        DockerImages(docker_client, max_bytes=2**32).ensure(
            tag=f"{test_repository}:absent", archive=archive, build_bases=["heldout-absent:1"]
        )
