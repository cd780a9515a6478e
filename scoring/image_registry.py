"""Submission images through an OCI registry, for worker hosts that share nothing.

Contract: the archive stays the source of truth. The worker that first loads a
submission's archive pushes the checked image as `<registry>/submissions:<tag>` and records
the registry's digest reference (repo@sha256:...); a worker on another host pulls that
reference instead of loading the archive, keeps it only if it is the very image that was
checked (the same image id, for its own architecture), and otherwise loads the archive as
before. A registry that fails costs nothing: the push is skipped, the pull falls back.

On the engine, only the submission repository's tag stays: the registry's tag and digest
references are removed again after a push or a pull, so images_gc collects as before.
Nothing here imports Django.
"""

from __future__ import annotations

import logging
from contextlib import suppress

import docker
import docker.errors
import requests.exceptions

log = logging.getLogger(__name__)
REGISTRY_REPOSITORY = "submissions"
_FAILURES = (docker.errors.DockerException, requests.exceptions.RequestException)


def registry_tag(*, registry: str, tag: str) -> str:
    """`<registry>/submissions:<tag's name part>` for the local tag `repo:<id>-<sha prefix>`."""
    return f"{registry.rstrip('/')}/{REGISTRY_REPOSITORY}:{tag.rpartition(':')[2]}"


def image_push(client: docker.DockerClient, *, image_id: str, registry: str, tag: str) -> str:
    """Push the image `image_id` to the registry; its repo@sha256 reference, or "" when the
    registry failed (logged; the next host loads the archive instead)."""
    remote = registry_tag(registry=registry, tag=tag)
    repository, _, name = remote.rpartition(":")
    try:
        client.images.get(image_id).tag(repository, name)
        try:
            # The low-level call: it reports a failed push in its stream, not as an error.
            for line in client.api.push(repository, name, stream=True, decode=True):
                if "error" in line:
                    raise docker.errors.APIError(str(line["error"]))
            digests = client.images.get(image_id).attrs.get("RepoDigests") or []
        finally:
            _forget(client, remote)
    except _FAILURES as exc:
        log.warning("could not push %s to %s: %s", tag, repository, exc)
        return ""
    reference = next((d for d in digests if d.startswith(f"{repository}@sha256:")), "")
    _forget(client, reference)
    return reference


def image_pull(
    client: docker.DockerClient, *, reference: str, image_id: str, architecture: str, tag: str
) -> bool:
    """Pull `reference` and tag it `tag` when it is `image_id` for `architecture`. False
    when the registry failed or it is another image (then removed again)."""
    try:
        image = client.images.pull(reference)
    except _FAILURES as exc:
        log.warning("could not pull %s, loading its archive instead: %s", reference, exc)
        return False
    same = image.id == image_id and image.attrs.get("Architecture") == architecture
    if same:
        image.tag(*tag.split(":", 1))  # before the reference goes: the image must keep a name
    else:
        log.warning("%s is not the checked image %s; loading its archive", reference, image_id)
    _forget(client, reference)
    return same


def _forget(client: docker.DockerClient, reference: str) -> None:
    """Remove one reference; an image other references name stays (never forced)."""
    if reference:
        with suppress(*_FAILURES):
            client.images.remove(reference)
