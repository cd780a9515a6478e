"""The suite organizer's console (/s/<slug>/organize/...) and its API
(/api/v1/suites/<slug>/...): the suite's details, its tasks (state, add, remove, move),
its methods, the request to compute the stale cells, and who may do each."""

from __future__ import annotations

import pytest
from django.test import Client

from competitions.models import Competition, OutboxMessage, ReferenceResult
from suites import services
from suites.cells import CELLS_TASK
from suites.models import Suite
from tests import factories
from tests.suites.world import joined, make_suite

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite_too]


def page(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def keys(suite: Suite) -> list[str]:
    return list(suite.tasks.order_by("position").values_list("key", flat=True))


def positions(suite: Suite) -> list[int]:
    return list(suite.tasks.order_by("position").values_list("position", flat=True))


@pytest.fixture
def suite(organizer) -> Suite:
    return make_suite(organizer=organizer, tasks=("iris", "wine", "digits"))


def run_on(suite: Suite, key: str) -> None:
    """A method of a participant submits once to the task (the run is what counts)."""
    owner = joined(suite, f"runner-{key}")
    method = services.method_create(suite=suite, owner=owner, name=f"m-{key}")
    services.method_submit(
        method=method,
        task=suite.tasks.get(key=key),
        user=owner,
        uploaded_file=factories.upload(factories.perfect_predictions()),
    )


# --- The suite's details -------------------------------------------------------------------


def test_the_organizer_saves_the_details_and_the_competitions_the_suite_made_follow_its_visibility(
    suite, organizer
):
    standalone = factories.make_competition(slug="mine", organizers=[organizer])
    services.suite_task_attach(suite=suite, competition=standalone, by=organizer)
    response = page(organizer).post(
        f"/s/{suite.slug}/organize/",
        {
            "title": "Tabular 2026",
            "description": "# Hello",
            "rules": "Play fair.",
            "visibility": "invite_only",
            "action": "save",
        },
        follow=True,
    )
    assert response.status_code == 200
    assert "are saved" in response.content.decode()
    suite.refresh_from_db()
    assert (suite.title, suite.rules, suite.visibility) == (
        "Tabular 2026",
        "Play fair.",
        "invite_only",
    )
    owned = Competition.objects.filter(suite_tasks__suite=suite, suite_tasks__owned=True)
    assert set(owned.values_list("visibility", flat=True)) == {"invite_only"}
    standalone.refresh_from_db()
    assert standalone.visibility == "public"


def test_the_preview_shows_the_markdown_and_saves_nothing(suite, organizer):
    response = page(organizer).post(
        f"/s/{suite.slug}/organize/",
        {
            "title": "Other",
            "description": "**bold**",
            "rules": "",
            "visibility": "public",
            "action": "preview",
        },
    )
    assert response.status_code == 200
    assert "<strong>bold</strong>" in response.content.decode()
    suite.refresh_from_db()
    assert suite.title == "Suite bench"


def test_a_blank_title_is_refused_beside_the_form_and_changes_nothing(suite, organizer):
    response = page(organizer).post(
        f"/s/{suite.slug}/organize/",
        {"title": "", "description": "", "rules": "", "visibility": "public", "action": "save"},
    )
    assert response.status_code == 400
    suite.refresh_from_db()
    assert suite.title == "Suite bench"


def test_the_api_patch_changes_only_the_fields_it_names(api, suite, organizer):
    response = api(organizer).patch(
        f"/api/v1/suites/{suite.slug}", {"rules": "New rules."}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["rules"] == "New rules."
    assert response.json()["title"] == "Suite bench"
    suite.refresh_from_db()
    assert (suite.rules, suite.title) == ("New rules.", "Suite bench")


def test_the_api_patch_refuses_an_unknown_visibility_in_the_error_format(api, suite, organizer):
    response = api(organizer).patch(
        f"/api/v1/suites/{suite.slug}/", {"visibility": "secret"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


# --- Tasks ---------------------------------------------------------------------------------


def test_the_tasks_page_shows_each_tasks_state_runs_and_its_competitions_organizer_pages(
    suite, organizer
):
    waiting = factories.make_competition(slug="pending-task", organizers=[organizer])
    services.suite_task_attach(suite=suite, competition=waiting, by=organizer, key="pending")
    broken = factories.make_competition(slug="broken-task", organizers=[organizer])
    ReferenceResult.objects.create(
        competition=broken,
        task_version=broken.task.version,
        kind="constant",
        label="Constant predictor",
        status="failed",
        reason="The ground truth has no label column.",
    )
    services.suite_task_attach(suite=suite, competition=broken, by=organizer, key="broken")
    run_on(suite, "wine")

    body = page(organizer).get(f"/s/{suite.slug}/organize/tasks/").content.decode()

    def row(key: str) -> str:
        return body.split(f'id="task-{key}"', 1)[1].split("</tr>", 1)[0]

    assert 'badge scored">scored' in row("iris")
    assert 'badge waiting">waiting' in row("pending")
    assert 'badge failed">failed' in row("broken")
    assert "no label column" in row("broken")
    assert f'href="/c/{suite.slug}-iris/organize/phases/"' in row("iris")
    assert f'href="/c/{suite.slug}-iris/organize/data/"' in row("iris")
    assert '<td class="num">1</td>' in row("wine")
    assert "has runs" in row("wine")
    assert "Remove" in row("iris")
    assert (
        body.index('id="task-iris"') < body.index('id="task-wine"') < body.index('id="task-digits"')
    )


def test_a_task_of_a_competition_the_organizer_does_not_organize_has_no_console_links(
    suite, organizer, other_organizer
):
    suite.organizers.add(other_organizer)
    theirs = factories.make_competition(slug="theirs", organizers=[other_organizer])
    services.suite_task_attach(suite=suite, competition=theirs, by=other_organizer)
    body = page(organizer).get(f"/s/{suite.slug}/organize/tasks/").content.decode()
    row = body.split('id="task-theirs"', 1)[1].split("</tr>", 1)[0]
    assert "/c/theirs/organize/" not in row
    assert "not one of your competitions" in row


def test_the_tasks_page_reads_as_many_queries_for_many_tasks_as_for_few(
    organizer, django_assert_num_queries
):
    few = make_suite(slug="few", organizer=organizer, tasks=("a",))
    many = make_suite(slug="many", organizer=organizer, tasks=("a", "b", "c", "d", "e"))
    client = page(organizer)
    client.get(f"/s/{few.slug}/organize/tasks/")  # the session is read once warm
    # Session and user, the suite, its organizer check, the competitions to offer, the
    # tasks with their run counts, the references, the tasks' competitions organized, the
    # header's unread notifications.
    with django_assert_num_queries(9):
        assert client.get(f"/s/{few.slug}/organize/tasks/").status_code == 200
    with django_assert_num_queries(9):
        assert client.get(f"/s/{many.slug}/organize/tasks/").status_code == 200


def test_the_methods_page_lists_owners_and_run_counts_in_a_fixed_number_of_queries(
    suite, organizer, django_assert_num_queries
):
    run_on(suite, "iris")
    client = page(organizer)
    client.get(f"/s/{suite.slug}/organize/methods/")
    # Session and user, the suite, its organizer check, the methods with owners and runs,
    # the header's unread notifications.
    with django_assert_num_queries(6):
        body = client.get(f"/s/{suite.slug}/organize/methods/").content.decode()
    assert "m-iris" in body
    assert "runner-iris" in body
    run_on(suite, "wine")
    run_on(suite, "digits")
    with django_assert_num_queries(6):
        body = client.get(f"/s/{suite.slug}/organize/methods/").content.decode()
    assert "runner-digits" in body
    iris = body.split("m-iris</a>", 1)[1].split("</tr>", 1)[0]
    assert "<td>runner-iris</td>" in iris
    assert '<td class="num">1</td>' in iris


def test_the_organizer_adds_a_competition_they_organize_as_the_last_task(suite, organizer):
    mine = factories.make_competition(slug="mine", organizers=[organizer])
    client = page(organizer)
    assert (
        "Competition mine (mine)" in client.get(f"/s/{suite.slug}/organize/tasks/").content.decode()
    )
    response = client.post(
        f"/s/{suite.slug}/organize/tasks/", {"competition": "mine", "key": "extra"}
    )
    assert response.status_code == 302
    assert keys(suite) == ["iris", "wine", "digits", "extra"]
    task = suite.tasks.get(key="extra")
    assert (task.position, task.owned, task.competition) == (3, False, mine)
    mine.refresh_from_db()
    assert mine.visibility == "public"  # not the suite's: it stays its own


def test_a_competition_the_organizer_does_not_organize_is_not_offered_nor_added(
    suite, organizer, other_organizer, api
):
    factories.make_competition(slug="theirs", organizers=[other_organizer])
    client = page(organizer)
    assert "theirs" not in client.get(f"/s/{suite.slug}/organize/tasks/").content.decode()
    response = client.post(f"/s/{suite.slug}/organize/tasks/", {"competition": "theirs"})
    assert response.status_code == 400
    response = api(organizer).post(
        f"/api/v1/suites/{suite.slug}/tasks/", {"competition": "theirs"}, format="json"
    )
    assert response.status_code == 403
    assert response.json() == {"detail": "Add a competition you organize.", "code": "forbidden"}
    assert keys(suite) == ["iris", "wine", "digits"]


def test_the_service_refuses_a_competition_its_user_does_not_organize(
    suite, organizer, other_organizer
):
    from competitions.permissions import Forbidden

    theirs = factories.make_competition(slug="theirs", organizers=[other_organizer])
    with pytest.raises(Forbidden):
        services.suite_task_attach(suite=suite, competition=theirs, by=organizer)
    assert suite.tasks.count() == 3


def test_the_api_adds_a_task_and_answers_its_state_and_where_it_is(api, suite, organizer):
    factories.make_competition(slug="mine", organizers=[organizer])
    response = api(organizer).post(
        f"/api/v1/suites/{suite.slug}/tasks", {"competition": "mine"}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["key"], body["position"], body["owned"], body["runs"], body["state"]) == (
        "mine",
        3,
        False,
        0,
        "waiting",
    )
    assert response["Location"].endswith(f"/api/v1/suites/{suite.slug}/tasks/mine/")
    assert api(organizer).get(response["Location"]).json()["key"] == "mine"


def test_a_competition_already_in_the_suite_or_a_key_already_taken_is_refused(
    api, suite, organizer
):
    factories.make_competition(slug="mine", organizers=[organizer])
    client = api(organizer)
    again = client.post(
        f"/api/v1/suites/{suite.slug}/tasks/", {"competition": f"{suite.slug}-iris"}, format="json"
    )
    assert again.status_code == 400  # the suite made it: its organizer organizes it
    assert again.json()["code"] == "invalid"
    taken = client.post(
        f"/api/v1/suites/{suite.slug}/tasks/", {"competition": "mine", "key": "iris"}, format="json"
    )
    assert taken.status_code == 400
    assert taken.json()["code"] == "invalid"
    assert suite.tasks.count() == 3


def test_a_task_no_method_ran_on_is_removed_and_the_later_tasks_move_up(suite, organizer):
    competition = suite.tasks.get(key="iris").competition
    response = page(organizer).post(f"/s/{suite.slug}/organize/tasks/iris/remove/", follow=True)
    assert "no longer in the suite" in response.content.decode()
    assert keys(suite) == ["wine", "digits"]
    assert positions(suite) == [0, 1]
    assert Competition.objects.filter(pk=competition.pk).exists()


def test_a_task_a_method_ran_on_is_not_removed_and_the_refusal_says_why(api, suite, organizer):
    run_on(suite, "wine")
    response = page(organizer).post(f"/s/{suite.slug}/organize/tasks/wine/remove/", follow=True)
    assert "has 1 method run" in response.content.decode()
    answer = api(organizer).delete(f"/api/v1/suites/{suite.slug}/tasks/wine/")
    assert answer.status_code == 409
    assert answer.json()["code"] == "invalid_state"
    assert keys(suite) == ["iris", "wine", "digits"]


def test_the_api_removes_a_task_without_runs(api, suite, organizer):
    assert api(organizer).delete(f"/api/v1/suites/{suite.slug}/tasks/digits").status_code == 204
    assert keys(suite) == ["iris", "wine"]


def test_moving_a_task_swaps_it_with_its_neighbour_and_the_ends_stay(suite, organizer):
    client = page(organizer)
    client.post(f"/s/{suite.slug}/organize/tasks/digits/move/", {"direction": "up"})
    assert keys(suite) == ["iris", "digits", "wine"]
    client.post(f"/s/{suite.slug}/organize/tasks/iris/move/", {"direction": "down"})
    assert keys(suite) == ["digits", "iris", "wine"]
    client.post(f"/s/{suite.slug}/organize/tasks/digits/move/", {"direction": "up"})
    client.post(f"/s/{suite.slug}/organize/tasks/wine/move/", {"direction": "down"})
    assert keys(suite) == ["digits", "iris", "wine"]
    assert positions(suite) == [0, 1, 2]


def test_a_move_reorders_the_matrix_columns_at_once(api, suite, organizer):
    client = api(organizer)
    before = [t["key"] for t in client.get(f"/api/v1/suites/{suite.slug}/matrix/").json()["tasks"]]
    assert before == ["iris", "wine", "digits"]
    moved = client.post(
        f"/api/v1/suites/{suite.slug}/tasks/digits/move", {"direction": "up"}, format="json"
    )
    assert moved.status_code == 200, moved.content
    assert moved.json()["position"] == 1
    after = [t["key"] for t in client.get(f"/api/v1/suites/{suite.slug}/matrix/").json()["tasks"]]
    assert after == ["iris", "digits", "wine"]


def test_a_move_without_a_direction_is_refused(api, suite, organizer):
    response = api(organizer).post(
        f"/api/v1/suites/{suite.slug}/tasks/iris/move/", {"direction": "left"}, format="json"
    )
    assert response.status_code == 400
    assert keys(suite) == ["iris", "wine", "digits"]


# --- The matrix's cells ------------------------------------------------------------------


def test_the_refresh_button_asks_the_workers_for_the_suites_stale_cells_and_answers_at_once(
    api, suite, organizer
):
    def asked() -> int:
        return OutboxMessage.objects.filter(task=CELLS_TASK, args=[suite.pk, None, None]).count()

    response = page(organizer).post(f"/s/{suite.slug}/organize/refresh/", follow=True)
    assert "stale cells" in response.content.decode()
    assert asked() == 1
    answer = api(organizer).post(f"/api/v1/suites/{suite.slug}/matrix/refresh")
    assert answer.status_code == 202
    assert answer.json()["matrix_url"].endswith(f"/api/v1/suites/{suite.slug}/matrix/")
    assert asked() == 2


# --- The link and who may do what ----------------------------------------------------------


def test_the_suite_page_links_its_organizers_to_the_console_and_no_one_else(
    suite, organizer, outsider
):
    console = f'href="/s/{suite.slug}/organize/"'
    assert console in page(organizer).get(f"/s/{suite.slug}/").content.decode()
    assert console not in page(outsider).get(f"/s/{suite.slug}/").content.decode()
    assert console not in Client().get(f"/s/{suite.slug}/").content.decode()


def test_the_admin_link_stays_for_staff_organizers_only(suite, organizer):
    admin = f'href="/admin/suites/suite/{suite.pk}/change/"'
    assert admin in page(organizer).get(f"/s/{suite.slug}/").content.decode()  # staff
    plain = factories.make_user("plain-organizer")
    suite.organizers.add(plain)
    body = page(plain).get(f"/s/{suite.slug}/").content.decode()
    assert admin not in body
    assert f'href="/s/{suite.slug}/organize/"' in body


PAGES = [
    ("get", "organize/"),
    ("post", "organize/"),
    ("get", "organize/tasks/"),
    ("post", "organize/tasks/"),
    ("post", "organize/tasks/iris/remove/"),
    ("post", "organize/tasks/iris/move/"),
    ("get", "organize/methods/"),
    ("post", "organize/refresh/"),
]
ENDPOINTS = [
    ("patch", ""),
    ("post", "tasks/"),
    ("get", "tasks/iris/"),
    ("delete", "tasks/iris/"),
    ("post", "tasks/iris/move/"),
    ("post", "matrix/refresh/"),
]


@pytest.fixture
def strangers(suite, outsider, other_organizer):
    """Who is not the suite's organizer: an outsider, another suite's organizer (who
    organizes the competition being added too), and a participant of the suite."""
    other_suite = make_suite(slug="elsewhere", organizer=other_organizer, tasks=("x",))
    factories.make_competition(slug="theirs", organizers=[other_organizer])
    assert other_suite.organizers.filter(pk=other_organizer.pk).exists()
    return {
        "outsider": outsider,
        "other suite's organizer": other_organizer,
        "participant": joined(suite, "suite-participant"),
    }


@pytest.mark.parametrize(("method", "path"), PAGES)
def test_only_the_suites_organizers_reach_its_console_pages(suite, strangers, method, path):
    url = f"/s/{suite.slug}/{path}"
    for who, user in strangers.items():
        response = getattr(page(user), method)(url, {"competition": "theirs", "direction": "up"})
        assert response.status_code == 403, who
    assert getattr(Client(), method)(url).status_code == 302  # to the log in
    assert keys(suite) == ["iris", "wine", "digits"]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_only_the_suites_organizers_reach_its_organizer_endpoints(
    api, suite, strangers, method, path
):
    url = f"/api/v1/suites/{suite.slug}/{path}"
    body = {"competition": "theirs", "direction": "up", "title": "Taken"}
    for who, user in strangers.items():
        response = getattr(api(user), method)(url, body, format="json")
        assert response.status_code == 403, who
        assert response.json()["code"] == "forbidden"
    assert getattr(api(None), method)(url, body, format="json").status_code == 401
    suite.refresh_from_db()
    assert suite.title == "Suite bench"
    assert keys(suite) == ["iris", "wine", "digits"]


@pytest.mark.parametrize(("method", "path"), PAGES)
def test_an_invite_only_suites_console_does_not_exist_for_an_outsider(
    organizer, outsider, method, path
):
    hidden = make_suite(
        slug="hidden", organizer=organizer, tasks=("iris",), visibility="invite_only"
    )
    url = f"/s/{hidden.slug}/{path}"
    assert getattr(page(outsider), method)(url).status_code == 404
    assert getattr(page(organizer), method)(url).status_code in (200, 302, 400)


def test_an_invite_only_suites_endpoints_do_not_exist_for_an_outsider(api, organizer, outsider):
    hidden = make_suite(
        slug="hidden", organizer=organizer, tasks=("iris",), visibility="invite_only"
    )
    for method, path in ENDPOINTS:
        response = getattr(api(outsider), method)(f"/api/v1/suites/{hidden.slug}/{path}")
        assert response.status_code == 404, path
        assert response.json()["code"] == "not_found"
