"""A scorer image's identity: the same on every host for the same scorer.

`scorer_identity_of` reads it from an image's `docker image inspect` attributes (and the
reference it was run by); DIGEST_REFERENCE recognises an image named by its registry
digest. Nothing here talks to an engine.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

# Set by deploy/scorer-image/build.sh: a sha256 over everything the image was built from.
SCORER_CONTENT_LABEL = "org.heldout.scorer.content"
# The parts of an image's config that change what a run does (scorer_identity_of).
_BEHAVIOUR_FIELDS = ("Env", "Cmd", "Entrypoint", "User", "WorkingDir")
# An image named by its registry digest, repo@sha256:<64 hex>: the same bytes on every host.
DIGEST_REFERENCE = re.compile(r"(?P<repository>[^@\s]+)@(?P<digest>sha256:[0-9a-f]{64})")


def scorer_identity_of(attrs: Mapping[str, Any], *, reference: str = "") -> str:
    """A scorer image's identity from its `docker image inspect` attributes: the same on
    every host for the same scorer, never the local image id (each build of the same
    inputs gets its own id, since the build stamps the time).

    An image run by its registry digest (`reference` is repo@sha256:...) is that digest:
    every host pulls those very bytes. Otherwise, in order: the content digest the
    platform's build records as a label; else the registry digest (the image was pulled);
    else a sha256 over the filesystem layers' diff ids and the config fields that change
    behaviour. docs/scorers.md says why the first two never disagree across hosts.
    """
    pinned = DIGEST_REFERENCE.fullmatch(reference)
    if pinned:
        return pinned.group("digest")
    config = attrs.get("Config") or {}
    label = (config.get("Labels") or {}).get(SCORER_CONTENT_LABEL)
    if label:
        return str(label)
    repo_digests = sorted(attrs.get("RepoDigests") or [])
    if repo_digests:
        return repo_digests[0].rpartition("@")[2]
    content = {
        "layers": list((attrs.get("RootFS") or {}).get("Layers") or []),
        **{name: config.get(name) for name in _BEHAVIOUR_FIELDS},
    }
    encoded = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(encoded).hexdigest()
