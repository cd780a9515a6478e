#!/usr/bin/env bash
# Install the Debian packages the test suite needs, when they are missing; with the argument
# `bench`, also what `make bench` needs:
#
#   wrk          bench/bench_board_load.py's load generator on loopback
#   redis-server the benches that need Redis start one of their own (bench/benchlib.py)
#
#   chromium     the browser tests drive /usr/bin/chromium through Playwright
#   docker.io    the sandbox tests run the scorer image in a real Docker engine
#   debootstrap  deploy/scorer-image/build.sh builds that image offline with it
#   nginx        tests/test_nginx_proxy.py runs deploy/nginx.conf in front of gunicorn
#   openssl      ... with a self-signed certificate it makes
#   docker-registry  tests/sandbox/test_image_registry.py pushes and pulls images through it on loopback
#   npm          the browser tests install axe-core from the npm registry (tests/browser/conftest.py)
#
# Idempotent: installs only what is missing, and only as root on a machine with
# apt-get. Otherwise it says what is missing and exits 0: the tests that need it
# then fail (tests marked docker never skip) and say why.
set -euo pipefail

say() { echo "system-deps.sh: $*" >&2; }

has_command() {
    command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]
}

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
has_command dockerd || missing+=(docker.io)
has_command debootstrap || missing+=(debootstrap)
has_command nginx || missing+=(nginx)
has_command openssl || missing+=(openssl)
has_command docker-registry || missing+=(docker-registry)
has_command npm || missing+=(npm)
if [ "${1:-}" = bench ]; then
    has_command wrk || missing+=(wrk)
    has_command redis-server || missing+=(redis-server)
fi

if [ "${#missing[@]}" -eq 0 ]; then
    say "chromium, docker.io, debootstrap, nginx, openssl, docker-registry and npm${1:+, wrk and redis-server} are installed"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    say "missing ${missing[*]} and there is no apt-get here: install them by hand"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    say "missing ${missing[*]}: run 'sudo apt-get install ${missing[*]}' (not root, so not installing)"
    exit 0
fi
say "installing ${missing[*]} with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
packages=("${missing[@]}")
# Without recommends chromium has no font, and headless pages would render no text.
[ -x /usr/bin/chromium ] || packages+=(fonts-liberation)
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
say "installed ${missing[*]}"
