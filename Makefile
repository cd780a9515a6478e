# Heldout: the two commands a newcomer needs are `make demo` and `make test`.
# Everything runs from the virtualenv in .venv, made from requirements.lock.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Rebuilt whenever requirements.lock is newer than this stamp.
STAMP := $(VENV)/.requirements.lock.installed
# Extra arguments for pytest, e.g. make test ARGS="tests/test_deploy.py -x".
ARGS ?=
# auto: make test prepares Docker (dockerd + scorer image) when Docker is installed or
# CI is set; skip: it doesn't (tests marked `docker` then fail; they never skip).
DOCKER ?= auto
SCORER_IMAGE_BUILD := bash deploy/scorer-image/build-and-push.sh

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:
.DEFAULT_GOAL := help

# Shell lines for test and bench: start dockerd and build the scorer image, exporting its
# tag as HELDOUT_SCORER_IMAGE, unless DOCKER=skip or Docker is absent outside CI.
define prepare_docker
if [ "$(DOCKER)" = skip ]; then
    echo "make: DOCKER=skip: Docker not prepared; what needs it (tests marked docker) will fail." >&2
elif command -v docker >/dev/null 2>&1 || [ -n "$${CI:-}" ]; then
    bash deploy/dockerd.sh
    image="$$($(SCORER_IMAGE_BUILD) | tail -n 1)"
    [ -n "$$image" ] || { echo "make: the scorer image build printed no reference" >&2; exit 1; }
    export HELDOUT_SCORER_IMAGE="$$image"
    echo "make: HELDOUT_SCORER_IMAGE=$$HELDOUT_SCORER_IMAGE" >&2
else
    echo "make: Docker is not installed (as root, make test installs it); what needs it (tests marked docker) will fail." >&2
fi
endef

.PHONY: help venv demo test test-sqlite lint scorer-image bench

help:
	@echo "make demo          set up and serve the demo site and a worker on http://127.0.0.1:8000"
	@echo "make test          the whole test suite (ARGS=... goes to pytest; DOCKER=skip skips Docker set-up)"
	@echo "make test-sqlite   the tests marked sqlite_too (SQL of its own, the demo's path) on SQLite"
	@echo "make lint          ruff check, ruff format --check, mypy, lint-imports"
	@echo "make scorer-image  build the scorer image, push it when HELDOUT_IMAGE_REGISTRY is set (prints its reference last)"
	@echo "make bench         run the benchmarks in bench/"
	@echo "make venv          create .venv from requirements.lock"

venv: $(STAMP)

$(STAMP): requirements.lock client/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
	    echo "Heldout needs Python 3.11 or newer; $(PYTHON) is $$($(PYTHON) --version 2>&1)." >&2
	    echo "Run again with PYTHON=/path/to/python3.11." >&2
	    exit 1
	}
	echo "+ $(PYTHON) -m venv $(VENV) && $(BIN)/python -m pip install -r requirements.lock && pip install --no-deps -e client/"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check --progress-bar off -r requirements.lock
	# The heldout client (client/): its dependencies are in the lock; tests run its command.
	$(BIN)/python -m pip install --disable-pip-version-check --progress-bar off --no-deps -e client/
	touch $(STAMP)

demo: venv
	@$(BIN)/python deploy/demo.py

test: venv
	@bash deploy/system-deps.sh
	$(prepare_docker)
	echo "+ $(BIN)/pytest $(ARGS)" >&2
	$(BIN)/pytest $(ARGS)

# The demo runs on SQLite and CI's whole suite on PostgreSQL: the tests of the SQL written by
# hand and of the demo's set-up (marker sqlite_too; tests/test_sqlite_too.py keeps that list
# honest) run on SQLite too, with the demo's file-system broker. .ci/run runs this after
# make test. Needs no Docker.
test-sqlite: venv
	@echo "+ $(BIN)/pytest -m sqlite_too $(ARGS) (SQLite: DATABASE_URL and CELERY_BROKER_URL unset)" >&2
	env -u DATABASE_URL -u CELERY_BROKER_URL $(BIN)/pytest -m sqlite_too $(ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports

scorer-image:
	@$(SCORER_IMAGE_BUILD)

# Every bench runs, even after one fails; the failures are listed at the end (status 1).
bench: venv
	@shopt -s nullglob
	benches=(bench/bench_*.py)
	if [ "$${#benches[@]}" -eq 0 ]; then echo "make bench: no bench/bench_*.py yet" >&2; exit 1; fi
	bash deploy/system-deps.sh bench
	$(prepare_docker)
	mkdir -p bench/out
	failed=()
	started=$$SECONDS
	for bench in "$${benches[@]}"; do
	    echo "== $$bench" >&2
	    from=$$SECONDS
	    $(BIN)/python "$$bench" || failed+=("$$bench")
	    echo "== $$bench: $$((SECONDS - from)) s" >&2
	done
	echo "make bench: $${#benches[@]} benches in $$((SECONDS - started)) s" >&2
	if [ "$${#failed[@]}" -gt 0 ]; then echo "make bench: failed: $${failed[*]}" >&2; exit 1; fi
