"""The suite API: the suite and its tasks, joining, methods, submitting, the matrix as
JSON and CSV, the pivot, the Wilcoxon tests and the CD diagram."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone

from competitions.models import Phase, Submission, TaskFile
from suites.models import MethodRun
from tests import factories
from tests.suites.world import containers_now, image_archive, joined, make_suite, scored_world

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite_too]


@pytest.fixture
def world(organizer):
    return scored_world(organizer=organizer)


def test_the_list_shows_public_suites_and_the_invite_only_ones_to_their_people(
    api, organizer, outsider
):
    make_suite(slug="open", organizer=organizer, tasks=("a",))
    make_suite(slug="quiet", organizer=organizer, tasks=("a",), visibility="unlisted")
    make_suite(slug="closed", organizer=organizer, tasks=("a",), visibility="invite_only")

    def listed(user):
        return [s["slug"] for s in api(user).get("/api/v1/suites/").json()["results"]]

    assert listed(None) == ["open"]
    assert listed(outsider) == ["open"]
    assert sorted(listed(organizer)) == ["closed", "open", "quiet"]
    body = api(None).get("/api/v1/suites/").json()["results"][0]
    assert body["tasks"] == 1
    assert body["methods"] == 0


def test_the_detail_lists_the_tasks_in_order_with_their_competitions_public_files(
    api, organizer, outsider
):
    suite = make_suite(organizer=organizer)
    body = api(outsider).get(f"/api/v1/suites/{suite.slug}/").json()
    assert [(t["key"], t["position"]) for t in body["tasks"]] == [
        ("iris", 0),
        ("wine", 1),
        ("digits", 2),
    ]
    iris = body["tasks"][0]
    assert iris["competition"] == "bench-iris"
    assert iris["metric"] == "roc_auc"
    assert iris["task_type"] == "binary"
    [sample] = iris["files"]
    assert sample["url"].endswith("/api/v1/competitions/bench-iris/files/sample_submission.csv")
    assert api(outsider).get(sample["url"]).status_code == 200


def test_an_invite_only_suite_is_not_found_by_an_outsider_or_another_suites_organizer(
    api, organizer, other_organizer, outsider
):
    suite = make_suite(slug="closed", organizer=organizer, visibility="invite_only")
    make_suite(slug="theirs", organizer=other_organizer, tasks=("x",))
    member = joined(suite, "member")
    for user in (None, outsider, other_organizer):
        for tail in ("", "matrix/", "matrix/csv/", "methods/", "cd-diagram/"):
            assert api(user).get(f"/api/v1/suites/closed/{tail}").status_code == 404, (user, tail)
    for user in (member, organizer):
        assert api(user).get("/api/v1/suites/closed/").status_code == 200
        assert api(user).get("/api/v1/suites/closed/matrix/").status_code == 200
    suite.invited.add(outsider)
    assert api(outsider).get("/api/v1/suites/closed/").status_code == 200


def test_joining_joins_every_task_and_then_a_method_can_be_registered(api, organizer, outsider):
    suite = make_suite(organizer=organizer)
    refused = api(outsider).post(
        f"/api/v1/suites/{suite.slug}/methods/", {"name": "ridge"}, format="json"
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "not_joined"
    join = api(outsider).post(
        f"/api/v1/suites/{suite.slug}/join/", {"accept_rules": True}, format="json"
    )
    assert join.json() == {"tasks": 3}
    created = api(outsider).post(
        f"/api/v1/suites/{suite.slug}/methods/",
        {"name": "ridge", "components": {"model": "Ridge", "preprocessing": ["a", "b"]}},
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert created.json()["components"] == {"model": ["ridge"], "preprocessing": ["a", "b"]}
    assert created["Location"] == created.json()["url"]
    again = api(outsider).post(
        f"/api/v1/suites/{suite.slug}/methods/", {"name": "RIDGE"}, format="json"
    )
    assert again.status_code == 400
    bad = api(outsider).post(
        f"/api/v1/suites/{suite.slug}/methods/",
        {"name": "x", "components": {"model": ""}},
        format="json",
    )
    assert bad.status_code == 400
    assert len(bad.json()["problems"]) == 1


def test_a_method_submits_a_file_to_one_task_and_a_container_to_every_task(
    api, organizer, outsider, settings
):
    settings.HELDOUT_WORKER_PLATFORM = "linux/amd64"
    suite = make_suite(organizer=organizer)
    owner = joined(suite, "owner")
    intruder = joined(suite, "intruder")
    method_id = api(owner).post(f"/api/v1/suites/{suite.slug}/methods/", {"name": "m"}).json()["id"]
    base = f"/api/v1/suites/{suite.slug}/methods/{method_id}"

    one = api(owner).post(
        f"{base}/tasks/wine/submissions/",
        {"file": factories.upload(factories.perfect_predictions())},
        format="multipart",
    )
    assert one.status_code == 202, one.json()
    assert one.json()["task"] == "wine"
    assert one.json()["status"] == "queued"
    containers_now(suite)
    every = api(owner).post(
        f"{base}/submissions/",
        {"file": factories.upload(image_archive(), "image.tar")},
        format="multipart",
    )
    assert every.status_code == 202
    assert [r["task"] for r in every.json()] == ["iris", "wine", "digits"]
    assert len({r["fanout"] for r in every.json()}) == 1
    assert MethodRun.objects.filter(method_id=method_id).count() == 4

    for user, status in ((intruder, 403), (None, 401)):
        refused = api(user).post(
            f"{base}/tasks/wine/submissions/",
            {"file": factories.upload(factories.perfect_predictions())},
            format="multipart",
        )
        assert refused.status_code == status
    missing = api(owner).post(
        f"{base}/tasks/nope/submissions/",
        {"file": factories.upload(factories.perfect_predictions())},
        format="multipart",
    )
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    assert MethodRun.objects.filter(method_id=method_id).count() == 4

    detail = api(outsider).get(f"{base}/").json()
    assert len(detail["runs"]) == 4
    newest = detail["runs"][0]
    assert newest["entry_url"].endswith(
        f"/c/{newest['competition']}/entries/{newest['submission_id']}/"
    )
    assert api(owner).get(newest["submission_url"]).status_code == 200
    assert {r["competition"] for r in detail["runs"]} == {
        "bench-iris",
        "bench-wine",
        "bench-digits",
    }


def test_the_matrix_json_has_every_cell_its_aggregates_and_the_statistics(api, world, outsider):
    body = api(outsider).get("/api/v1/suites/bench/matrix/").json()
    assert [t["key"] for t in body["tasks"]] == ["iris", "wine", "digits"]
    assert body["waiting"] == []
    rows = {r["method"]: r for r in body["rows"]}
    assert [r["method"] for r in body["rows"]] == ["oracle", "forest", "=hasty"]
    oracle, forest, hasty = rows["oracle"], rows["forest"], rows["=hasty"]
    assert [c["score"] for c in oracle["cells"]] == [1.0, 1.0, 1.0]
    assert [c["status"] for c in hasty["cells"]] == ["failed", "scored", "missing"]
    assert hasty["cells"][0]["score"] == 0.5  # the constant predictor's, imputed
    assert hasty["cells"][1]["score"] == pytest.approx(7 / 9)
    assert hasty["cells"][1]["normalized"] == pytest.approx((7 / 9 - 0.5) / 0.5)
    assert forest["cells"][0]["normalized"] == pytest.approx((8 / 9 - 0.5) / 0.5)
    assert [c["rank"] for c in forest["cells"]] == [2.0, 2.0, 2.0]
    assert (oracle["mean_rank"], oracle["wins"], oracle["complete"]) == (1.0, 3, True)
    assert (hasty["mean_rank"], hasty["wins"], hasty["complete"], hasty["imputed"]) == (
        3.0,
        0,
        False,
        2,
    )
    assert hasty["cells"][2]["submission_id"] is None
    # Every scored cell has its interval (computed by the worker, suites/cells.py).
    for cell in oracle["cells"] + forest["cells"]:
        assert not cell["stale"]
        assert 0.0 <= cell["low"] <= cell["score"] <= cell["high"] <= 1.0, cell  # ROC AUC's range
        assert cell["normalized_low"] <= cell["normalized"] <= cell["normalized_high"], cell
    assert (oracle["cells"][0]["low"], oracle["cells"][0]["high"]) == (1.0, 1.0)
    assert Submission.objects.get(pk=hasty["cells"][0]["submission_id"]).status == "failed"
    stats = body["statistics"]
    assert stats["friedman"]["tasks"] == 3
    assert stats["friedman"]["methods"] == 3
    assert stats["friedman"]["mean_ranks"] == [1.0, 2.0, 3.0]
    # k = 3, N = 3: chi2 = 12N/(k(k+1)) * (sum R^2 - k(k+1)^2/4) = 3 * (14 - 12) = 6.
    assert stats["friedman"]["chi2"] == pytest.approx(6.0)
    assert stats["cd"] == pytest.approx(2.343 * (3 * 4 / (6 * 3)) ** 0.5, abs=1e-3)
    assert "Friedman test" in stats["sentence"]
    assert body["pivot"] is None
    assert body["wilcoxon"] is None
    assert body["cd_diagram_url"].endswith("/api/v1/suites/bench/cd-diagram/")


def test_the_matrix_pivots_by_a_component_tag(api, world):
    body = api(None).get("/api/v1/suites/bench/matrix/?pivot=model").json()
    groups = {g["value"]: g for g in body["pivot"]["groups"]}
    assert body["pivot"]["tag"] == "model"
    assert groups["trees"]["methods"] == ["forest", "=hasty"]
    assert groups["trees"]["mean_rank"] == pytest.approx(2.5)
    assert groups["trees"]["wins"] == 0
    assert groups["lookup"]["best"] == "oracle"
    assert body["pivot"]["groups"][0]["value"] == "lookup"


def test_the_wilcoxon_tests_come_on_request_for_every_pair(api, world):
    body = api(None).get("/api/v1/suites/bench/matrix/?tests=wilcoxon").json()
    pairs = {(p["a"], p["b"]): p for p in body["wilcoxon"]}
    assert set(pairs) == {("oracle", "forest"), ("oracle", "=hasty"), ("forest", "=hasty")}
    for pair in pairs.values():
        assert pair["p_holm"] >= pair["p_value"]
        assert pair["significant"] is False  # three tasks cannot reach 0.05
    assert pairs[("oracle", "forest")]["a_better"] is True


def test_the_matrix_csv_has_a_row_per_method_and_quotes_formula_names(api, world):
    for url in ("/api/v1/suites/bench/matrix/?format=csv", "/api/v1/suites/bench/matrix/csv/"):
        response = api(None).get(url)
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(response.content.decode())))
        assert rows[0][:6] == ["method", "mean_rank", "mean_normalized", "wins", "complete", "iris"]
        assert rows[0][6:10] == ["iris:status", "iris:normalized", "iris:rank", "iris:low"]
        assert [r[0] for r in rows[1:]] == ["oracle", "forest", "'=hasty"]
        hasty = dict(zip(rows[0], rows[3], strict=True))
        assert hasty["iris:status"] == "failed"
        assert hasty["digits:status"] == "missing"
        assert float(hasty["wine"]) == pytest.approx(7 / 9)


def test_the_cd_diagram_is_an_svg_naming_every_method(api, world, organizer):
    response = api(None).get("/api/v1/suites/bench/cd-diagram/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("image/svg+xml")
    svg = response.content.decode()
    assert svg.startswith("<svg")
    assert "<script" not in svg
    for name in ("oracle", "forest", "=hasty"):
        assert name in svg
    empty = make_suite(slug="empty", organizer=organizer, tasks=("a", "b"))
    missing = api(None).get(f"/api/v1/suites/{empty.slug}/cd-diagram/")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"


def test_a_task_whose_constant_predictor_is_not_scored_waits_outside_the_aggregates(api, world):
    task = world.suite.tasks.get(key="digits")
    task.competition.references.all().delete()
    body = api(None).get("/api/v1/suites/bench/matrix/").json()
    assert body["waiting"] == ["digits"]
    assert [t["key"] for t in body["tasks"]] == ["iris", "wine"]
    assert all(len(r["cells"]) == 2 for r in body["rows"])


def test_the_list_and_the_matrix_answer_in_a_fixed_number_of_queries(
    api, world, organizer, django_assert_max_num_queries
):
    for i in range(3):
        make_suite(slug=f"more-{i}", organizer=organizer, tasks=("a", "b"))
    client = api(None)
    with django_assert_max_num_queries(2):
        assert client.get("/api/v1/suites/").status_code == 200
    # The first read computes the matrix and keeps it (suites/selectors.py); the next
    # reads it back under its token.
    with django_assert_max_num_queries(10):
        assert client.get("/api/v1/suites/bench/matrix/").status_code == 200
    with django_assert_max_num_queries(2):
        assert client.get("/api/v1/suites/bench/matrix/").status_code == 200
    # The suite, its tasks, their files, its phases.
    with django_assert_max_num_queries(4):
        assert client.get("/api/v1/suites/bench/").status_code == 200


def test_someone_invited_to_a_closed_suite_joins_it_and_then_reads_its_tasks_files(
    api, organizer, outsider
):
    suite = make_suite(slug="closed", organizer=organizer, visibility="invite_only")
    file_url = "/api/v1/competitions/closed-iris/files/sample_submission.csv"
    assert api(outsider).get(file_url).status_code == 404
    suite.invited.add(outsider)
    join = api(outsider).post("/api/v1/suites/closed/join/", {"accept_rules": True}, format="json")
    assert join.status_code == 200
    assert join.json() == {"tasks": 3}
    assert api(outsider).get(file_url).status_code == 200
    assert api(outsider).get("/api/v1/competitions/closed-iris/ground-truth/").status_code == 404


def test_a_file_held_back_for_a_later_phase_is_listed_for_the_task_organizers_only(
    api, organizer, outsider
):
    suite = make_suite(organizer=organizer, tasks=("iris",))
    competition = suite.tasks.get().competition
    main_end = competition.phases.get().end_at
    assert main_end is not None
    final = Phase.objects.create(
        competition=competition,
        name="Final",
        start_at=main_end + timedelta(days=7),
        end_at=main_end + timedelta(days=14),
    )
    held = TaskFile(task=competition.task, kind="test", name="final_test.csv", released_with=final)
    held.file.save("final_test.csv", ContentFile(b"id,x\nf1,1\n"), save=False)
    held.size = 10
    held.save()

    def names(user):
        [task] = api(user).get(f"/api/v1/suites/{suite.slug}/").json()["tasks"]
        return [f["name"] for f in task["files"]]

    assert names(outsider) == ["sample_submission.csv"]
    assert names(None) == ["sample_submission.csv"]
    assert names(organizer) == ["final_test.csv", "sample_submission.csv"]
    assert b"final_test.csv" not in Client().get(f"/s/{suite.slug}/").content
    final.start_at = timezone.now() - timedelta(minutes=1)
    final.save()
    assert "final_test.csv" in names(outsider)


def test_the_matrix_cells_in_json_are_what_each_fields_representation_gives(world):
    from rest_framework import serializers

    from suites import matrix_data, selectors
    from suites.api_outputs import MatrixCellOutput, MatrixOutput

    data = matrix_data.matrix_data(selectors.suite_matrix(suite=world.suite))
    data["cd_diagram_url"] = None
    fast = MatrixOutput(data).data
    field_by_field: serializers.ListSerializer = serializers.ListSerializer(
        child=MatrixCellOutput()
    )
    for row, shown in zip(data["rows"], fast["rows"], strict=True):
        assert shown["cells"] == field_by_field.to_representation(row["cells"])
        assert [list(c) for c in shown["cells"]] == [list(MatrixCellOutput().fields)] * 3
