#!/usr/bin/env bash
# Build the scorer sandbox image, heldout-scorer:<tag>, without an image registry.
#
# Usage: deploy/scorer-image/build.sh [--base-only] [--dockerfile]
#
# Two stages, so that a change to the scoring code rebuilds in seconds:
#   1. heldout-scorer-base:<base tag>: a Debian bookworm minbase rootfs made
#      with debootstrap, Debian's python3 (3.11) and a venv holding numpy,
#      pandas, pyarrow, scikit-learn and scipy at exactly the versions (and
#      hashes) pinned in requirements.lock, imported with `docker import`.
#   2. heldout-scorer:<tag>: the base plus the pure scoring modules copied to
#      /opt/heldout/scoring (docker create + docker cp + docker commit).
# Each tag is the first 12 hex digits of a sha256 over what went into it (this
# recipe, the pins, and for the final image the scoring modules), so an image
# that already exists is reused and CI rebuilds only when one of those changes.
# The final image carries the full digest as the label org.heldout.scorer.content
# (docs/scorers.md: what identifies a scorer). The image is also tagged heldout-scorer:latest. The last line printed on
# stdout is always the final image reference.
#
# --dockerfile builds stage 1 from the Dockerfile next to this script instead
# (needs a registry that serves python:3.11-slim-bookworm; production only).
#
# Needs root (debootstrap, chroot), a running engine (deploy/dockerd.sh) and
# access to deb.debian.org and PyPI. Downloads are cached in var/cache/.
set -euo pipefail

recipe_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$recipe_dir/../.." && pwd)"
lock_file="$repo_root/requirements.lock"
cache_dir="$repo_root/var/cache/scorer-image"
work_root="$repo_root/var/tmp"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
python_for_pip="${PYTHON:-$repo_root/.venv/bin/python}"
[ -x "$python_for_pip" ] || python_for_pip="python3"

# The libraries the scoring code imports; what they need comes from the lock.
scoring_libraries=(numpy pandas pyarrow scikit-learn scipy)
scoring_modules=(spec.py metrics.py influence.py tables.py validation.py evaluate.py cli.py warm_server.py)
venv=/opt/heldout/venv
# Read by scoring.sandbox.scorer_identity; keep the two in step.
content_label=org.heldout.scorer.content
image_env=(
    --change "ENV PATH=$venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    --change "ENV PYTHONPATH=/opt/heldout"
    --change "ENV PYTHONDONTWRITEBYTECODE=1"
    --change "ENV LANG=C.UTF-8"
    --change "USER 65534"
    --change "WORKDIR /tmp"
    --change 'CMD ["python"]'
)

say() { echo "build.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

base_only=0
use_dockerfile=0
for arg in "$@"; do
    case "$arg" in
        --base-only) base_only=1 ;;
        --dockerfile) use_dockerfile=1 ;;
        *) die "unknown argument: $arg" ;;
    esac
done

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }
short_hash() { sha256sum | cut -c1-12; }

# The pins (with hashes) of the scoring libraries and all they need, from the lock.
extract_pins() {
    "$python_for_pip" "$recipe_dir/runtime_pins.py" "$lock_file" "${scoring_libraries[@]}"
}

base_tag() {
    { echo "dockerfile=$use_dockerfile"; cat "$recipe_dir/build.sh" "$recipe_dir/Dockerfile" "$recipe_dir/runtime_pins.py" "$1"; } | short_hash
}

# The full sha256 over what goes into the final image: recorded in the image as the
# CONTENT_LABEL (the scorer's identity, the same on every host that builds these inputs,
# whatever local image id each build gets); its first 12 hex digits are the tag.
content_digest() {
    local base_ref="$1" stage="$2" module
    {
        echo "$base_ref"
        for module in "${scoring_modules[@]}"; do
            echo "== $module"
            cat "$stage/scoring/$module"
        done
    } | sha256sum | cut -c1-64
}

download_wheels() {
    local requirements="$1" wheel_dir="$cache_dir/wheels" platforms=() v
    mkdir -p "$wheel_dir"
    # Debian bookworm has glibc 2.36: any manylinux wheel up to 2_36 fits.
    for v in $(seq 17 36); do platforms+=(--platform "manylinux_2_${v}_x86_64"); done
    say "downloading pinned wheels into $wheel_dir"
    "$python_for_pip" -m pip download --quiet --no-deps --require-hashes --only-binary :all: \
        --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none \
        --platform manylinux2014_x86_64 "${platforms[@]}" \
        -d "$wheel_dir" -r "$requirements"
}

bootstrap_rootfs() {
    local rootfs="$1"
    mkdir -p "$cache_dir/debs"
    local log="$work_root/debootstrap.log"
    say "debootstrap bookworm into $rootfs (log: $log)"
    if ! debootstrap --variant=minbase --include=python3,python3-venv \
        --cache-dir="$cache_dir/debs" bookworm "$rootfs" "$mirror" >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        die "debootstrap failed"
    fi
}

# Runs a command inside the rootfs with a clean environment, so this
# machine's pip settings (PIP_*, index URLs) do not leak into the image.
in_rootfs() {
    local rootfs="$1"
    shift
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 chroot "$rootfs" "$@"
}

install_python_packages() {
    local rootfs="$1" requirements="$2"
    mkdir -p "$rootfs/tmp/wheels"
    cp "$cache_dir"/wheels/*.whl "$requirements" "$rootfs/tmp/wheels/"
    in_rootfs "$rootfs" /usr/bin/python3 -m venv "$venv"
    # Installing inside the chroot lets the image's own interpreter check that
    # every wheel fits it; --require-hashes ties them to the lock.
    in_rootfs "$rootfs" "$venv/bin/python" -m pip install --quiet --no-index --no-deps \
        --require-hashes --only-binary :all: --find-links /tmp/wheels \
        -r "/tmp/wheels/$(basename "$requirements")"
    in_rootfs "$rootfs" "$venv/bin/python" -m pip check >&2
    in_rootfs "$rootfs" "$venv/bin/python" -m pip uninstall --quiet -y pip setuptools
    rm -rf "$rootfs/tmp/wheels"
}

# Fails the build if stripping broke an import the scoring code relies on.
smoke_test() {
    in_rootfs "$1" "$venv/bin/python" -c "
import numpy, pandas, scipy.stats, sklearn.metrics
import pyarrow, pyarrow.compute, pyarrow.csv, pyarrow.fs, pyarrow.parquet
print('python', __import__('sys').version.split()[0], 'numpy', numpy.__version__,
      'pandas', pandas.__version__, 'pyarrow', pyarrow.__version__,
      'scikit-learn', sklearn.__version__, 'scipy', scipy.__version__)
" >&2
}

strip_rootfs() {
    local rootfs="$1" site
    site="$(echo "$rootfs$venv"/lib/python3.*/site-packages)"
    # Test suites, headers and Cython sources are never imported at run time.
    find "$site" -depth -type d -name tests -exec rm -rf {} +
    rm -rf "$site/pyarrow/include" "$site/pyarrow/src"
    # Network clients (Flight RPC, S3): useless without a network, and about 50 MB.
    # pyarrow imports them only on demand (pyarrow.flight, pyarrow.fs.S3FileSystem).
    rm -f "$site"/pyarrow/{libarrow_flight,libarrow_python_flight,_flight}*.so* \
        "$site"/pyarrow/{libarrow_s3,_s3fs,_pyarrow_cpp_tests}*.so*
    find "$site" -type f \( -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' -o -name '*.h' \) -delete
    rm -rf "$rootfs"/usr/share/{doc,man,info,locale,python-wheels} \
        "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* \
        "$rootfs"/var/log/* "$rootfs"/root/.cache
    # No setuid or setgid programs: nothing to escalate through, on top of
    # the no-new-privileges flag every sandbox runs with.
    find "$rootfs" -xdev -type f -perm /6000 -exec chmod ug-s {} +
    mkdir -p "$rootfs/input" "$rootfs/output" "$rootfs/opt/heldout"
}

build_base_with_debootstrap() {
    local ref="$1" requirements="$2" rootfs
    rootfs="$(mktemp -d "$work_root/scorer-rootfs.XXXXXX")"
    # Cleaned on success and failure alike; a half-built rootfs is never reused.
    trap 'rm -rf "'"$rootfs"'"' EXIT
    download_wheels "$requirements"
    bootstrap_rootfs "$rootfs"
    install_python_packages "$rootfs" "$requirements"
    strip_rootfs "$rootfs"
    smoke_test "$rootfs"
    say "importing $ref"
    # The engine gives every container its own /dev; debootstrap's nodes stay out.
    tar --numeric-owner --exclude='./dev/*' -C "$rootfs" -c . | docker import "${image_env[@]}" - "$ref" >/dev/null
    rm -rf "$rootfs"
    trap - EXIT
}

build_base_with_dockerfile() {
    local ref="$1" requirements="$2" context
    context="$(mktemp -d "$work_root/scorer-context.XXXXXX")"
    trap 'rm -rf "'"$context"'"' EXIT
    cp "$recipe_dir/Dockerfile" "$context/"
    cp "$requirements" "$context/requirements.txt"
    docker build -t "$ref" "$context" >&2
    rm -rf "$context"
    trap - EXIT
}

stage_scoring_modules() {
    local stage="$1" module missing=()
    mkdir -p "$stage/scoring"
    for module in "${scoring_modules[@]}"; do
        [ -f "$repo_root/scoring/$module" ] || missing+=("scoring/$module")
    done
    [ "${#missing[@]}" -eq 0 ] || die "missing scoring modules: ${missing[*]}"
    for module in "${scoring_modules[@]}"; do
        cp "$repo_root/scoring/$module" "$stage/scoring/$module"
    done
    : >"$stage/scoring/__init__.py"
    chmod 0755 "$stage/scoring"
    chmod 0644 "$stage"/scoring/*.py
}

add_scoring_modules() {
    local base_ref="$1" ref="$2" stage="$3" content="$4" container
    # Compiled once here: the sandbox's root is read-only, so each run would otherwise
    # compile the modules again.
    container="$(docker create --network none --user 0 "$base_ref" \
        python -m compileall -q /opt/heldout/scoring)"
    # docker cp makes the copies root-owned; the modes set above are kept. The commit
    # sets the user (65534) and the command back.
    if docker cp "$stage/scoring" "$container:/opt/heldout/" \
        && docker start -a "$container" >&2 \
        && docker commit "${image_env[@]}" --change "LABEL $content_label=sha256:$content" \
            "$container" "$ref" >/dev/null; then
        docker rm "$container" >/dev/null
    else
        docker rm "$container" >/dev/null
        die "could not add the scoring modules to $base_ref"
    fi
}

main() {
    command -v docker >/dev/null || die "docker is not installed (run deploy/dockerd.sh)"
    docker info >/dev/null 2>&1 || die "the Docker engine is not reachable (run deploy/dockerd.sh)"
    mkdir -p "$cache_dir" "$work_root"
    # One build at a time on a machine: a second caller waits, then finds the image.
    exec 9>"$cache_dir/build.lock"
    flock 9
    local requirements base_ref stage ref content
    requirements="$cache_dir/requirements.txt"
    extract_pins >"$requirements"
    base_ref="heldout-scorer-base:$(base_tag "$requirements")"

    if image_exists "$base_ref"; then
        say "$base_ref already exists"
    elif [ "$use_dockerfile" -eq 1 ]; then
        build_base_with_dockerfile "$base_ref" "$requirements"
    else
        [ "$(id -u)" -eq 0 ] || die "debootstrap and chroot need root"
        build_base_with_debootstrap "$base_ref" "$requirements"
    fi
    if [ "$base_only" -eq 1 ]; then
        echo "$base_ref"
        return
    fi

    stage="$(mktemp -d "$work_root/scorer-stage.XXXXXX")"
    trap 'rm -rf "'"$stage"'"' EXIT
    stage_scoring_modules "$stage"
    content="$(content_digest "$base_ref" "$stage")"
    ref="heldout-scorer:${content:0:12}"
    if image_exists "$ref"; then
        say "$ref already exists"
    else
        say "adding the scoring modules: $ref"
        add_scoring_modules "$base_ref" "$ref" "$stage" "$content"
    fi
    docker tag "$ref" heldout-scorer:latest
    echo "$ref"
}

main
