"""replay.py never crashes: every difference is reported, in text and in --json, with a
non-zero exit status when the scores are not reproduced, and any stored manifest (older
ones, those under manifests/) can be replayed. Run as a bundle's reader would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scoring import replay
from tests import factories
from tests.reproducibility.replaying import replay_json, run_replay

# One byte of one id changed: the file's hash, the split and every score change.
TAMPERED = factories.truth_csv().replace("\nid1,", "\nie1,")


def _edit_manifest(folder: Path, edit) -> dict:
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))
    return manifest


# --- Run as the reader would (real Docker engine) ---------------------------------------------


@pytest.mark.django_db
@pytest.mark.docker
def test_a_ground_truth_with_one_byte_of_an_id_changed_is_not_reproduced_and_says_why(
    bundle_dir,
):
    assert sum(a != b for a, b in zip(TAMPERED, factories.truth_csv(), strict=True)) == 1
    (bundle_dir / "truth.csv").write_text(TAMPERED)

    done = run_replay(bundle_dir, "--truth", "truth.csv")
    status, report = replay_json(bundle_dir, "--truth", "truth.csv")

    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    assert done.stderr == ""
    text = done.stdout
    assert "NOT REPRODUCED: 4 recorded score(s) missing from the replay" in text
    assert "validation problems: recorded 0, replayed 2" in text
    assert "public roc_auc: recorded 0.888888888888889, replayed nothing" in text
    assert 'id "id1" is not in the test set' in text
    assert status == 1
    assert report["outcome"] == "not_reproduced"
    assert report["max_abs_difference"] is None
    what = {d["what"]: d for d in report["differences"]}
    assert set(what) == {
        "ground truth sha256",
        "split sha256",
        "validation problems",
        "public roc_auc",
        "public accuracy",
        "private roc_auc",
        "private accuracy",
    }
    assert what["validation problems"] == {"what": "validation problems", "recorded": 0,
                                           "replayed": 2}  # fmt: skip
    assert {d["replayed"] for w, d in what.items() if w.endswith(("roc_auc", "accuracy"))} == {None}
    assert len(report["replayed"]["problems"]) == 2


@pytest.mark.django_db
@pytest.mark.docker
def test_a_recorded_score_the_replay_does_not_produce_is_missing(bundle_dir):
    _edit_manifest(bundle_dir, lambda m: m["scores"]["public"].update(log_loss=0.5))
    (bundle_dir / "truth.csv").write_text(factories.truth_csv())

    done = run_replay(bundle_dir, "--truth", "truth.csv")
    status, report = replay_json(bundle_dir, "--truth", "truth.csv")

    assert done.returncode == 1
    assert "1 recorded score(s) missing from the replay" in done.stdout
    assert "public log_loss: recorded 0.5, replayed nothing" in done.stdout
    assert status == 1
    assert report["outcome"] == "not_reproduced"
    assert report["compared_scores"] == 5
    assert report["differences"] == [{"what": "public log_loss", "recorded": 0.5, "replayed": None}]


@pytest.mark.django_db
@pytest.mark.docker
def test_a_score_the_manifest_does_not_record_is_extra(bundle_dir):
    manifest = _edit_manifest(bundle_dir, lambda m: m["scores"]["private"].pop("accuracy"))
    (bundle_dir / "truth.csv").write_text(factories.truth_csv())

    status, report = replay_json(bundle_dir, "--truth", "truth.csv")

    assert status == 1
    assert report["outcome"] == "not_reproduced"
    assert report["compared_scores"] == 3
    extra = report["replayed"]["scores"]["private"]["accuracy"]
    assert report["differences"] == [
        {"what": "private accuracy", "recorded": None, "replayed": extra}
    ]
    assert "accuracy" not in manifest["scores"]["private"]


@pytest.mark.django_db
@pytest.mark.docker
def test_a_different_problem_count_is_not_reproduced(bundle_dir):
    _edit_manifest(bundle_dir, lambda m: m["validation"].update(total_problems=3))
    (bundle_dir / "truth.csv").write_text(factories.truth_csv())

    done = run_replay(bundle_dir, "--truth", "truth.csv")
    status, report = replay_json(bundle_dir, "--truth", "truth.csv")

    assert done.returncode == 1
    assert "the scorer found 0 problem(s) in the files, the platform 3" in done.stdout
    assert status == 1
    assert report["differences"] == [{"what": "validation problems", "recorded": 3, "replayed": 0}]


@pytest.mark.django_db
@pytest.mark.docker
def test_every_manifest_under_manifests_replays_with_the_bundles_predictions(bundle_dir):
    (bundle_dir / "truth.csv").write_text(factories.truth_csv())
    older = sorted((bundle_dir / "manifests").glob("*.json"))
    assert older

    for path in older:
        status, report = replay_json(
            bundle_dir, "--truth", "truth.csv", "--manifest", str(path.relative_to(bundle_dir))
        )
        assert status == 0, report
        assert report["outcome"] == "reproduced"
        assert report["compared_scores"] == 4


def _before_provenance(m: dict) -> None:
    # Scorer images before provenance: no libraries, no split digest, no row counts.
    m["libraries"] = {"source": "not reported by the scorer", "versions": {}}
    m["ground_truth"].pop("split_sha256")
    m["ground_truth"].pop("rows")


def _sparse(m: dict) -> None:
    # Only what a replay needs; everything else absent or null.
    for key in ("schema_version", "kind", "platform", "container", "metrics", "timing", "host"):
        m.pop(key, None)
    for key in ("validation", "stages", "random_seeds", "libraries"):
        m[key] = None
    m["scorer"] = {"image": m["scorer"]["image"], "program": "python -m scoring.cli"}


def _flat_libraries(m: dict) -> None:
    m["libraries"] = m["libraries"]["versions"]


@pytest.mark.django_db
@pytest.mark.docker
def test_older_and_sparser_manifest_shapes_replay_without_a_traceback(bundle_dir):
    (bundle_dir / "truth.csv").write_text(factories.truth_csv())
    original = (bundle_dir / "manifest.json").read_text()
    recorded_digest = json.loads(original)["scorer"]["image_digest"]

    for shape in (_before_provenance, _sparse, _flat_libraries):
        (bundle_dir / "manifest.json").write_text(original)
        _edit_manifest(bundle_dir, shape)

        status, report = replay_json(bundle_dir, "--truth", "truth.csv")

        assert status == 0, (shape.__name__, report)
        assert report["outcome"] == "reproduced", shape.__name__
        assert report["compared_scores"] == 4
        assert report["differences"] == [], shape.__name__
        assert report["replayed"]["image_digest"] == recorded_digest
        if shape is not _flat_libraries:
            # Nothing recorded is nothing to differ from: said once, not as differences.
            (note,) = report["notes"]
            assert note.startswith("not recorded in this manifest, so not compared: ")
            assert "numpy version" in note
            assert ("scorer image digest" in note) is (shape is _sparse)
        else:
            assert report["notes"] == []


@pytest.mark.django_db
@pytest.mark.docker
def test_a_mangled_manifest_is_reported_not_a_traceback(bundle_dir):
    (bundle_dir / "truth.csv").write_text(factories.truth_csv())
    _edit_manifest(bundle_dir, lambda m: m.update(scores=[1, 2], validation="x", ground_truth=[]))

    done = run_replay(bundle_dir, "--truth", "truth.csv")
    status, report = replay_json(bundle_dir, "--truth", "truth.csv")

    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    assert status == 1
    assert report["compared_scores"] == 0
    assert {d["what"] for d in report["differences"]} == {
        "public roc_auc",
        "public accuracy",
        "private roc_auc",
        "private accuracy",
    }


@pytest.mark.django_db
@pytest.mark.docker
def test_a_manifest_that_is_not_json_cannot_run_and_json_says_so(bundle_dir):
    (bundle_dir / "manifest.json").write_text("{not json")
    (bundle_dir / "truth.csv").write_text(factories.truth_csv())

    done = run_replay(bundle_dir, "--truth", "truth.csv", "--json")

    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("replay: the manifest")
    assert json.loads(done.stdout)["outcome"] == "not_run"


# --- The comparison and the last resort, in process (no Django, no Docker) --------------------


def test_anything_unexpected_is_one_sentence_and_exit_status_2(monkeypatch, capsys, tmp_path):
    def boom(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(replay, "replay", boom)

    status = replay.main(["--truth", str(tmp_path / "t.csv")])

    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("replay: unexpected error (RuntimeError: boom)")
    assert "Traceback" not in err


def test_a_score_that_is_not_a_number_or_not_finite_is_not_reproduced():
    manifest = {"scores": {"public": {"roc_auc": 0.5, "accuracy": "0.5"}}}
    replayed = {"scores": {"public": {"roc_auc": float("nan"), "accuracy": 0.5}}}

    report = replay.compare(manifest, replayed, tolerance=1.0)

    assert report["outcome"] == "not_reproduced"
    assert {d["what"] for d in report["differences"]} == {"public roc_auc", "public accuracy"}
    assert json.loads(json.dumps(replay._jsonable(report)))["scores"][1]["replayed"] == "nan"


def test_rows_withheld_from_the_reader_are_not_compared_but_the_others_are():
    manifest = {
        "ground_truth": {"rows": {"public": 6, "private": None}},
        "withheld": ["scores.private", "ground_truth.rows.private"],
        "scores": {"public": {"roc_auc": 0.5}},
    }
    replayed = {
        "rows": {"public": 7, "private": 4},
        "scores": {"public": {"roc_auc": 0.5}, "private": {"roc_auc": 0.1}},
    }

    report = replay.compare(manifest, replayed, tolerance=0)

    assert report["differences"] == [{"what": "public rows", "recorded": 6, "replayed": 7}]
    assert report["outcome"] == "reproduced"  # the verdict is about the scores


def test_the_text_names_the_largest_difference_beyond_the_tolerance_and_extra_scores():
    manifest = {"scores": {"public": {"roc_auc": 0.9}}, "validation": {"total_problems": 0}}
    moved = {"scores": {"public": {"roc_auc": 0.8}}, "total_problems": 0}
    extra = {"scores": {"public": {"roc_auc": 0.9, "accuracy": 0.5}}, "total_problems": 0}

    moved_text = replay._text(replay.compare(manifest, moved, tolerance=0.01))
    extra_text = replay._text(replay.compare(manifest, extra, tolerance=0.01))

    assert "NOT REPRODUCED: the largest difference is 0.1, beyond the tolerance 0.01." in (
        moved_text
    )
    assert "public roc_auc: recorded 0.9, replayed 0.8" in moved_text
    assert "NOT REPRODUCED: some scores are extra or are not numbers." in extra_text
    assert "public accuracy: recorded nothing, replayed 0.5" in extra_text
