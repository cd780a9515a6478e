"""Every API list is a page: {count, next, previous, results}, paged with `page` and
`page_size` like the leaderboard (docs/api.md "Lists"). Issue 9 part 7: the competition
list, task versions, replications and webhooks were returned whole."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from competitions.models import Replication, TaskVersion, Webhook, WebhookDelivery
from competitions.services.submissions import submission_create
from competitions.services.teams import competition_join
from tests import factories


def _walk(client, url: str) -> tuple[list[dict], list[dict]]:
    """Every page from `url` on, following `next`: (pages, rows)."""
    pages = [client.get(url).json()]
    while pages[-1]["next"]:
        pages.append(client.get(pages[-1]["next"]).json())
    return pages, [row for page in pages for row in page["results"]]


def _assert_links(pages: list[dict], path: str) -> None:
    """Two rows a page: `next` and `previous` chain the pages, null at either end."""
    assert pages[0]["previous"] is None
    assert pages[-1]["next"] is None
    assert pages[0]["next"] == f"http://testserver{path}?page=2&page_size=2"
    assert pages[1]["previous"] == f"http://testserver{path}?page_size=2"
    assert {page["count"] for page in pages} == {pages[0]["count"]}


def test_the_competition_list_pages_newest_first(api, outsider):
    now = timezone.now()
    made = [
        factories.make_competition(slug=f"c{i}", organizers=[]) for i in range(5)
    ]  # created in this order
    for i, competition in enumerate(made):
        competition.created_at = now - timedelta(minutes=10 - i)
        competition.save(update_fields=["created_at"])
    path = "/api/v1/competitions/"

    pages, rows = _walk(api(outsider), f"{path}?page_size=2")

    assert len(pages) == 3
    _assert_links(pages, path)
    assert pages[0]["count"] == 5
    assert [row["slug"] for row in rows] == ["c4", "c3", "c2", "c1", "c0"]


def test_the_competition_list_counts_only_what_the_user_may_see(api, organizer, outsider):
    factories.make_competition(slug="open", organizers=[organizer])
    factories.make_competition(slug="secret", organizers=[organizer], visibility="invite_only")

    seen = api(outsider).get("/api/v1/competitions/").json()
    assert (seen["count"], seen["next"], seen["previous"]) == (1, None, None)
    assert [row["slug"] for row in seen["results"]] == ["open"]
    assert api(organizer).get("/api/v1/competitions/").json()["count"] == 2


@pytest.mark.parametrize("rows", [1, 30])
def test_the_competition_list_takes_a_fixed_number_of_queries(
    api, participant, django_assert_max_num_queries, rows
):
    # Token auth, a COUNT, one page query: the same whatever the number of competitions.
    for i in range(rows):
        competition = factories.make_competition(slug=f"c{i}", organizers=[])
        competition_join(competition=competition, user=participant, accept_rules=True)
    client = api(participant)
    with django_assert_max_num_queries(3):
        body = client.get("/api/v1/competitions/?page_size=20").json()
    assert body["count"] == rows
    assert len(body["results"]) == min(rows, 20)


def test_task_versions_page_oldest_first_and_say_which_is_ranked(api, competition, outsider):
    task = competition.task
    assert not TaskVersion.objects.filter(task=task).exists()  # the factory records none
    for number in range(1, 6):
        TaskVersion.objects.create(task=task, number=number, ground_truth_sha256="0" * 64)
    path = f"/api/v1/competitions/{competition.slug}/versions/"

    pages, rows = _walk(api(outsider), f"{path}?page_size=2")

    _assert_links(pages, path)
    assert pages[0]["count"] == 5
    assert [row["number"] for row in rows] == [1, 2, 3, 4, 5]
    assert {page["ranked"] for page in pages} == {task.version}


def test_replications_page_newest_first(api, competition, participant, organizer):
    submission = submission_create(
        competition=competition,
        user=participant,
        uploaded_file=factories.upload(factories.perfect_predictions()),
    )
    now = timezone.now()
    made = [
        Replication.objects.create(
            submission=submission,
            status=Replication.Status.DONE,
            outcome=Replication.Outcome.REPRODUCED,
            created_at=now - timedelta(minutes=10 - i),
        )
        for i in range(5)
    ]
    path = f"/api/v1/submissions/{submission.pk}/replications/"

    for user in (participant, organizer):
        pages, rows = _walk(api(user), f"{path}?page_size=2")
        _assert_links(pages, path)
        assert pages[0]["count"] == 5
        assert [row["id"] for row in rows] == [r.pk for r in reversed(made)]


def _hooks(owner, count: int) -> list[Webhook]:
    return [
        Webhook.objects.create(
            owner=owner, url=f"https://ci.example.org/{i}", secret="s", events=["ping"]
        )
        for i in range(count)
    ]


def test_webhooks_page_newest_first_and_only_the_owners(api, participant, other_participant):
    hooks = _hooks(participant, 5)
    path = "/api/v1/webhooks/"

    pages, rows = _walk(api(participant), f"{path}?page_size=2")

    _assert_links(pages, path)
    assert [row["id"] for row in rows] == [h.pk for h in reversed(hooks)]
    others = api(other_participant).get(path).json()
    assert (others["count"], others["results"]) == (0, [])


def test_webhook_deliveries_page_newest_first(api, participant):
    (hook,) = _hooks(participant, 1)
    now = timezone.now()
    made = [
        WebhookDelivery.objects.create(
            webhook=hook,
            event="ping",
            event_id=f"e{i}",
            body=json.dumps({"event": "ping"}),
            created_at=now - timedelta(minutes=10 - i),
        )
        for i in range(5)
    ]
    path = f"/api/v1/webhooks/{hook.pk}/deliveries/"

    pages, rows = _walk(api(participant), f"{path}?page_size=2")

    _assert_links(pages, path)
    assert [row["id"] for row in rows] == [d.pk for d in reversed(made)]


def test_a_page_past_the_end_is_empty_and_links_back(api, outsider):
    factories.make_competition(slug="only", organizers=[])
    body = api(outsider).get("/api/v1/competitions/?page=3").json()
    assert (body["count"], body["results"], body["next"]) == (1, [], None)
    assert body["previous"] == "http://testserver/api/v1/competitions/?page=2"


@pytest.mark.parametrize(
    "route",
    [
        "/api/v1/competitions/",
        "/api/v1/competitions/{slug}/versions/",
        "/api/v1/submissions/{submission_id}/replications/",
        "/api/v1/webhooks/",
        "/api/v1/webhooks/{webhook_id}/deliveries/",
    ],
)
def test_each_list_has_a_typed_page_in_the_schema(route):
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"][route]["get"]
    assert {"page", "page_size"} <= {p["name"] for p in operation["parameters"]}
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    component = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"count", "next", "previous", "results"} <= set(component["required"])
    assert component["properties"]["results"]["type"] == "array"
