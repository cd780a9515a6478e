"""The import contracts between the engine, the domain and the orchestration (pyproject
[tool.importlinter]) hold, can fail, and the scorer image's modules need nothing it lacks."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
BUILD_SH = ROOT / "deploy" / "scorer-image" / "build.sh"
# Distribution names in build.sh whose import names differ.
IMPORT_NAMES = {"scikit-learn": "sklearn"}


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    assert LINT_IMPORTS.exists(), f"{LINT_IMPORTS} is missing: make venv installs import-linter"
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(cwd)},
    )


def project_with(tmp_path: Path, modules: dict[str, str]) -> Path:
    """A tree of the root packages under the project's own contracts, plus `modules`."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    lines = [
        "[tool.importlinter]",
        f"root_packages = {contracts['root_packages']!r}",
        "include_external_packages = true",
    ]
    for contract in contracts["contracts"]:
        lines.append("[[tool.importlinter.contracts]]")
        lines += [f"{key} = {value!r}" for key, value in contract.items()]
    (tmp_path / "pyproject.toml").write_text("\n".join(lines).replace("'", '"') + "\n")
    for package in contracts["root_packages"]:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    for name, text in modules.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_the_projects_import_contracts_hold():
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_a_tree_that_keeps_to_the_contracts_passes_them(tmp_path):
    tree = project_with(
        tmp_path,
        {
            "scoring/spec.py": "import json\n",
            "competitions/models.py": "import django\nimport scoring.spec\n",
            "judging/tasks.py": "import celery\nimport competitions.models\nimport scoring.spec\n",
            "config/urls.py": "import competitions.models\nimport judging.tasks\n",
        },
    )
    done = lint_imports(tree)
    assert done.returncode == 0, done.stdout + done.stderr


def test_each_forbidden_import_breaks_its_contract(tmp_path):
    tree = project_with(
        tmp_path,
        {
            "scoring/spec.py": "import django.conf\n",
            "competitions/services.py": "from judging import tasks\n",
            "judging/tasks.py": "import competitions.services\n",
            "notifications/services.py": "import competitions.services\n",
            "competitions/selectors.py": "import suites.models\n",
            "suites/models.py": "import competitions.models\n",
            "competitions/models.py": "",
        },
    )
    done = lint_imports(tree)
    assert done.returncode != 0, done.stdout
    assert "Contracts: 0 kept, 5 broken." in done.stdout, done.stdout
    assert re.search(r"scoring\.spec -> django \(l\.1\)", done.stdout), done.stdout
    assert re.search(r"competitions\.services -> judging\.tasks \(l\.1\)", done.stdout)
    assert re.search(r"notifications\.services -> competitions\.services \(l\.1\)", done.stdout)
    assert re.search(r"competitions\.selectors -> suites\.models \(l\.1\)", done.stdout)


def test_every_task_the_domain_enqueues_by_name_is_a_registered_task():
    from django.conf import settings

    from competitions.services.replications import REPLICATION_TASK
    from competitions.services.submissions import SCORE_TASK
    from config.celery_app import app
    from notifications.services import EMAIL_TASK
    from suites.cells import CELLS_TASK

    app.loader.import_default_modules()  # the installed apps' tasks modules, as a worker does
    beat = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    named = {SCORE_TASK, REPLICATION_TASK, EMAIL_TASK, CELLS_TASK, *beat}
    assert named - set(app.tasks) == set()
    # Messages already queued, and outbox rows, name judging's tasks as they always were.
    assert app.tasks[SCORE_TASK].__module__ == "judging.tasks"
    assert app.tasks[REPLICATION_TASK].__module__ == "judging.tasks"


def image_modules() -> tuple[set[str], set[str]]:
    """The engine modules build.sh copies into the scorer image, and the libraries it installs."""
    text = BUILD_SH.read_text()

    def array(name: str) -> list[str]:
        found = re.search(rf"^{name}=\(([^)]*)\)", text, re.MULTILINE)
        assert found, f"build.sh no longer defines {name}"
        return found.group(1).split()

    modules = {f"scoring.{m.removesuffix('.py')}" for m in array("scoring_modules")}
    libraries = {IMPORT_NAMES.get(d, d) for d in array("scoring_libraries")}
    return modules, libraries


def test_the_scorer_images_modules_import_only_each_other_its_libraries_and_the_stdlib():
    modules, libraries = image_modules()
    assert "scoring.cli" in modules, "the image runs python -m scoring.cli"
    graph = grimp.build_graph("scoring", include_external_packages=True, cache_dir=None)
    for module in sorted(modules):
        needed = graph.find_upstream_modules(module)
        inside = {m for m in needed if m.startswith("scoring.")}
        outside = {m.split(".")[0] for m in needed - inside}
        assert inside <= modules, f"{module} needs {sorted(inside - modules)}, not in the image"
        missing = outside - libraries - set(sys.stdlib_module_names)
        assert not missing, f"{module} imports {sorted(missing)}, which the image lacks"
