"""manage.py demo_suite, which `make demo` runs after demo_setup: scikit-learn's toy data
sets as a suite, imported from its bundle, three methods scored on every task."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command

from competitions.models import ReferenceResult, Submission
from suites import selectors
from suites.demo import SPLIT_SEED, SUITE_SLUG
from suites.models import Method, Suite
from suites.services import is_participant
from suites.services_bundles import suite_export, suite_import
from tests.suites.test_suite_bundles import folder_bytes, forget

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite_too]


@pytest.fixture
def demo(capsys):
    """The demo after `make demo`'s set-up, scored in this process (once for the module's
    tests would be cheaper, but each test has its own database)."""
    call_command("demo_setup")
    started = time.monotonic()
    call_command("demo_suite", "--score")
    took = time.monotonic() - started
    capsys.readouterr()
    return Suite.objects.get(slug=SUITE_SLUG), took


def test_the_demo_suite_has_five_tasks_three_methods_all_scored_and_a_cd_diagram(demo):
    suite, took = demo
    matrix = selectors.suite_matrix(suite=suite)

    assert [t.key for t in matrix.tasks] == [
        "iris",
        "wine",
        "breast-cancer",
        "digits",
        "diabetes",
    ]
    assert matrix.waiting == []  # every constant predictor is scored
    assert matrix.board is not None
    assert matrix.statistics is not None  # the Friedman test and the CD diagram's ranks
    rows = {row.method: row for row in matrix.board.rows}
    assert sorted(rows) == ["Linear model", "Random forest", "k-nearest neighbours"]
    for row in rows.values():
        assert [c.status for c in row.cells] == ["scored"] * 5
        # Each beats knowing nothing on every task (by far, but on diabetes: RMSE).
        assert all(c.normalized > 0.5 for c in row.cells[:4])
        assert row.cells[4].normalized > 0.05
    assert Submission.objects.filter(method_run__method__suite=suite).count() == 15
    kinds = ReferenceResult.objects.filter(
        competition__suite_tasks__suite=suite, status="scored"
    ).values_list("kind", flat=True)
    assert sorted(kinds) == ["constant"] * 5 + ["model"] * 5
    assert Method.objects.get(name="Random forest").components == {
        "model": ["random forest"],
        "ensembling": ["bagging"],
    }
    assert took < 60  # seconds, on a shared test machine


def test_the_demo_suite_is_made_once_and_its_bundle_records_the_seed(demo):
    suite, _ = demo
    bundle = Path(settings.DATA_DIR) / "demo" / "suite"
    first = {p: p.read_bytes() for p in sorted(bundle.rglob("*")) if p.is_file()}

    call_command("demo_suite")

    assert Suite.objects.get() == suite
    assert Submission.objects.filter(method_run__method__suite=suite).count() == 15
    assert {p: p.read_bytes() for p in sorted(bundle.rglob("*")) if p.is_file()} == first
    assert suite.split_seed == SPLIT_SEED
    assert yaml.safe_load((bundle / "suite.yaml").read_text())["split_seed"] == SPLIT_SEED
    iris = pd.read_csv(bundle / "tasks" / "iris" / "solution.csv")
    assert len(iris) + len(pd.read_csv(bundle / "tasks" / "iris" / "train.csv")) == 150
    assert iris["Usage"].value_counts().to_dict() == {"Private": 23, "Public": 22}
    assert suite.methods.count() == 3
    participant = User.objects.get(username="participant")
    assert is_participant(suite=suite, user=participant)  # joined, ready to register a method


def test_the_demo_suite_exports_and_imports_back_byte_for_byte(demo, tmp_path):
    suite, _ = demo
    first = suite_export(suite=suite, dest=tmp_path / "first")
    Submission.objects.filter(competition__suite_tasks__suite=suite).delete()
    forget(suite)

    again = suite_import(source=first, organizer=None)

    assert again.split_seed == SPLIT_SEED
    assert folder_bytes(suite_export(suite=again, dest=tmp_path / "second")) == folder_bytes(first)
