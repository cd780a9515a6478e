"""Applies of one competition at the same time are serialised: each sees the one before.

Four threads, each on its own database connection, apply the same bundle with a new
ground truth at once. The competition's row lock and the diff recomputed under it must
leave exactly one new task version; without them each apply would make its own.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from django.db import connections

from competitions.models import Competition
from competitions.services.bundle_apply import bundle_apply
from tests.competitions.test_bundle_apply import FLIPPED
from tests.competitions.test_bundles import write_bundle

pytestmark = pytest.mark.django_db(transaction=True)
THREADS = 4


def test_concurrent_applies_of_a_new_ground_truth_make_one_version(tmp_path, organizer):
    folder = write_bundle(tmp_path / "repo")
    bundle_apply(source=folder, organizer=organizer, dry_run=False)
    (folder / "solution.csv").write_text(FLIPPED)
    barrier = threading.Barrier(THREADS)
    results: list[object] = [None] * THREADS

    def run(i: int, source: Path) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = bundle_apply(source=source, organizer=organizer, dry_run=False)
        except BaseException as exc:  # asserted on below
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, folder)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert not any(t.is_alive() for t in threads)
    assert not [r for r in results if isinstance(r, BaseException)], results
    versions = [r.version for r in results]  # type: ignore[attr-defined]
    assert sorted(versions, key=str) == [2, None, None, None]
    task = Competition.objects.get(slug="tiny-bundle").task
    assert list(task.versions.values_list("number", flat=True).order_by("number")) == [1, 2]
