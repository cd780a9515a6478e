#!/usr/bin/env bash
# `make scorer-image`: build the scorer image; with HELDOUT_IMAGE_REGISTRY set, push it
# too. The last stdout line is what workers' HELDOUT_SCORER_IMAGE names: the local tag
# (one machine, the default) or the registry digest reference (several worker hosts).
set -euo pipefail
recipe_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
image="$(bash "$recipe_dir/build.sh" "$@" | tail -n 1)"
if [ -n "${HELDOUT_IMAGE_REGISTRY:-}" ]; then
    bash "$recipe_dir/push.sh" "$image" | tail -n 1
else
    echo "$image"
fi
