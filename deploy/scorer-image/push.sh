#!/usr/bin/env bash
# Push a scorer image to the OCI registry HELDOUT_IMAGE_REGISTRY and print its digest
# reference, <registry>/scorer@sha256:<64 hex>: what every worker host's
# HELDOUT_SCORER_IMAGE names (each pulls it once; docs/production.md).
#
# Usage: HELDOUT_IMAGE_REGISTRY=registry.example.org/heldout deploy/scorer-image/push.sh <local image>
#
# The last line printed on stdout is the digest reference; the rest goes to stderr.
set -euo pipefail

say() { echo "push.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

[ "$#" -eq 1 ] || die "usage: push.sh <local image, e.g. heldout-scorer:0123456789ab>"
local_ref="$1"
registry="${HELDOUT_IMAGE_REGISTRY:-}"
[ -n "$registry" ] || die "HELDOUT_IMAGE_REGISTRY is not set (e.g. 127.0.0.1:5000/heldout)"
registry="${registry%/}"
repository="$registry/scorer"
# The local tag (the content's first 12 hex digits) names the pushed tag too.
remote_ref="$repository:${local_ref##*:}"

docker tag "$local_ref" "$remote_ref"
say "pushing $remote_ref"
docker push "$remote_ref" >&2
# The digest the registry gave this push, from the image's RepoDigests for that repository.
digest_ref="$(docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$remote_ref" \
    | grep -F "$repository@sha256:" | head -n 1)"
[ -n "$digest_ref" ] || die "the engine recorded no digest for $repository after the push"
echo "$digest_ref"
