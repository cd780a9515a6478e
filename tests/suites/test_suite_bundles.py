"""Suite bundles: suite.yaml and a competition bundle per task, imported all or nothing and
exported back byte for byte (docs/suites.md, "The suite bundle")."""

from __future__ import annotations

import io
import shutil
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.files.storage import storages
from django.core.management import CommandError, call_command

from competitions.errors import BundleInvalid
from competitions.models import Competition, OutboxMessage
from competitions.services.references import REFERENCES_TASK
from suites import services_bundles
from suites.models import Suite
from suites.services_bundles import suite_archive_write, suite_export, suite_import
from tests.competitions.test_bundles import bundle_yaml, write_bundle, zip_folder

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite_too]


def suite_yaml(**overrides) -> dict:
    document = {
        "slug": "tiny-suite",
        "title": "A tiny suite",
        "description": "Two *tiny* tasks.\n",
        "rules": "rules.md",
        "visibility": "public",
        "split_seed": 20260101,
        "tasks": [
            {"key": "first", "folder": "tasks/first"},
            {"key": "second", "folder": "tasks/second"},
        ],
    }
    document.update(overrides)
    return document


def write_suite(root: Path, document: dict | None = None, tasks: dict | None = None) -> Path:
    """A suite bundle at `root` whose tasks are the competition bundle of
    tests/competitions/test_bundles.py under other slugs (or the documents given)."""
    root.mkdir(parents=True)
    tasks = tasks or {
        "first": bundle_yaml(slug="tiny-first"),
        "second": bundle_yaml(slug="tiny-second", visibility="unlisted"),
    }
    for key, task_document in tasks.items():
        write_bundle(root / "tasks" / key, task_document)
    (root / "rules.md").write_text("Be kind.\n")
    (root / "suite.yaml").write_text(yaml.safe_dump(document or suite_yaml(), sort_keys=False))
    return root


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def tar_names(path: Path) -> list[str]:
    with tarfile.open(path) as tf:
        return tf.getnames()


def forget(suite: Suite) -> None:
    """What a fresh database holds of the suite: nothing."""
    ids = list(suite.tasks.values_list("competition_id", flat=True))
    suite.delete()
    Competition.objects.filter(pk__in=ids).delete()


def test_a_suite_imported_exported_and_imported_again_exports_the_same_bytes(tmp_path, organizer):
    source = write_suite(tmp_path / "source")
    first = suite_export(
        suite=suite_import(source=source, organizer=organizer), dest=tmp_path / "first"
    )
    forget(Suite.objects.get())

    again = suite_import(source=first, organizer=organizer)
    second = suite_export(suite=again, dest=tmp_path / "second")

    assert folder_bytes(first) == folder_bytes(second)
    assert sorted(folder_bytes(first)) == [
        "description.md",
        "rules.md",
        "suite.yaml",
        "tasks/first/competition.yaml",
        "tasks/first/data/sample_submission.csv",
        "tasks/first/data/test.csv",
        "tasks/first/data/train.csv",
        "tasks/first/description.md",
        "tasks/first/private/solution.csv",
        "tasks/first/rules.md",
        "tasks/second/competition.yaml",
        "tasks/second/data/sample_submission.csv",
        "tasks/second/data/test.csv",
        "tasks/second/data/train.csv",
        "tasks/second/description.md",
        "tasks/second/private/solution.csv",
        "tasks/second/rules.md",
    ]
    document = yaml.safe_load((second / "suite.yaml").read_text())
    assert document["split_seed"] == 20260101
    assert document["tasks"] == [
        {"key": "first", "folder": "tasks/first"},
        {"key": "second", "folder": "tasks/second"},
    ]
    assert (second / "description.md").read_text() == "Two *tiny* tasks.\n"


SCHEDULE: list[dict[str, Any]] = [
    {
        "name": "Public",
        "start": "2026-01-01T00:00:00Z",
        "end": "2026-06-01T00:00:00Z",
        "daily_limit": 3,
        "total_limit": None,
        "late_submissions_scored": False,
        "kind": "predictions",
        "allow_build_context": False,
    },
    {
        "name": "Final",
        "start": "2026-06-01T00:00:00Z",
        "end": None,
        "daily_limit": 1,
        "total_limit": 4,
        "late_submissions_scored": True,
        "kind": "container",
        "allow_build_context": False,
    },
]


def scheduled_suite(root: Path, schedule: list | None = None, **task_phases) -> Path:
    """A suite bundle with the suite's `phases`; its tasks' bundles list none unless given."""
    tasks = {}
    for key in ("first", "second"):
        document = bundle_yaml(slug=f"tiny-{key}")
        del document["phases"]
        if key in task_phases:
            document["phases"] = task_phases[key]
        tasks[key] = document
    return write_suite(root, suite_yaml(phases=schedule or SCHEDULE), tasks=tasks)


def test_a_suite_with_phases_gives_them_to_its_tasks_and_exports_the_same_bytes_again(
    tmp_path, organizer
):
    suite = suite_import(source=scheduled_suite(tmp_path / "source"), organizer=organizer)
    assert list(suite.phases.values_list("name", "daily_limit", "submission_kind")) == [
        ("Public", 3, "predictions"),
        ("Final", 1, "container"),
    ]
    for task in suite.tasks.all():
        phases = task.competition.phases.order_by("start_at")
        assert list(phases.values_list("name", "total_limit", "late_submissions_scored")) == [
            ("Public", None, False),
            ("Final", 4, True),
        ]
    first = suite_export(suite=suite, dest=tmp_path / "first")
    forget(suite)

    # The export's task bundles list the phases in full: the same schedule, accepted.
    second = suite_export(
        suite=suite_import(source=first, organizer=organizer), dest=tmp_path / "second"
    )

    assert folder_bytes(first) == folder_bytes(second)
    assert yaml.safe_load((second / "suite.yaml").read_text())["phases"] == SCHEDULE
    task_document = yaml.safe_load((second / "tasks/first/competition.yaml").read_text())
    assert [p["name"] for p in task_document["phases"]] == ["Public", "Final"]


def test_a_task_listing_other_phases_than_the_suites_is_refused_with_the_others(tmp_path):
    renamed = [dict(SCHEDULE[0], name="Open"), SCHEDULE[1]]
    shifted = [dict(SCHEDULE[0], daily_limit=9), dict(SCHEDULE[1], kind="predictions")]
    source = scheduled_suite(tmp_path / "source", first=renamed, second=shifted)

    with pytest.raises(BundleInvalid) as refused:
        suite_import(source=source, organizer=None)

    assert refused.value.problems == [
        'tasks[0] (first): tasks/first/competition.yaml: phases: must be the suite\'s ("Public", '
        '"Final", in that order), or left out.',
        "tasks[1] (second): tasks/second/competition.yaml: phases[0].daily_limit: 9 differs "
        "from the suite's phase \"Public\" (3); leave phases out to take the suite's.",
        "tasks[1] (second): tasks/second/competition.yaml: phases[1].kind: predictions "
        'differs from the suite\'s phase "Final" (container); leave phases out to take the '
        "suite's.",
    ]
    assert not Suite.objects.exists()


def test_the_suites_phases_are_checked_as_a_bundles_with_their_lines(tmp_path):
    schedule = [
        dict(SCHEDULE[1], ground_truth="private/solution.csv"),
        dict(SCHEDULE[0], daily_limit=0),
    ]
    source = scheduled_suite(tmp_path / "source", schedule)

    with pytest.raises(BundleInvalid) as refused:
        suite_import(source=source, organizer=None)

    text = (source / "suite.yaml").read_text().splitlines()

    def line_of(needle: str, after: int = 0) -> int:
        return next(i for i, line in enumerate(text, 1) if needle in line and i > after)

    public = line_of("name: Public")
    assert refused.value.problems == [
        f"suite.yaml line {line_of('ground_truth:')}: phases[0].ground_truth: unknown key "
        "(known: allow_build_context, daily_limit, end, kind, late_submissions_scored, name, "
        "start, total_limit).",
        f"suite.yaml line {line_of('daily_limit: 0')}: phases[1].daily_limit: 0 must be a "
        "whole number of at least 1.",
        f"suite.yaml line {line_of('start:', public)}: phases[1].start: list the phases in the "
        "order they start.",
    ]


def test_the_suite_archives_are_deterministic_and_import_back(tmp_path, organizer):
    suite = suite_import(source=write_suite(tmp_path / "source"), organizer=organizer)
    zipped = suite_archive_write(suite=suite, dest=tmp_path / "a" / "suite.zip")
    tarred = suite_archive_write(suite=suite, dest=tmp_path / "a" / "suite.tar.gz")
    assert suite_archive_write(suite=suite, dest=tmp_path / "b" / "suite.zip").read_bytes() == (
        zipped.read_bytes()
    )
    assert suite_archive_write(suite=suite, dest=tmp_path / "b" / "suite.tar.gz").read_bytes() == (
        tarred.read_bytes()
    )
    assert "suite.yaml" in zipfile.ZipFile(zipped).namelist()
    assert "suite.yaml" in tar_names(tarred)

    for archive in (zipped, tarred):
        forget(Suite.objects.get())
        again = suite_import(source=archive, organizer=organizer)
        assert [t.key for t in again.tasks.all()] == ["first", "second"]
        assert suite_archive_write(
            suite=again, dest=tmp_path / "c" / archive.name
        ).read_bytes() == (archive.read_bytes())


def test_importing_makes_owned_unlisted_tasks_and_asks_for_their_baselines(tmp_path, organizer):
    suite = suite_import(source=write_suite(tmp_path / "source"), organizer=organizer)

    assert (suite.slug, suite.split_seed, suite.rules) == ("tiny-suite", 20260101, "Be kind.\n")
    assert list(suite.organizers.all()) == [organizer]
    tasks = list(suite.tasks.select_related("competition"))
    assert [(t.key, t.competition.slug, t.owned) for t in tasks] == [
        ("first", "tiny-first", True),
        ("second", "tiny-second", True),
    ]
    assert {t.competition.visibility for t in tasks} == {"unlisted"}
    asked = OutboxMessage.objects.filter(task=REFERENCES_TASK).values_list("args", flat=True)
    assert sorted(asked) == sorted([[t.competition_id] for t in tasks])


def test_a_bad_suite_yaml_names_every_problem_with_its_line(tmp_path):
    document = suite_yaml(slug="Not A Slug", visibility="secret", split_seed="soon", extra=1)
    document["tasks"] = [
        {"key": "first", "folder": "tasks/first"},
        {"key": "first", "folder": "tasks/missing"},
        {"folder": "../outside"},
        {"key": "bad", "folder": "tasks/bad"},
    ]
    broken = bundle_yaml(slug="tiny-bad")
    broken["task"]["primary_metric"] = "rmse"
    source = write_suite(
        tmp_path / "source",
        document,
        tasks={"first": bundle_yaml(slug="tiny-first"), "bad": broken},
    )

    with pytest.raises(BundleInvalid) as refused:
        suite_import(source=source, organizer=None)

    lines = yaml.safe_dump(document, sort_keys=False).splitlines()

    def line_of(text: str) -> int:
        return next(i for i, line in enumerate(lines, 1) if text in line)

    problems = refused.value.problems
    assert problems[:2] == [
        f"suite.yaml line {line_of('extra:')}: extra: unknown key (known: description, "
        "phases, rules, slug, split_seed, tasks, title, visibility).",
        f"suite.yaml line {line_of('slug:')}: slug: "
        '"Not A Slug" may hold only lowercase letters, digits and single hyphens.',
    ]
    assert f"suite.yaml line {line_of('visibility:')}: visibility: " in problems[2]
    assert f"suite.yaml line {line_of('split_seed:')}: split_seed: " in problems[3]
    rest = problems[4:]
    assert any(p.startswith("suite.yaml line ") and "tasks[1].key: " in p for p in rest)
    assert any('tasks[1].folder: "tasks/missing" is not a folder' in p for p in rest)
    assert any("tasks[2].key: is required" in p for p in rest)
    assert any('tasks[2].folder: "../outside" must be a relative path' in p for p in rest)
    assert any(
        p.startswith("tasks[3] (bad): tasks/bad/competition.yaml: task.primary_metric: ")
        for p in rest
    )
    assert len(problems) == 9
    assert not Suite.objects.exists()
    assert not Competition.objects.exists()


def stored_files() -> set[Path]:
    found: set[Path] = set()
    for name in ("default", "private"):
        root = Path(storages[name].path(""))
        found |= {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()
    return found


def test_a_refused_import_leaves_no_rows_and_no_files(tmp_path, organizer, monkeypatch):
    source = write_suite(tmp_path / "source")
    before = stored_files()
    # The second task fails after the first task's competition and files were made: both
    # go again.
    real = services_bundles.competition_create_from_bundle
    calls = []

    def second_fails(*, bundle, organizer):
        calls.append(bundle.slug)
        if len(calls) == 2:
            raise BundleInvalid(['slug: a competition named "tiny-second" already exists.'])
        return real(bundle=bundle, organizer=organizer)

    monkeypatch.setattr(services_bundles, "competition_create_from_bundle", second_fails)
    with pytest.raises(BundleInvalid):
        suite_import(source=source, organizer=organizer)

    assert calls == ["tiny-first", "tiny-second"]
    assert not Suite.objects.exists()
    assert not Competition.objects.exists()
    assert stored_files() == before


def test_the_commands_import_and_export_a_suite(tmp_path, organizer, capsys):
    call_command(
        "import_suite", str(write_suite(tmp_path / "source")), "--organizer", organizer.username
    )
    call_command("export_suite", "tiny-suite", str(tmp_path / "out"))
    call_command("export_suite", "tiny-suite", str(tmp_path / "suite.tar.gz"))

    assert (tmp_path / "out" / "suite.yaml").is_file()
    assert "suite.yaml" in tar_names(tmp_path / "suite.tar.gz")
    assert "Imported the suite 'tiny-suite' with 2 tasks" in capsys.readouterr().out
    with pytest.raises(CommandError, match="already exists"):
        call_command("import_suite", str(tmp_path / "out"))


@pytest.mark.parametrize(
    ("command", "what", "write"),
    [
        ("import_bundle", "bundle", lambda root: write_bundle(root, bundle_yaml(visibility="x"))),
        ("import_suite", "suite", lambda root: write_suite(root, suite_yaml(visibility="x"))),
    ],
)
def test_both_import_commands_refuse_alike_and_import_nothing(tmp_path, command, what, write):
    # competitions/management/importing.py is both commands' body.
    source = write(tmp_path / "source")

    with pytest.raises(CommandError) as unknown:
        call_command(command, str(source), "--organizer", "nobody")
    with pytest.raises(CommandError) as missing:
        call_command(command, str(tmp_path / "missing"))
    with pytest.raises(CommandError) as invalid:
        call_command(command, str(source))

    assert str(unknown.value) == "No user named 'nobody'."
    assert str(missing.value) == f"{tmp_path / 'missing'} does not exist."
    first, *problems = str(invalid.value).splitlines()
    assert first == f"The {what} was not imported:"
    assert problems
    assert all(line.startswith("  - ") for line in problems)
    assert any("visibility:" in line for line in problems), problems
    assert not Competition.objects.exists()


def test_a_task_may_be_a_zipped_competition_bundle(tmp_path, organizer):
    source = write_suite(tmp_path / "source")
    zip_folder(source / "tasks" / "second", source / "second.zip")
    shutil.rmtree(source / "tasks" / "second")
    document = suite_yaml()
    document["tasks"][1]["folder"] = "second.zip"
    (source / "suite.yaml").write_text(yaml.safe_dump(document))

    suite = suite_import(source=source, organizer=organizer)

    assert [t.competition.slug for t in suite.tasks.all()] == ["tiny-first", "tiny-second"]


def test_an_archive_with_a_link_or_a_way_out_is_refused(tmp_path):
    source = write_suite(tmp_path / "source")
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(source, arcname=".")
        link = tarfile.TarInfo("tasks/first/escape")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
        outside = tarfile.TarInfo("../outside.txt")
        tf.addfile(outside, io.BytesIO(b""))

    with pytest.raises(BundleInvalid) as refused:
        suite_import(source=archive, organizer=None)

    assert refused.value.problems == [
        "tasks/first/escape: only files and folders are allowed in a bundle.",
        "../outside.txt: entries must not contain '..'.",
    ]
    assert not Suite.objects.exists()
