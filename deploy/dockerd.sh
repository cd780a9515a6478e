#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine, starting one if needed.
#
# Idempotent: safe to call on every CI run. Installs docker.io and debootstrap
# with apt-get when they are missing, starts dockerd in the background when
# `docker info` fails, then waits for the engine. Exits non-zero with a clear
# message if the engine does not come up in time.
#
# The engine we start has no bridge network at all (--bridge=none): every
# sandbox runs with network_mode="none", so nothing here ever needs one, and a
# container started by mistake without --network cannot reach anything either.
#
# Env: DOCKERD_LOG (default /var/log/heldout-dockerd.log),
#      DOCKERD_WAIT_S (default 60).
set -euo pipefail

log_file="${DOCKERD_LOG:-/var/log/heldout-dockerd.log}"
wait_s="${DOCKERD_WAIT_S:-60}"

say() { echo "dockerd.sh: $*" >&2; }

install_missing_packages() {
    local missing=()
    command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
    command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        say "missing ${missing[*]} and not root: install them first"
        exit 1
    fi
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

engine_answers() {
    docker info >/dev/null 2>&1
}

start_dockerd() {
    if [ "$(id -u)" -ne 0 ]; then
        say "the Docker engine is not reachable and only root can start dockerd"
        exit 1
    fi
    mkdir -p "$(dirname "$log_file")"
    say "starting dockerd (log: $log_file)"
    # setsid + nohup: the engine must outlive this script and the CI step.
    setsid nohup dockerd --bridge=none --iptables=false --ip-masq=false \
        >>"$log_file" 2>&1 </dev/null &
}

wait_for_engine() {
    local deadline=$((SECONDS + wait_s))
    until engine_answers; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            say "the Docker engine did not answer within ${wait_s} s; last lines of $log_file:"
            tail -n 20 "$log_file" >&2 2>/dev/null || true
            exit 1
        fi
        sleep 1
    done
}

install_missing_packages
if engine_answers; then
    say "the Docker engine is already running"
    exit 0
fi
start_dockerd
wait_for_engine
say "the Docker engine is ready ($(docker version --format '{{.Server.Version}}'))"
