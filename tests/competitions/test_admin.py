"""The admin, driven through Django's test client as an organizer would use it."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from competitions.admin import organizers_group_sync
from competitions.models import Competition, Score, Submission
from competitions.services.bundles import bundle_import
from competitions.services.leaderboard import leaderboard_refresh_team
from competitions.services.submissions import submission_create
from competitions.services.teams import competition_join
from tests.competitions.test_bundles import IDS, bundle_yaml, write_bundle, zip_folder

pytestmark = pytest.mark.django_db


def make_organizer(username: str) -> User:
    user = User.objects.create_user(username, password="pw-" + username, is_staff=True)
    user.groups.add(organizers_group_sync())
    return user


def make_competition(tmp_path: Path, slug: str, organizer: User) -> Competition:
    folder = write_bundle(tmp_path / slug, bundle_yaml(slug=slug, title=f"Competition {slug}"))
    return bundle_import(source=folder, organizer=organizer)


def submit(competition: Competition, username: str, value: float = 0.5) -> Submission:
    user, _ = User.objects.get_or_create(username=username)
    competition_join(competition=competition, user=user, accept_rules=True)
    content = "id,label\n" + "".join(f"{rid},{value}\n" for rid in IDS)
    upload = SimpleUploadedFile("predictions.csv", content.encode())
    return submission_create(competition=competition, user=user, uploaded_file=upload)


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def mark_scored(submission: Submission, auc: float) -> None:
    """Stand in for the scorer: record scores and refresh the team's leaderboard rows."""
    Submission.objects.filter(pk=submission.pk).update(status=Submission.Status.SCORED)
    for split in ("public", "private"):
        for metric, value in (("roc_auc", auc), ("accuracy", auc / 2), ("log_loss", 1 - auc)):
            Score.objects.create(
                submission=submission, task_version=1, split=split, metric=metric, value=value
            )
    leaderboard_refresh_team(team=submission.team)


@pytest.fixture
def world(tmp_path):
    """Competition A organized by `anna`, B by `bert`, each with one submission."""
    anna, bert = make_organizer("anna"), make_organizer("bert")
    a = make_competition(tmp_path, "comp-a", anna)
    b = make_competition(tmp_path, "comp-b", bert)
    return {
        "anna": anna,
        "bert": bert,
        "a": a,
        "b": b,
        "sub_a": submit(a, "alice"),
        "sub_b": submit(b, "bob"),
    }


def change_url(obj) -> str:
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])


def test_an_organizer_sees_only_their_competitions_submissions(world):
    page = client_for(world["anna"]).get(reverse("admin:competitions_submission_changelist"))

    assert page.status_code == 200
    shown = {s.pk for s in page.context["cl"].result_list}
    assert shown == {world["sub_a"].pk}
    assert "Competition comp-b" not in page.content.decode()


def test_an_organizer_cannot_open_another_competitions_pages(world):
    client = client_for(world["anna"])
    sub_b, b = world["sub_b"], world["b"]

    for obj in (b, b.task, sub_b, sub_b.team):
        assert client.get(change_url(obj)).status_code == 404, obj
    assert (
        client.get(reverse("admin:competitions_competition_history", args=[b.pk])).status_code
        == 404
    )


def test_an_organizer_can_open_their_own_pages(world):
    client = client_for(world["anna"])
    sub_a, a = world["sub_a"], world["a"]

    for obj in (a, a.task, sub_a, sub_a.team):
        assert client.get(change_url(obj)).status_code == 200, obj


def test_a_superuser_sees_everything(world):
    root = User.objects.create_superuser("root", password="pw-root")

    page = client_for(root).get(reverse("admin:competitions_submission_changelist"))

    assert {s.pk for s in page.context["cl"].result_list} == {world["sub_a"].pk, world["sub_b"].pk}


def test_the_ground_truth_is_shown_by_hash_and_never_linked(world):
    task = world["a"].task

    page = client_for(world["anna"]).get(change_url(task)).content.decode()

    assert task.ground_truth_sha256 in page
    assert task.ground_truth.name not in page
    assert "solution.csv" not in page


def test_the_submission_page_does_not_link_the_private_file(world):
    submission = world["sub_a"]

    page = client_for(world["anna"]).get(change_url(submission)).content.decode()

    assert submission.sha256 in page
    assert submission.file.name not in page


def _act(client: Client, model: str, action: str, ids: list[int], reason: str = ""):
    url = reverse(f"admin:competitions_{model}_changelist")
    data = {"action": action, "_selected_action": ids, "reason": reason}
    return client.post(url, data, follow=True)


def test_the_submission_actions_call_the_services(world):
    client, submission = client_for(world["anna"]), world["sub_a"]

    _act(client, "submission", "disqualify", [submission.pk], reason="Leaked labels")
    submission.refresh_from_db()
    assert (submission.is_disqualified, submission.disqualified_reason) == (True, "Leaked labels")

    _act(client, "submission", "cancel", [submission.pk])
    submission.refresh_from_db()
    assert submission.status == Submission.Status.CANCELLED

    _act(client, "submission", "rescore", [submission.pk])
    submission.refresh_from_db()
    assert submission.status == Submission.Status.QUEUED


def test_disqualifying_needs_a_reason(world):
    page = _act(client_for(world["anna"]), "submission", "disqualify", [world["sub_a"].pk])

    assert "Say why the submission is disqualified; its team sees it." in page.content.decode()
    world["sub_a"].refresh_from_db()
    assert not world["sub_a"].is_disqualified


def test_actions_never_reach_another_competitions_rows(world):
    _act(client_for(world["anna"]), "submission", "cancel", [world["sub_b"].pk])

    world["sub_b"].refresh_from_db()
    assert world["sub_b"].status == Submission.Status.QUEUED


def test_teams_can_be_banned_and_unbanned(world):
    client, team = client_for(world["anna"]), world["sub_a"].team

    _act(client, "team", "ban", [team.pk], reason="Multiple accounts")
    team.refresh_from_db()
    assert (team.is_banned, team.banned_reason) == (True, "Multiple accounts")

    _act(client, "team", "unban", [team.pk])
    team.refresh_from_db()
    assert not team.is_banned


def test_the_leaderboard_csv_is_ordered_best_first_then_earliest(world):
    a = world["a"]
    mark_scored(world["sub_a"], 0.7)
    mark_scored(submit(a, "carol"), 0.9)
    mark_scored(submit(a, "dave"), 0.7)

    response = _act(
        client_for(world["anna"]), "competition", "leaderboard_csv", [a.pk, world["b"].pk]
    )

    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    public = [(r["competition"], r["team"], r["rank"]) for r in rows if r["split"] == "public"]
    assert public == [("comp-a", "carol", "1"), ("comp-a", "alice", "2"), ("comp-a", "dave", "2")]
    assert rows[0]["roc_auc"] == "0.9"
    assert rows[0]["log_loss"] != ""


def test_an_organizer_imports_a_bundle_from_the_admin(world, tmp_path):
    folder = write_bundle(tmp_path / "new", bundle_yaml(slug="comp-new"))
    archive = zip_folder(folder, tmp_path / "new.zip")
    client = client_for(world["anna"])

    changelist = client.get(reverse("admin:competitions_competition_changelist")).content.decode()
    assert reverse("admin:competitions_competition_import") in changelist
    with open(archive, "rb") as f:
        response = client.post(reverse("admin:competitions_competition_import"), {"bundle": f})

    competition = Competition.objects.get(slug="comp-new")
    assert response.status_code == 302
    assert response["Location"] == change_url(competition)
    assert world["anna"] in competition.organizers.all()


def test_the_import_view_lists_every_problem(world, tmp_path):
    document = bundle_yaml(slug="comp-a", visibility="secret")
    archive = zip_folder(write_bundle(tmp_path / "bad", document), tmp_path / "bad.zip")

    with open(archive, "rb") as f:
        page = client_for(world["anna"]).post(
            reverse("admin:competitions_competition_import"), {"bundle": f}
        )

    text = page.content.decode()
    assert page.status_code == 200
    assert "already exists" in text
    assert "&quot;secret&quot; is not one of" in text


def test_staff_without_the_organizer_permissions_cannot_import(world, tmp_path):
    staff = User.objects.create_user("staffer", is_staff=True)
    archive = zip_folder(
        write_bundle(tmp_path / "x", bundle_yaml(slug="comp-x")), tmp_path / "x.zip"
    )
    client = client_for(staff)

    with open(archive, "rb") as f:
        response = client.post(reverse("admin:competitions_competition_import"), {"bundle": f})

    assert response.status_code == 403
    assert not Competition.objects.filter(slug="comp-x").exists()
