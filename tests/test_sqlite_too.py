"""Which tests .ci/run runs on SQLite too (`pytest -m sqlite_too`, after the whole suite on
PostgreSQL): `make demo` runs on SQLite, and SQL written by hand (cursor.execute, RawSQL,
.raw(), .extra(), RunSQL, schema_editor.execute in migrations, an expression's as_sql) may run on PostgreSQL only.

Every module of tests/suites is marked (the suites app reads its matrix in SQL of its own),
and `EXERCISED_BY` names, for every module of the apps that sends SQL of its own, the test
modules that run that SQL; each carries the `sqlite_too` marker. A new module with SQL of
its own fails here until it is listed with its tests; one that no longer has any, until it
is taken off. The demo's own path (manage.py demo_setup and demo_suite) is marked too.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.sqlite_too

ROOT = Path(__file__).resolve().parents[1]
APPS = ("competitions", "suites", "judging", "notifications", "config", "scoring")
RAW_SQL = re.compile(
    r"cursor\.execute|RawSQL|\.raw\(|\.extra\(|RunSQL|schema_editor\.execute|executemany"
    r"|def as_sql\("  # an expression that writes its own SQL
)
# A module's `pytestmark = ...` statement (up to the next blank line) naming the marker.
MARKED = re.compile(r"^pytestmark\s*=(?:(?!\n\n).)*?\bpytest\.mark\.sqlite_too\b", re.M | re.S)

EXERCISED_BY: dict[str, list[str]] = {
    "competitions/boardfast.py": ["tests/competitions/test_board_fastpath.py"],
    "competitions/ops/health.py": ["tests/test_ops_health.py"],
    "competitions/selectors_boards.py": [
        "tests/competitions/test_board_phase.py",
        "tests/competitions/test_phase_board_columns.py",
    ],
    "competitions/services/freeze.py": [
        "tests/competitions/test_finalize.py",
        "tests/competitions/test_leaderboard_rebuild.py",
    ],
    # The board version's triggers.
    "competitions/migrations/0015_board_version.py": ["tests/competitions/test_board_cache.py"],
    "competitions/migrations/0018_shakeup_board_version.py": [
        "tests/competitions/test_board_cache.py"
    ],
    "competitions/migrations/0020_submission_attempt_fields_removed.py": [
        "tests/competitions/test_attempts_migration.py"
    ],
    "competitions/migrations/0024_phase_released_files_board_metrics.py": [
        "tests/competitions/test_board_cache.py",
        "tests/competitions/test_phase_board_columns.py",
    ],
    "competitions/migrations/0026_board_version_triggers_sqlite.py": [
        "tests/competitions/test_board_cache.py"
    ],
    "suites/cells.py": ["tests/suites/test_suite_matrix_cells.py"],
    "suites/matrix_grid.py": [
        "tests/suites/test_matrix_incremental.py",
        "tests/suites/test_suite_matrix_cells.py",
    ],
    "suites/selectors.py": [
        "tests/suites/test_suite_matrix_cells.py",
        "tests/suites/test_matrix_cache.py",
        "tests/suites/test_suite_pages.py",
        "tests/suites/test_suite_api.py",
        "tests/suites/test_suite_services.py",
    ],
}
# `make demo`'s set-up, which its worker then scores (suites/selectors.py, suites/cells.py),
# and a real worker on the file-system broker, as the demo runs one.
DEMO_PATH = [
    "tests/competitions/test_demo_setup.py",
    "tests/suites/test_demo_suite.py",
    "tests/test_celery_worker.py",
]


def _with_raw_sql() -> set[str]:
    return {
        str(path.relative_to(ROOT))
        for app in APPS
        for path in (ROOT / app).rglob("*.py")
        if RAW_SQL.search(path.read_text())
    }


def test_every_module_with_sql_of_its_own_is_listed_with_the_tests_that_run_it():
    found = _with_raw_sql()

    assert "suites/selectors.py" in found  # the search finds what it is for
    assert sorted(found - set(EXERCISED_BY)) == [], "list them in EXERCISED_BY"
    assert sorted(set(EXERCISED_BY) - found) == [], "no SQL of their own any more"


SUITES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests" / "suites").glob("test_*.py"))


@pytest.mark.parametrize(
    "test_module",
    sorted({m for ms in EXERCISED_BY.values() for m in ms} | {*DEMO_PATH, *SUITES}),
)
def test_each_listed_test_module_is_marked_to_run_on_sqlite_too(test_module):
    assert MARKED.search((ROOT / test_module).read_text()), (
        f"{test_module}: add pytest.mark.sqlite_too to its pytestmark"
    )
