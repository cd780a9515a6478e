"""Claim pages, manifests, bundles, published labels and model-index: who sees what."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import pytest
import yaml
from django.core.files.base import ContentFile

from competitions.models import Attempt, Competition, Submission
from competitions.services.submissions import submission_create
from judging.services import submission_score
from scoring.scorers import InProcessScorer
from tests import factories
from tests.conftest import persona_user

pytestmark = pytest.mark.django_db

STRANGERS = ["anonymous", "outsider", "other_participant", "other_organizer"]
# Perfect on the public rows, inverted on the private positives: private ROC AUC is 0.
SPLIT_APART = {f"id{i}": 1.0 if i >= 5 else 0.0 for i in range(10)} | {
    "id8": 0.1,
    "id9": 0.2,
    "id3": 0.9,
    "id4": 0.8,
}


def _scored(competition, user, content: bytes, **fields) -> Submission:
    submission = submission_create(
        competition=competition, user=user, uploaded_file=factories.upload(content), **fields
    )
    submission_score(submission_id=submission.pk, scorer=InProcessScorer())
    submission.refresh_from_db()
    return submission


@pytest.fixture
def entry(competition, participant) -> Submission:
    """The participant's team's leaderboard row."""
    return _scored(
        competition,
        participant,
        factories.predictions_csv(SPLIT_APART),
        method_name="Gradient boosting",
        hardware_declared="2x A100 80GB",
        paper_url="https://example.org/paper",
    )


@pytest.fixture
def off_board(entry, competition, participant) -> Submission:
    """A worse submission of the same team: not a leaderboard row."""
    return _scored(competition, participant, factories.predictions_csv(default=0.5))


def _finalize(api, organizer, competition) -> None:
    response = api(organizer).post(f"/api/v1/competitions/{competition.slug}/finalize/")
    assert response.status_code == 200


def _bundle(api, user, submission) -> zipfile.ZipFile:
    response = api(user).get(f"/api/v1/submissions/{submission.pk}/bundle/")
    assert response.status_code == 200, response.status_code
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


# --- The claim page ------------------------------------------------------------------------


def test_the_claim_is_one_sentence_with_hardware_method_metric_split_size_and_scorer(
    client, competition, entry
):
    response = client.get(f"/c/{competition.slug}/entries/{entry.pk}/")

    assert response.status_code == 200
    page = response.content.decode()
    assert (
        "Given 2x A100 80GB (as declared), Gradient boosting reaches ROC AUC = 1 on the public "
        "split (6 rows) of Competition tiny (task version 1), scored by the in-process scorer "
        "(no image)." in page
    )
    assert "private split" not in page
    assert "https://example.org/paper" in page
    assert f"/api/v1/submissions/{entry.pk}/bundle/" in page
    assert f"/api/v1/submissions/{entry.pk}/file/" not in page  # not for strangers
    assert "&quot;roc_auc&quot;: 1.0" in page  # the manifest, beneath


def test_the_private_claim_appears_once_the_competition_is_finalized(
    client, api, competition, organizer, entry
):
    _finalize(api, organizer, competition)

    page = client.get(f"/c/{competition.slug}/entries/{entry.pk}/").content.decode()

    assert "reaches ROC AUC = 0 on the private split (4 rows)" in page


def test_the_team_sees_the_link_to_its_file_on_its_claim_page(
    client, competition, participant, entry
):
    client.force_login(participant)

    page = client.get(f"/c/{competition.slug}/entries/{entry.pk}/").content.decode()

    assert f"/api/v1/submissions/{entry.pk}/file/" in page


@pytest.mark.parametrize("persona", STRANGERS)
def test_strangers_see_leaderboard_rows_but_not_other_submissions(
    request, client, competition, entry, off_board, persona
):
    user = persona_user(request, persona)
    if user is not None:
        client.force_login(user)

    assert client.get(f"/c/{competition.slug}/entries/{entry.pk}/").status_code == 200
    assert client.get(f"/c/{competition.slug}/entries/{off_board.pk}/").status_code == 404
    assert client.get(f"/c/other/entries/{entry.pk}/").status_code == 404


@pytest.mark.parametrize("persona", ["participant", "organizer"])
def test_the_team_and_organizers_see_every_submission_of_the_team(
    request, client, competition, off_board, persona
):
    client.force_login(request.getfixturevalue(persona))

    assert client.get(f"/c/{competition.slug}/entries/{off_board.pk}/").status_code == 200


@pytest.mark.parametrize("persona", ["anonymous", "outsider", "other_organizer"])
def test_entries_of_an_invite_only_competition_are_not_found_by_strangers(
    request, client, api, competition, entry, persona
):
    Competition.objects.filter(pk=competition.pk).update(visibility="invite_only")
    user = persona_user(request, persona)
    if user is not None:
        client.force_login(user)

    assert client.get(f"/c/{competition.slug}/entries/{entry.pk}/").status_code == 404
    assert api(user).get(f"/api/v1/submissions/{entry.pk}/manifest/").status_code == 404
    assert api(user).get(f"/api/v1/submissions/{entry.pk}/bundle/").status_code == 404


# --- The manifest over the API ---------------------------------------------------------------


@pytest.mark.parametrize("persona", STRANGERS)
def test_strangers_read_the_manifest_without_the_private_split_before_finalize(
    request, api, competition, organizer, entry, off_board, persona
):
    user = persona_user(request, persona)

    before = api(user).get(f"/api/v1/submissions/{entry.pk}/manifest/")
    hidden = api(user).get(f"/api/v1/submissions/{off_board.pk}/manifest/")
    _finalize(api, organizer, competition)
    after = api(user).get(f"/api/v1/submissions/{entry.pk}/manifest/")

    assert before.status_code == 200
    assert set(before.json()["scores"]) == {"public"}
    assert before.json()["ground_truth"]["rows"] == {"public": 6, "private": None}
    assert hidden.status_code == 404
    assert after.json()["scores"]["private"]["roc_auc"] == 0.0


def test_the_organizer_reads_the_private_split_in_the_manifest_before_finalize(
    api, organizer, entry
):
    manifest = api(organizer).get(f"/api/v1/submissions/{entry.pk}/manifest/").json()

    assert manifest["scores"]["private"]["roc_auc"] == 0.0
    assert "withheld" not in manifest


# --- Bundles ---------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", STRANGERS)
def test_a_strangers_bundle_has_the_manifest_and_replay_but_no_file_or_logs(
    request, api, entry, off_board, persona
):
    user = persona_user(request, persona)

    bundle = _bundle(api, user, entry)

    names = set(bundle.namelist())
    assert {"manifest.json", "replay.py", "README.txt"} <= names
    assert not [n for n in names if n.startswith(("predictions/", "logs/", "ground_truth/"))]
    manifest = json.loads(bundle.read("manifest.json"))
    assert set(manifest["scores"]) == {"public"}
    assert b"private" not in bundle.read("README.txt")
    response = api(user).get(f"/api/v1/submissions/{off_board.pk}/bundle/")
    assert response.status_code == 404


@pytest.mark.parametrize("persona", ["participant", "organizer"])
def test_the_team_and_organizers_get_the_scored_file_in_the_bundle(request, api, entry, persona):
    bundle = _bundle(api, request.getfixturevalue(persona), entry)

    assert bundle.read(f"predictions/{entry.original_name}") == factories.predictions_csv(
        SPLIT_APART
    )
    manifest = json.loads(bundle.read("manifest.json"))
    # Before finalize the team sees its private scores no more than anyone else does.
    assert ("private" in manifest["scores"]) is (persona == "organizer")
    assert not [n for n in bundle.namelist() if n.startswith("ground_truth/")]


def test_the_scorer_log_is_in_the_organizers_bundle_only_unless_opted_in(
    api, competition, participant, organizer, entry
):
    Attempt.objects.filter(submission=entry).update(scorer_log="scorer says: label of id3 is 0")

    assert "logs/scoring.log" in _bundle(api, organizer, entry).namelist()
    assert "logs/scoring.log" not in _bundle(api, participant, entry).namelist()
    competition.task.scorer_logs_visible = True
    competition.task.save()
    assert "logs/scoring.log" in _bundle(api, participant, entry).namelist()


PROGRAM = b"# the organizers' own scoring program\nimport json\n"


def _give_program(competition, *, public: bool) -> None:
    task = competition.task
    task.scorer_program.save("score.py", ContentFile(PROGRAM), save=False)
    task.scorer_program_sha256 = hashlib.sha256(PROGRAM).hexdigest()
    task.scorer_program_public = public
    task.save()


def test_the_organizers_bundle_holds_their_private_scoring_program(
    api, competition, organizer, entry
):
    _give_program(competition, public=False)

    bundle = _bundle(api, organizer, entry)

    assert bundle.read("scorer/score.py") == PROGRAM
    assert b"private: for the organizers only" in bundle.read("README.txt")


@pytest.mark.parametrize("persona", ["participant", *STRANGERS])
def test_no_one_but_the_organizers_gets_a_private_scoring_program(
    request, api, competition, entry, persona
):
    _give_program(competition, public=False)

    bundle = _bundle(api, persona_user(request, persona), entry)

    assert not [n for n in bundle.namelist() if n.startswith("scorer/")]
    assert not [n for n in bundle.namelist() if PROGRAM in bundle.read(n)]
    assert b"scorer/" not in bundle.read("README.txt")


@pytest.mark.parametrize("persona", ["participant", *STRANGERS])
def test_a_public_scoring_program_is_in_everyones_bundle(request, api, competition, entry, persona):
    _give_program(competition, public=True)

    bundle = _bundle(api, persona_user(request, persona), entry)

    assert bundle.read("scorer/score.py") == PROGRAM
    assert b"private: for the organizers only" not in bundle.read("README.txt")


@pytest.mark.parametrize(
    "persona", ["anonymous", "outsider", "participant", "other_participant", "other_organizer"]
)
def test_published_labels_go_into_bundles_and_download_for_everyone(
    request, api, competition, entry, persona
):
    user = persona_user(request, persona)
    url = f"/api/v1/competitions/{competition.slug}/ground-truth/"
    assert api(user).get(url).status_code == 404
    Competition.objects.filter(pk=competition.pk).update(labels_published=True)

    response = api(user).get(url)
    bundle = _bundle(api, user, entry)

    assert response.status_code == 200
    assert b"".join(response.streaming_content).decode() == factories.truth_csv()
    truths = [n for n in bundle.namelist() if n.startswith("ground_truth/")]
    assert len(truths) == 1
    assert bundle.read(truths[0]).decode() == factories.truth_csv()


@pytest.mark.parametrize("persona", ["anonymous", "outsider", "other_organizer"])
def test_published_labels_of_an_invite_only_competition_stay_hidden_from_strangers(
    request, api, competition, persona
):
    Competition.objects.filter(pk=competition.pk).update(
        labels_published=True, visibility="invite_only"
    )
    user = persona_user(request, persona)

    response = api(user).get(f"/api/v1/competitions/{competition.slug}/ground-truth/")

    assert response.status_code == 404


def test_an_other_competitions_organizer_gets_no_labels_until_published(
    api, competition, other_organizer, other_competition
):
    url = f"/api/v1/competitions/{competition.slug}/ground-truth/"
    assert api(other_organizer).get(url).status_code == 404
    Competition.objects.filter(pk=competition.pk).update(labels_published=True)
    assert api(other_organizer).get(url).status_code == 200


# --- The method card over the API --------------------------------------------------------------


def test_the_upload_api_takes_the_declared_hardware(api, competition, participant):
    response = api(participant).post(
        f"/api/v1/competitions/{competition.slug}/submissions/",
        {
            "file": factories.upload(factories.perfect_predictions()),
            "method_name": "kNN",
            "hardware_declared": "Raspberry Pi 4",
        },
        format="multipart",
    )

    assert response.status_code == 202
    assert response.json()["hardware_declared"] == "Raspberry Pi 4"
    submission = Submission.objects.get(pk=response.json()["id"])
    assert submission.hardware_declared == "Raspberry Pi 4"


# --- Hugging Face model-index -------------------------------------------------------------------


def test_the_model_index_lists_each_row_with_dataset_split_revision_metrics_and_claim_url(
    api, competition, entry, other_participant
):
    other = _scored(competition, other_participant, factories.predictions_csv(default=0.5))
    version = competition.task.versions.get(number=1)

    response = api(None).get(
        f"/api/v1/competitions/{competition.slug}/model-index/", {"format": "json"}
    )

    assert response.status_code == 200
    index = response.json()["model-index"]
    assert [e["name"] for e in index] == [
        "alice: Gradient boosting",
        f"bob: submission {Submission.objects.get(team__name='bob').pk}",
    ]
    result = index[0]["results"][0]
    assert result["task"] == {"type": "tabular-classification", "name": "Binary classification"}
    assert result["dataset"] == {
        "name": "Competition tiny",
        "type": "tiny",
        "split": "public",
        "revision": f"v1-{version.ground_truth_sha256}",
    }
    # Self-reported in Hugging Face's terms: `verified` is theirs to set, never ours.
    assert result["metrics"][0] == {"type": "roc_auc", "value": 1.0, "name": "ROC AUC"}
    assert not [m for e in index for r in e["results"] for m in r["metrics"] if "verified" in m]
    # Each result's source is its entry's claim page: absolute, no query, no API path.
    assert result["source"] == {
        "name": "Heldout",
        "url": f"http://testserver/c/{competition.slug}/entries/{entry.pk}/",
    }
    assert index[1]["results"][0]["source"]["url"] == (
        f"http://testserver/c/{competition.slug}/entries/{other.pk}/"
    )
    assert api(None).get(result["source"]["url"]).status_code == 200
    assert all(r["dataset"]["split"] == "public" for e in index for r in e["results"])


def test_the_model_index_comes_as_yaml_and_adds_private_results_after_finalize(
    api, competition, organizer, entry
):
    _finalize(api, organizer, competition)

    response = api(None).get(
        f"/api/v1/competitions/{competition.slug}/model-index/", {"format": "yaml"}
    )

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/yaml")
    index = yaml.safe_load(response.content)["model-index"]
    splits = {r["dataset"]["split"]: r["metrics"][0]["value"] for r in index[0]["results"]}
    assert splits == {"public": 1.0, "private": 0.0}
    # ?format=yaml stays out of the sources.
    assert {r["source"]["url"] for r in index[0]["results"]} == {
        f"http://testserver/c/{competition.slug}/entries/{entry.pk}/"
    }


@pytest.mark.parametrize("persona", ["anonymous", "outsider", "other_organizer"])
def test_the_model_index_of_an_invite_only_competition_is_not_found_by_strangers(
    request, api, competition, entry, persona
):
    Competition.objects.filter(pk=competition.pk).update(visibility="invite_only")

    response = api(persona_user(request, persona)).get(
        f"/api/v1/competitions/{competition.slug}/model-index/"
    )

    assert response.status_code == 404


def test_large_files_are_stored_uncompressed_in_the_bundle(api, participant, entry, monkeypatch):
    monkeypatch.setattr("competitions.services.reproducibility.STORE_ABOVE", 0)

    bundle = _bundle(api, participant, entry)

    info = bundle.getinfo(f"predictions/{entry.original_name}")
    assert info.compress_type == zipfile.ZIP_STORED
    assert bundle.read(info) == factories.predictions_csv(SPLIT_APART)
    assert bundle.getinfo("replay.py").compress_type == zipfile.ZIP_DEFLATED
