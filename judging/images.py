"""Submission images on the worker's Docker engine: loading them and collecting them.

A container submission's archive stays in private storage for good; the image loaded from
it is a cache. `DockerImages.ensure` loads the archive when its tag is missing (first run,
rescore, replication, or after collection), so `images_gc` may remove any image that is not
about to run. docs/containers.md states the policy.

On an engine that several deployments share, a deployment's submission images are those
of its own repository, `heldout-submission-<HELDOUT_DEPLOYMENT_ID>`: a loaded image keeps
the id its archive gives it (a label would change it), so the name says whose it is, and
`images_gc` lists that repository only. Built images and every container made here also
carry the heldout.deployment label.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import docker
import docker.errors
import requests.exceptions

from scoring.image_archive import ArchiveReport, archive_check
from scoring.image_checks import dockerfile_check, engine_architecture
from scoring.image_identity import DIGEST_REFERENCE
from scoring.image_registry import image_pull, image_push
from scoring.image_untag import archive_untagged
from scoring.sandbox import SandboxError, SandboxUnavailable
from scoring.sandbox_labels import DEPLOYMENT_LABEL, SANDBOX_LABEL, STARTED_LABEL

log = logging.getLogger(__name__)
SUBMISSION_REPOSITORY = "heldout-submission"


@dataclass(frozen=True)
class LoadedImage:
    tag: str
    digest: str  # the image id, sha256:...
    size: int
    command: list[str] = field(default_factory=list)
    working_dir: str = "/"
    # Where other worker hosts pull it (repo@sha256:...), when pushed to a registry.
    pushed: str = ""


class ImageStore(Protocol):
    def ensure(
        self,
        *,
        tag: str,
        archive: Path,
        digest: str = "",
        build_bases: Collection[str] | None = None,
        pushed: str = "",
    ) -> LoadedImage: ...


class ImageRefused(SandboxError):
    """The worker refused the archive for a reason of the archive itself (what the upload
    checks too): the submission is invalid, which costs no quota, not failed."""

    def __init__(self, report: ArchiveReport) -> None:
        super().__init__(f"The image archive was refused: {report.summary()}")
        self.problems = [p.to_dict() for p in report.problems]


def submission_repository(*, deployment: str | None = None) -> str:
    """The repository of a deployment's submission images (default: this one's)."""
    from django.conf import settings

    return f"{SUBMISSION_REPOSITORY}-{deployment or settings.HELDOUT_DEPLOYMENT_ID}"


def submission_image_tag(*, submission_id: int, sha256: str) -> str:
    """Unique per submission and archive, also across deployments sharing an engine."""
    return f"{submission_repository()}:{submission_id}-{sha256[:16]}"


class DockerImages:
    """ImageStore on a Docker engine: checks an archive, loads it untagged, tags it."""

    def __init__(
        self,
        client: docker.DockerClient,
        *,
        max_bytes: int,
        deployment: str = "",
        registry: str = "",
    ) -> None:
        self.client = client
        self.max_bytes = max_bytes
        # HELDOUT_IMAGE_REGISTRY: where loaded images are pushed and pulled (image_registry).
        self.registry = registry
        # Labels what it builds and the containers it makes.
        self.labels = {DEPLOYMENT_LABEL: deployment} if deployment else {}

    def ensure(
        self,
        *,
        tag: str,
        archive: Path,
        digest: str = "",
        build_bases: Collection[str] | None = None,
        pushed: str = "",
    ) -> LoadedImage:
        """The image `tag`, loaded from `archive` unless already there with `digest`.

        With `build_bases`, the archive may instead be a build context, built offline
        FROM one of them. With a registry, `pushed` (the reference another host recorded)
        is pulled instead of loading the archive, and an image this call loads is pushed;
        the result's `pushed` says where. Raises SandboxError when the archive is refused
        (the participant's to fix), and SandboxUnavailable when the engine fails (to retry).
        """
        with _engine_errors():
            existing = _get(self.client, tag)
            if existing is None and self.registry and pushed and digest:
                arch = engine_architecture()
                pulled = image_pull(
                    self.client, reference=pushed, image_id=digest, architecture=arch, tag=tag
                )
                existing = self.client.images.get(tag) if pulled else None
            if existing is not None and (not digest or existing.id == digest):
                return self._with_push(_loaded(tag, existing), pushed)
            image = self._from_archive(archive, build_bases)
            try:
                _check_shell(self.client, image.id, self.labels)
            except SandboxError:
                # Only an untagged image: a tagged one with these bytes is someone else's
                # (removing the id would drop its only tag).
                with suppress(docker.errors.APIError):
                    if not self.client.images.get(image.id).tags:
                        self.client.images.remove(image.id)
                raise
            # Tagged last: a tag found on the engine names an image that passed every check.
            image.tag(*tag.split(":", 1))
            return self._with_push(_loaded(tag, self.client.images.get(tag)), "")

    def _from_archive(self, archive: Path, build_bases: Collection[str] | None):
        """The image the checked archive loads (or builds); raises ImageRefused."""
        with archive.open("rb") as f:
            report = archive_check(
                f,
                max_bytes=self.max_bytes,
                architecture=engine_architecture(),
                accept_build_context=build_bases is not None,
            )
            if report.ok and report.kind == "build_context":
                dockerfile_check(report, bases=build_bases or ())
            if not report.ok:
                raise ImageRefused(report)
            if report.kind == "build_context":
                return self._build(f, report)
            return self._load(f, report.image_id)

    def _with_push(self, image: LoadedImage, pushed: str) -> LoadedImage:
        """`image`, pushed to the registry unless it is there already (`pushed`)."""
        if not self.registry or pushed:
            return dataclasses.replace(image, pushed=pushed)
        reference = image_push(
            self.client, image_id=image.digest, registry=self.registry, tag=image.tag
        )
        return dataclasses.replace(image, pushed=reference)

    def _build(self, f, report: ArchiveReport):
        """Build a checked context: no network, nothing pulled, nothing run (no RUN)."""
        for base in report.bases:
            if _get(self.client, base) is None:
                if not DIGEST_REFERENCE.fullmatch(base):
                    raise SandboxUnavailable(f"the base image {base} is not on this Docker engine")
                # A platform image named by registry digest: pulled here once, like the
                # scorer (a registry that fails is retried, as an engine failure).
                self.client.images.pull(base)
        f.seek(0)
        try:
            image, _log = self.client.images.build(
                fileobj=f,
                custom_context=True,
                encoding="gzip" if report.gzipped else None,
                network_mode="none",
                pull=False,
                rm=True,
                forcerm=True,
                labels=self.labels,
            )
        except docker.errors.BuildError as exc:
            raise SandboxError(f"The image could not be built: {exc.msg}") from exc
        return image

    def _load(self, f, image_id: str):
        try:
            loaded = self.client.images.load(archive_untagged(f))
        except (docker.errors.APIError, docker.errors.ImageLoadError) as exc:
            # The archive passed the checks, so what the engine still refuses (a layer
            # that does not match its digest, say) is the archive's fault, but a full disk.
            message = str(getattr(exc, "explanation", None) or exc)
            if "no space left" in message:
                raise SandboxUnavailable(f"the Docker engine is out of disk: {message}") from exc
            raise SandboxError(f"Docker could not load the image: {message}") from exc
        for image in loaded:
            if image.id == image_id:
                return image
        # The engine made an image other than the one checked: never run it.
        raise SandboxError("Docker loaded a different image than the archive's manifest names.")


def _get(client: docker.DockerClient, tag: str):
    try:
        return client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None


def _loaded(tag: str, image) -> LoadedImage:
    config = image.attrs.get("Config") or {}
    return LoadedImage(
        tag=tag,
        digest=str(image.id),
        size=int(image.attrs.get("Size") or 0),
        command=list(config.get("Cmd") or []),
        working_dir=config.get("WorkingDir") or "/",
    )


def _check_shell(client: docker.DockerClient, image: str, labels: dict[str, str]) -> None:
    """The sandbox starts every command through /bin/sh; without one the start fails in a
    way that looks like an engine error. Checked in a created, never started, container."""
    container = client.containers.create(
        image,
        command=["/bin/sh"],
        network_mode="none",
        labels={**labels, SANDBOX_LABEL: "1", STARTED_LABEL: f"{time.time():.0f}"},
    )
    try:
        path = "/bin/sh"
        for _ in range(5):  # follow links, as exec would
            stream, info = container.get_archive(path)
            with suppress(Exception):
                stream.close()
            target = info.get("linkTarget") or ""
            if not target:
                return
            path = target if target.startswith("/") else str(Path(path).parent / target)
    except docker.errors.NotFound as exc:
        raise SandboxError(
            "The image has no /bin/sh, which the sandbox starts the command with; build it "
            "on a base image that has one."
        ) from exc
    finally:
        with suppress(docker.errors.NotFound):  # a worker's start-up clean-up got it first
            container.remove(force=True)


def images_gc(
    *,
    keep: set[str],
    client: docker.DockerClient | None = None,
    repository: str | None = None,
) -> int:
    """Remove the submission images whose tag is not in `keep`. Returns how many went.

    Only tags of `repository` (default: this deployment's) are ever removed; an image that
    other tags still name stays. An image in use by a container is left for the next
    round. Without an engine (the demo without Docker) there is nothing to collect.
    """
    repository = repository or submission_repository()
    try:
        client = client or docker.from_env()
        images = client.images.list(name=repository)
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        log.info("no Docker engine to collect images on: %s", exc)
        return 0
    removed = 0
    for image in images:
        for tag in image.tags:
            if not tag.startswith(f"{repository}:") or tag in keep:
                continue
            try:
                client.images.remove(tag)
                removed += 1
            except docker.errors.NotFound:
                pass  # another worker removed it meanwhile
            except docker.errors.APIError as exc:
                log.info("image %s kept for now: %s", tag, exc)
    return removed


def images_to_keep(*, top_n: int) -> set[str]:
    """Tags of the images the policy keeps: work waiting or running, replications pending,
    selected submissions, and each leaderboard's top rows (at least `top_n`, or the
    competition's `replicate_top_n`)."""
    from django.db.models import Q

    from competitions.models import Competition, LeaderboardEntry, Replication, Submission

    containers = Submission.objects.filter(kind="container")
    busy = Replication.objects.filter(
        status__in=[Replication.Status.QUEUED, Replication.Status.RUNNING]
    ).values("submission_id")
    wanted = containers.filter(
        Q(status__in=[Submission.Status.QUEUED, Submission.Status.RUNNING])
        | Q(is_selected=True)
        | Q(pk__in=busy)
    )
    ids = set(wanted.values_list("pk", flat=True))
    for competition in Competition.objects.filter(submissions__kind="container").distinct():
        count = max(top_n, competition.replicate_top_n)
        for split in ("public", "private"):
            top = LeaderboardEntry.objects.filter(competition=competition, split=split).order_by(
                "-sort_key", "submitted_at", "team_id"
            )[:count]
            ids.update(top.values_list("submission_id", flat=True))
    rows = containers.filter(pk__in=ids).values_list("pk", "sha256")
    return {submission_image_tag(submission_id=pk, sha256=sha) for pk, sha in rows}


@dataclass
class FakeImages:
    """An ImageStore for service tests: records calls, raises `error` if set."""

    image: LoadedImage | None = None
    error: Exception | None = None
    calls: list[tuple[str, Path, str]] = field(default_factory=list)
    build_bases: Collection[str] | None = None  # as last given

    def ensure(
        self,
        *,
        tag: str,
        archive: Path,
        digest: str = "",
        build_bases: Collection[str] | None = None,
        pushed: str = "",
    ) -> LoadedImage:
        self.calls.append((tag, archive, digest))
        self.build_bases = build_bases
        if self.error is not None:
            raise self.error
        return self.image or LoadedImage(tag=tag, digest="sha256:fake", size=1, command=["run"])


@contextmanager
def _engine_errors() -> Iterator[None]:
    """Engine failures become SandboxUnavailable (retry); SandboxError passes through."""
    try:
        yield
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise SandboxUnavailable(f"the Docker engine failed: {exc}") from exc
