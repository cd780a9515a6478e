"""replay.py, run as a reader would: unzipped from a bundle into a clean folder, with a
bare interpreter (no site-packages, no project on the path) and the real Docker engine."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json

import docker
import pytest
from django.core.files.base import ContentFile

from competitions.models import ScoringRun, Submission
from competitions.services.submissions import submission_create
from judging.services import submission_score
from scoring.sandbox_docker import DockerRunner
from tests import factories
from tests.reproducibility.replaying import PREDICTIONS, replay_json, run_replay, unzip_bundle

pytestmark = [pytest.mark.django_db, pytest.mark.docker]


@pytest.fixture
def derived_images(docker_client, scored):
    """Builds images from the recorded scorer image, offline; removes them afterwards."""
    made: list[str] = []

    def build(tag: str, *lines: str) -> str:
        digest = ScoringRun.objects.get(submission=scored).manifest["scorer"]["image_digest"]
        dockerfile = "\n".join([f"FROM {digest}", *lines]) + "\n"
        image, _ = docker_client.images.build(
            fileobj=io.BytesIO(dockerfile.encode()), tag=tag, network_mode="none", rm=True
        )
        made.append(tag)
        return str(image.id)

    yield build
    for tag in made:
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(tag, force=True)


def test_replay_reproduces_every_score_bit_for_bit_from_a_bundle(bundle_dir, scored):
    (bundle_dir / "truth.csv").write_text(factories.truth_csv())

    status, report = replay_json(bundle_dir, "--truth", "truth.csv")

    assert status == 0
    assert report["outcome"] == "reproduced"
    assert report["differences"] == []
    assert report["max_abs_difference"] == 0
    assert report["compared_scores"] == 4  # roc_auc and accuracy on both splits
    recorded = ScoringRun.objects.get(submission=scored).manifest["scores"]
    assert report["replayed"]["scores"] == recorded
    assert (
        report["replayed"]["image_digest"]
        == json.loads((bundle_dir / "manifest.json").read_text())["scorer"]["image_digest"]
    )


def test_replay_detects_a_changed_ground_truth(bundle_dir):
    # id1 becomes positive (public) and id8 negative (private).
    changed = factories.truth_csv().replace("id1,0,", "id1,1,").replace("id8,1,", "id8,0,")
    (bundle_dir / "truth.csv").write_text(changed)

    status, report = replay_json(bundle_dir, "--truth", "truth.csv")

    assert status == 1
    assert report["outcome"] == "not_reproduced"
    what = {d["what"]: d for d in report["differences"]}
    assert what["ground truth sha256"]["replayed"] != what["ground truth sha256"]["recorded"]
    assert "split sha256" not in what  # same ids, same public and private rows
    assert {"public roc_auc", "private roc_auc"} <= set(what)
    assert "scorer image digest" not in what


def test_replay_detects_a_changed_image_even_when_the_scores_agree(bundle_dir, derived_images):
    (bundle_dir / "truth.csv").write_text(factories.truth_csv())
    other = derived_images("heldout-replay-test:relabelled", "LABEL heldout.test=relabelled")

    status, report = replay_json(bundle_dir, "--truth", "truth.csv", "--image", other)

    assert status == 0
    assert report["outcome"] == "reproduced"
    assert report["differences"] == [
        {
            "what": "scorer image digest",
            "recorded": json.loads((bundle_dir / "manifest.json").read_text())["scorer"][
                "image_digest"
            ],
            "replayed": other,
        }
    ]


def test_replay_shows_the_scores_a_changed_image_moves(bundle_dir, derived_images):
    (bundle_dir / "truth.csv").write_text(factories.truth_csv())
    # The same libraries, but accuracy halved by an edited metric.
    other = derived_images(
        "heldout-replay-test:halved",
        "USER 0",
        "RUN sed -i 's/return float(np.mean(_labels(y_true, spec) == _labels(y_pred, spec)))"
        "/return 0.5 * float(np.mean(_labels(y_true, spec) == _labels(y_pred, spec)))/' "
        "/opt/heldout/scoring/metrics.py && rm -rf /opt/heldout/scoring/__pycache__",
        "USER 65534",
    )

    status, report = replay_json(bundle_dir, "--truth", "truth.csv", "--image", other)

    assert status == 1
    assert report["outcome"] == "not_reproduced"
    what = {d["what"]: d for d in report["differences"]}
    assert set(what) == {"scorer image digest", "public accuracy", "private accuracy"}
    for split in ("public", "private"):
        assert what[f"{split} accuracy"]["replayed"] == what[f"{split} accuracy"]["recorded"] / 2
    assert not [k for k in what if k.endswith("version")]  # the libraries did not change


def test_replay_reports_within_tolerance_with_the_largest_difference(bundle_dir):
    manifest_path = bundle_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["scores"]["public"]["roc_auc"] += 1e-12
    manifest_path.write_text(json.dumps(manifest))
    (bundle_dir / "truth.csv").write_text(factories.truth_csv())

    status, report = replay_json(bundle_dir, "--truth", "truth.csv", "--tolerance", "1e-9")

    assert status == 0
    assert report["outcome"] == "within_tolerance"
    assert 0 < report["max_abs_difference"] <= 1e-9
    assert [d["what"] for d in report["differences"]] == ["public roc_auc"]


def test_a_strangers_bundle_asks_for_the_predictions(api, scored, tmp_path):
    folder = unzip_bundle(api, None, scored, tmp_path / "stranger")
    (folder / "truth.csv").write_text(factories.truth_csv())
    (folder / "mine.csv").write_bytes(factories.predictions_csv(PREDICTIONS))

    without = run_replay(folder, "--truth", "truth.csv")
    status, report = replay_json(folder, "--truth", "truth.csv", "--predictions", "mine.csv")

    assert without.returncode == 2
    assert "pass the scored file with --predictions" in without.stderr
    assert "Traceback" not in without.stderr
    assert status == 0
    assert report["outcome"] == "reproduced"
    assert report["compared_scores"] == 2  # the private scores are withheld from strangers
    # Its replayed private scores are neither compared nor reported as extra.
    assert report["differences"] == []
    assert report["notes"] == [
        "the private split is withheld from this bundle: its scores were not compared"
    ]


SCORE_PY = """
import csv, json
from sklearn.metrics import accuracy_score, roc_auc_score

truth = list(csv.DictReader(open("/input/truth")))
predicted = {r["id"]: float(r["label"]) for r in csv.DictReader(open("/input/predictions"))}
scores = {}
for split in ("Public", "Private"):
    rows = [r for r in truth if r["Usage"] == split]
    y = [int(r["label"]) for r in rows]
    p = [predicted[r["id"]] for r in rows]
    scores[split.lower()] = {
        "roc_auc": roc_auc_score(y, p),
        "accuracy": accuracy_score(y, [int(v >= 0.5) for v in p]),
    }
json.dump(scores, open("/output/scores.json", "w"))
"""


@pytest.fixture
def program_scored(competition, participant, docker_client, scorer_image) -> Submission:
    """A submission scored by the organizers' (private) program, in Docker."""
    task = competition.task
    task.scorer_program.save("score.py", ContentFile(SCORE_PY.encode()), save=False)
    task.scorer_program_sha256 = hashlib.sha256(SCORE_PY.encode()).hexdigest()
    task.scorer_program_public = False
    task.scorer_image = docker_client.images.get(scorer_image).id
    task.save()
    submission = submission_create(
        competition=competition,
        user=participant,
        uploaded_file=factories.upload(factories.predictions_csv(PREDICTIONS)),
    )
    submission_score(submission_id=submission.pk, runner=DockerRunner(docker_client))
    manifest = ScoringRun.objects.get(submission=submission).manifest
    assert manifest["scorer"]["program"] == "organizer score.py"
    assert manifest["scorer"]["program_sha256"] == task.scorer_program_sha256
    return submission


@pytest.mark.parametrize("public", [True, False])
def test_the_organizers_replay_an_entry_scored_by_their_program_public_or_private(
    api, competition, organizer, program_scored, tmp_path, public
):
    competition.task.scorer_program_public = public
    competition.task.save()
    folder = unzip_bundle(api, organizer, program_scored, tmp_path / "organizer")
    assert (folder / "scorer" / "score.py").read_text() == SCORE_PY
    (folder / "truth.csv").write_text(factories.truth_csv())

    status, report = replay_json(folder, "--truth", "truth.csv")

    assert status == 0
    assert report["outcome"] == "reproduced"
    assert report["compared_scores"] == 4
    assert report["differences"] == []
    assert report["replayed"]["program_sha256"] == competition.task.scorer_program_sha256


def test_the_team_cannot_replay_a_private_program_and_is_told_why(
    api, participant, program_scored, tmp_path
):
    folder = unzip_bundle(api, participant, program_scored, tmp_path / "team")
    assert not (folder / "scorer").exists()
    (folder / "truth.csv").write_text(factories.truth_csv())

    done = run_replay(folder, "--truth", "truth.csv", "--json")

    assert done.returncode == 2
    assert "does not hold (the organizers did not make it public)" in done.stderr
    assert "Traceback" not in done.stderr
    assert json.loads(done.stdout)["outcome"] == "not_run"


def test_a_program_crashing_on_a_tampered_truth_is_reported_apart_from_replay(
    api, organizer, program_scored, tmp_path
):
    folder = unzip_bundle(api, organizer, program_scored, tmp_path / "organizer")
    # One byte of an id: the example program looks the id up and raises KeyError.
    (folder / "truth.csv").write_text(factories.truth_csv().replace("\nid1,", "\nie1,"))

    done = run_replay(folder, "--truth", "truth.csv")

    assert done.returncode == 2
    first, *log = done.stderr.splitlines()
    assert first == "replay: the scorer exited with code 1; its log ends with:"
    assert log
    assert all(line.startswith("    | ") for line in log)
    assert "KeyError: 'ie1'" in log[-1]
