"""Competition bundles: reading, checking, importing and exporting (docs/bundle.md)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from unittest import mock

import pytest
import yaml
from django.contrib.auth.models import User
from django.core.files.storage import storages
from django.core.management import CommandError, call_command

from competitions.models import Competition, Phase, TaskFile
from competitions.services.bundles import BundleInvalid, bundle_export, bundle_import

pytestmark = pytest.mark.django_db

IDS = [f"r{i}" for i in range(10)]
TRUTH = "id,label,Usage\n" + "".join(
    f"{rid},{'yes' if i >= 5 else 'no'},{'Public' if i % 2 else 'Private'}\n"
    for i, rid in enumerate(IDS)
)
SAMPLE = "id,label\n" + "".join(f"{rid},0.5\n" for rid in IDS)


def bundle_yaml(**overrides) -> dict:
    document = {
        "slug": "tiny-bundle",
        "title": "A tiny bundle",
        "description": "description.md",
        "rules": "Be *kind*.\nNo sharing.\n",
        "visibility": "public",
        "start": "2026-01-01T00:00:00Z",
        "end": None,
        "selection_limit": 2,
        "task": {
            "type": "binary",
            "id_column": "id",
            "target_columns": ["label"],
            "classes": ["no", "yes"],
            "primary_metric": "roc_auc",
            "secondary_metrics": ["accuracy", "log_loss"],
            "ground_truth": "solution.csv",
            "files": [
                {"path": "train.csv", "kind": "train", "description": "Rows with labels"},
                {"path": "test.csv", "kind": "test"},
                {"path": "sample_submission.csv", "kind": "sample"},
            ],
        },
        "phases": [
            {
                "name": "Main",
                "start": "2026-01-01T00:00:00Z",
                "end": None,
                "daily_limit": 5,
                "total_limit": None,
                "late_submissions_scored": False,
            }
        ],
    }
    document.update(overrides)
    return document


def write_bundle(
    root: Path, document: dict | None = None, *, files: dict[str, str] | None = None
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    contents = {
        "description.md": "# Tiny\n\nPredict the label.\n",
        "solution.csv": TRUTH,
        "train.csv": "id,x,label\nt0,1,yes\nt1,2,no\n",
        "test.csv": "id,x\n" + "".join(f"{rid},{i}\n" for i, rid in enumerate(IDS)),
        "sample_submission.csv": SAMPLE,
        **(files or {}),
    }
    for name, text in contents.items():
        (root / name).write_text(text)
    (root / "competition.yaml").write_text(yaml.safe_dump(document or bundle_yaml()))
    return root


def zip_folder(folder: Path, dest: Path, *, prefix: str = "") -> Path:
    with zipfile.ZipFile(dest, "w") as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, prefix + path.relative_to(folder).as_posix())
    return dest


def problems_of(source: Path) -> list[str]:
    with pytest.raises(BundleInvalid) as excinfo:
        bundle_import(source=source, organizer=None)
    return excinfo.value.problems


@pytest.fixture
def importer(db):
    return User.objects.create_user("importer", password="pw-importer")


def test_it_imports_a_folder_bundle(tmp_path, importer):
    competition = bundle_import(source=write_bundle(tmp_path / "b"), organizer=importer)

    assert competition.slug == "tiny-bundle"
    assert competition.description.startswith("# Tiny")
    assert competition.rules == "Be *kind*.\nNo sharing.\n"
    assert competition.start_at is not None
    assert competition.start_at.isoformat() == "2026-01-01T00:00:00+00:00"
    assert list(competition.organizers.all()) == [importer]
    task = competition.task
    assert (task.task_type, task.classes, task.primary_metric) == (
        "binary",
        ["no", "yes"],
        "roc_auc",
    )
    assert task.secondary_metrics == ["accuracy", "log_loss"]
    assert task.ground_truth_size == len(TRUTH)
    assert task.ground_truth.open("rb").read().decode() == TRUTH
    files = {f.name: f for f in task.files.all()}
    assert set(files) == {"train.csv", "test.csv", "sample_submission.csv"}
    assert files["sample_submission.csv"].kind == TaskFile.Kind.SAMPLE
    assert files["sample_submission.csv"].size == len(SAMPLE)
    assert len(files["train.csv"].sha256) == 64
    assert files["train.csv"].description == "Rows with labels"
    phase = competition.phases.get()
    assert (phase.name, phase.daily_limit, phase.end_at) == ("Main", 5, None)


def test_it_keeps_the_ground_truth_in_the_private_storage(tmp_path):
    competition = bundle_import(source=write_bundle(tmp_path / "b"), organizer=None)

    truth_path = Path(competition.task.ground_truth.path)
    private_root = Path(storages["private"].path("")).resolve()
    public_root = Path(storages["default"].path("")).resolve()
    assert truth_path.resolve().is_relative_to(private_root)
    assert not truth_path.resolve().is_relative_to(public_root)
    sample = competition.task.files.get(kind="sample")
    assert Path(sample.file.path).resolve().is_relative_to(public_root)


def test_it_imports_a_zip_with_or_without_a_top_folder(tmp_path):
    folder = write_bundle(tmp_path / "b")
    flat = zip_folder(folder, tmp_path / "flat.zip")
    nested = zip_folder(folder, tmp_path / "nested.zip", prefix="tiny/")

    assert bundle_import(source=flat, organizer=None).slug == "tiny-bundle"
    Competition.objects.all().delete()
    assert bundle_import(source=nested, organizer=None).task.files.count() == 3


def test_it_reports_every_schema_problem_at_once(tmp_path):
    document = bundle_yaml(visibility="secret", colour="blue", selection_limit=0)
    del document["title"]
    document["task"]["primary_metric"] = "auc"
    document["task"]["secondary_metrics"] = ["accuracy", "rmse"]
    document["phases"][0]["daily_limit"] = "many"

    problems = problems_of(write_bundle(tmp_path / "b", document))

    assert any(p.startswith("colour: unknown key") for p in problems)
    assert "title: is required and must be text." in problems
    assert any(p.startswith('visibility: "secret" is not one of public') for p in problems)
    assert any(
        p.startswith("selection_limit: 0 must be a whole number of at least 1") for p in problems
    )
    assert any(
        p.startswith('task.primary_metric: "auc" is not a metric for binary tasks (choose from ')
        for p in problems
    )
    assert any(
        p.startswith('task.secondary_metrics[1]: "rmse" is not a metric for binary tasks')
        for p in problems
    )
    assert any(p.startswith('phases[0].daily_limit: "many"') for p in problems)


def test_it_lists_the_metrics_to_choose_from(tmp_path):
    document = bundle_yaml()
    document["task"]["primary_metric"] = "auc"

    (problem,) = problems_of(write_bundle(tmp_path / "b", document))

    assert "roc_auc" in problem
    assert "accuracy" in problem
    assert "rmse" not in problem


def test_it_checks_the_task_spec(tmp_path):
    document = bundle_yaml()
    document["task"]["classes"] = ["no", "maybe", "yes"]

    problems = problems_of(write_bundle(tmp_path / "b", document))

    assert problems == ["task: A binary task has exactly two classes (the positive class last)."]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/etc/passwd", "must be a relative path"),
        ("../outside.csv", "must not contain '..'"),
        ("data/../../outside.csv", "must not contain '..'"),
        ("missing.csv", "is not a file in the bundle"),
        ("C:/truth.csv", "must be a relative path"),
    ],
)
def test_it_rejects_paths_that_leave_the_bundle(tmp_path, path, expected):
    (tmp_path / "outside.csv").write_text(TRUTH)
    document = bundle_yaml()
    document["task"]["ground_truth"] = path

    problems = problems_of(write_bundle(tmp_path / "b", document))

    assert len(problems) == 1
    assert problems[0].startswith("task.ground_truth: ")
    assert expected in problems[0]


def test_it_rejects_symlinks(tmp_path):
    (tmp_path / "secret.csv").write_text(TRUTH)
    folder = write_bundle(tmp_path / "b")
    (folder / "solution.csv").unlink()
    os.symlink(tmp_path / "secret.csv", folder / "solution.csv")

    problems = problems_of(folder)

    assert problems == [
        'task.ground_truth: "solution.csv" is a symbolic link; bundles hold real files only.'
    ]


def test_it_rejects_zip_entries_that_escape_the_root(tmp_path):
    folder = write_bundle(tmp_path / "b")
    archive = zip_folder(folder, tmp_path / "evil.zip")
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("../escaped.txt", "gotcha")
        zf.writestr("/abs.txt", "gotcha")

    problems = problems_of(archive)

    assert "../escaped.txt: entries must not contain '..'." in problems
    assert any(p.startswith("/abs.txt: entries must be relative") for p in problems)
    assert not (tmp_path / "escaped.txt").exists()


def test_it_rejects_symlinks_inside_a_zip(tmp_path):
    archive = zip_folder(write_bundle(tmp_path / "b"), tmp_path / "link.zip")
    with zipfile.ZipFile(archive, "a") as zf:
        link = zipfile.ZipInfo("solution_link.csv")
        link.external_attr = 0o120777 << 16  # a symlink's mode bits
        zf.writestr(link, "/etc/passwd")

    assert problems_of(archive) == [
        "solution_link.csv: symbolic links are not allowed in a bundle."
    ]


def test_it_refuses_a_zip_that_unpacks_beyond_the_upload_limit(tmp_path, settings):
    settings.HELDOUT_MAX_UPLOAD_BYTES = 64 * 1024
    folder = write_bundle(tmp_path / "b", files={"big.csv": "0" * 1_000_000})
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in folder.iterdir():
            zf.write(path, path.name)

    assert archive.stat().st_size < settings.HELDOUT_MAX_UPLOAD_BYTES
    (problem,) = problems_of(archive)
    assert "more than the limit of 65536" in problem


def test_it_rejects_a_sample_submission_that_does_not_validate(tmp_path):
    sample = "id,label\n" + "".join(f"{rid},0.5\n" for rid in IDS[:-1])

    problems = problems_of(write_bundle(tmp_path / "b", files={"sample_submission.csv": sample}))

    assert problems
    assert all(
        p.startswith("task.files[2] (sample submission): sample_submission.csv: ") for p in problems
    )
    assert any("r9" in p for p in problems)


def test_it_reports_ground_truth_problems(tmp_path):
    truth = TRUTH.replace("r3,no", "r3,perhaps")

    problems = problems_of(write_bundle(tmp_path / "b", files={"solution.csv": truth}))

    assert len(problems) == 1
    assert problems[0].startswith("task.ground_truth: solution.csv: ")
    assert "perhaps" in problems[0]


def test_it_requires_a_sample_submission_and_never_publishes_the_truth(tmp_path):
    document = bundle_yaml()
    document["task"]["files"] = [{"path": "solution.csv", "kind": "train"}]

    problems = problems_of(write_bundle(tmp_path / "b", document))

    assert "task.files[0].path: is the ground truth, which must never be published." in problems
    assert "task.files: must include a sample submission (kind: sample)." in problems


def test_it_rejects_overlapping_phases(tmp_path):
    phases = [
        {"name": "One", "start": "2026-01-01T00:00:00Z", "end": "2026-02-01T00:00:00Z"},
        {"name": "Two", "start": "2026-01-15T00:00:00Z"},
    ]

    problems = problems_of(write_bundle(tmp_path / "b", bundle_yaml(phases=phases)))

    assert problems == ['phases: "One" overlaps "Two"; phases must not overlap.']


def test_it_refuses_a_slug_that_exists(tmp_path):
    bundle_import(source=write_bundle(tmp_path / "a"), organizer=None)

    problems = problems_of(write_bundle(tmp_path / "b"))

    assert problems == [
        'slug: a competition named "tiny-bundle" already exists; choose another slug.'
    ]


def test_it_leaves_nothing_behind_when_the_import_fails(tmp_path):
    private = Path(storages["private"].path(""))
    before = set(private.rglob("*")) if private.exists() else set()

    with (
        mock.patch.object(Phase, "full_clean", side_effect=RuntimeError("boom")),
        pytest.raises(RuntimeError),
    ):
        bundle_import(source=write_bundle(tmp_path / "b"), organizer=None)

    assert not Competition.objects.exists()
    after = {p for p in private.rglob("*") if p.is_file()}
    assert after <= before


def test_an_exported_bundle_imports_as_the_same_competition(tmp_path, importer):
    document = bundle_yaml(visibility="invite_only", selection_limit=3, end="2026-06-01T00:00:00Z")
    document["phases"] = [
        {"name": "Warm-up", "start": "2026-01-01T00:00:00Z", "end": "2026-02-01T00:00:00Z",
         "daily_limit": 10, "total_limit": 50},
        {"name": "Final", "start": "2026-02-01T00:00:00Z", "end": "2026-06-01T00:00:00Z",
         "late_submissions_scored": True},
    ]  # fmt: skip
    original = bundle_import(source=write_bundle(tmp_path / "b", document), organizer=importer)
    before = _snapshot(original)

    archive = bundle_export(competition=original, dest=tmp_path / "out" / "export.zip")
    original.delete()
    copy = bundle_import(source=archive, organizer=importer)

    assert _snapshot(copy) == before


def _snapshot(competition: Competition) -> dict:
    task = competition.task
    fields = ["slug", "title", "description", "rules", "visibility", "start_at", "end_at"]
    return {
        "competition": {f: getattr(competition, f) for f in [*fields, "selection_limit"]},
        "task": [
            task.task_type, task.id_column, task.target_columns, task.classes,
            task.primary_metric, task.secondary_metrics, task.ground_truth_sha256, task.ground_truth_size,
        ],
        "files": sorted((f.name, f.kind, f.description, f.sha256, f.size) for f in task.files.all()),
        "phases": list(
            competition.phases.order_by("start_at").values_list(
                "name", "start_at", "end_at", "daily_limit", "total_limit", "late_submissions_scored"
            )
        ),
    }  # fmt: skip


def test_the_management_commands_import_and_export(tmp_path, importer):
    folder = write_bundle(tmp_path / "b")

    call_command("import_bundle", str(folder), "--organizer", "importer")
    call_command("export_bundle", "tiny-bundle", str(tmp_path / "out.zip"))

    competition = Competition.objects.get(slug="tiny-bundle")
    assert list(competition.organizers.all()) == [importer]
    with zipfile.ZipFile(tmp_path / "out.zip") as zf:
        assert "competition.yaml" in zf.namelist()
        assert "data/sample_submission.csv" in zf.namelist()


def test_the_import_command_lists_the_problems(tmp_path):
    document = bundle_yaml(visibility="secret")

    with pytest.raises(CommandError, match='visibility: "secret"'):
        call_command("import_bundle", str(write_bundle(tmp_path / "b", document)))


def test_it_reports_a_corrupt_zip_entry(tmp_path):
    archive = zip_folder(write_bundle(tmp_path / "b"), tmp_path / "corrupt.zip")
    data = bytearray(archive.read_bytes())
    start = data.index(b"id,x,label")  # train.csv, stored uncompressed
    data[start : start + 5] = b"XXXXX"
    archive.write_bytes(bytes(data))

    (problem,) = problems_of(archive)

    assert problem.startswith("train.csv: could not be unpacked (Bad CRC-32")


def test_it_rejects_something_that_is_neither_folder_nor_zip(tmp_path):
    (tmp_path / "bundle.tar").write_text("not a zip")

    assert problems_of(tmp_path / "bundle.tar") == ["bundle.tar: not a folder or a zip file."]
