"""The API's conventions for scripts: every route answers with or without its trailing
slash and never redirects; every /api/ error is JSON; quota and Retry-After; next and
previous links on lists (Range and ETag on downloads: test_api_downloads.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils import timezone
from rest_framework.test import APIClient

from competitions.models import Competition, Submission
from tests import factories
from tests.conftest import persona_user

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent.parent


def _api_routes(patterns=None, prefix: str = "") -> list[str]:
    """Every endpoint route under api/ in the URLconf, as declared (with converters)."""
    routes: list[str] = []
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            routes += _api_routes(entry.url_patterns, route)
        elif isinstance(entry, URLPattern) and route.startswith("api/"):
            routes.append(route)
    return routes


def _concrete(route: str, slug: str, submission_id: int) -> str:
    values = {"slug": slug, "int": str(submission_id), "str": "train.csv", "path": "x/y"}
    values["uuid"] = "00000000-0000-4000-8000-000000000000"
    url = re.sub(r"<(\w+):\w+>", lambda m: values.get(m[1], "x"), route)
    return "/" + re.sub(r"<\w+>", "x", url)


def test_the_urlconf_has_the_api_routes_the_walk_checks():
    routes = _api_routes()
    # A walk that found nothing would make the tests below pass vacuously.
    assert "api/v1/competitions/<slug:slug>/submissions/" in routes
    assert len(routes) > 20


def test_every_api_route_answers_without_its_trailing_slash_and_never_redirects(
    competition, submission, participant, organizer
):
    for user in (None, participant, organizer):
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        for route in _api_routes():
            url = _concrete(route, competition.slug, submission.pk)
            bare = url.rstrip("/")
            if url.endswith("/"):
                assert resolve(bare).func == resolve(url).func, route
            for method in ("get", "post"):
                response = getattr(client, method)(bare)
                assert not 300 <= response.status_code < 400, (method, bare, response.status_code)
                assert response.headers.get("Location", "").rstrip("/") != bare


def test_a_post_without_the_trailing_slash_submits(api, competition, participant):
    response = api(participant).post(
        f"/api/v1/competitions/{competition.slug}/submissions",
        {"file": factories.upload(factories.perfect_predictions())},
        format="multipart",
    )
    assert response.status_code == 202, response.content
    assert participant.submission_set.count() == 1
    # The canonical URL (what reverse() gives) keeps its slash.
    assert re.search(r"/api/v1/submissions/\d+/$", response.json()["url"])


def test_pages_outside_the_api_still_get_the_slash_redirect(client):
    response = client.get("/accounts/login")
    assert response.status_code == 301
    assert response["Location"] == "/accounts/login/"


def test_under_production_settings_a_slashless_post_is_not_redirected(tmp_path):
    script = (
        "import django\n"
        "django.setup()\n"
        "from django.test import Client\n"
        "c = Client(HTTP_X_FORWARDED_PROTO='https')\n"
        "r = c.post('/api/v1/competitions/x/submissions')\n"
        "print(r.status_code, r['Content-Type'])\n"
        "r = c.get('/api/v1/no-such-thing')\n"
        "print(r.status_code, r['Content-Type'], r.json()['code'])\n"
    )
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": "x" * 50,
        "DJANGO_DEBUG": "false",
        "DJANGO_ALLOWED_HOSTS": "testserver",
        "HELDOUT_DATA_DIR": str(tmp_path),
    }
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.split("\n")
    # Anonymous: refused by the view itself (401), not redirected to a GET.
    assert out[0] == "401 application/json"
    assert out[1] == "404 application/json not_found"


def test_a_slashless_submission_upload_gets_the_container_phase_size_limit(
    rf, competition, settings
):
    from competitions.middleware import upload_limit

    settings.HELDOUT_MAX_UPLOAD_BYTES, settings.HELDOUT_MAX_IMAGE_BYTES = 10, 1000
    competition.phases.update(submission_kind="container")
    for path in ("submissions/", "submissions"):
        request = rf.post(f"/api/v1/competitions/{competition.slug}/{path}")
        assert upload_limit(request) == 1000, path


# JSON for every /api/ error -------------------------------------------------------------


def test_an_unknown_api_path_answers_json_404(api, participant):
    for url in ("/api/v1/nothing-here/", "/api/v2/competitions/", "/api/v1/competitions/x/y/z"):
        response = api(participant).get(url)
        assert response.status_code == 404, url
        assert response["Content-Type"] == "application/json"
        assert response.json()["code"] == "not_found"
        assert response.json()["detail"]


def test_an_unknown_page_outside_the_api_keeps_its_html_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_wrong_method_answers_json_405(api, competition, participant):
    response = api(participant).put(f"/api/v1/competitions/{competition.slug}/submissions")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_a_server_error_in_the_api_answers_json_500(monkeypatch, competition):
    from competitions.api import competitions as competitions_api

    def broken(user):
        raise RuntimeError("boom")

    monkeypatch.setattr(competitions_api.selectors, "competition_list_for_user", broken)
    response = Client(raise_request_exception=False).get("/api/v1/competitions/")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "server_error"
    assert "boom" not in response.content.decode()


def test_a_csrf_failure_in_the_api_answers_json_403(competition, outsider):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(outsider)
    response = client.post(
        f"/api/v1/competitions/{competition.slug}/join", {"accept_rules": True}, format="json"
    )
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert "CSRF" in response.json()["detail"]
    assert response.json()["code"]


def test_the_csrf_failure_view_answers_json_under_the_api_and_html_elsewhere(rf):
    from competitions.views.errors import csrf_failure

    api_response = csrf_failure(rf.post("/api/v1/anything/"), reason="no token")
    assert api_response.status_code == 403
    assert api_response["Content-Type"] == "application/json"
    page = csrf_failure(rf.post("/accounts/login/"), reason="no token")
    assert page.status_code == 403
    assert page["Content-Type"].startswith("text/html")


def test_the_openapi_schema_lists_each_route_once_with_its_slash(api):
    paths = api(None).get("/api/schema/?format=json").json()["paths"]
    assert "/api/v1/competitions/{slug}/submissions/" in paths
    assert not any(
        p.startswith("/api/") and not p.endswith("/") and "{name}" not in p for p in paths
    )


# Quota ------------------------------------------------------------------------------------


def _submit(client, competition, content: bytes | None = None):
    content = content if content is not None else factories.perfect_predictions()
    return client.post(
        f"/api/v1/competitions/{competition.slug}/submissions/",
        {"file": factories.upload(content)},
        format="multipart",
    )


def test_the_quota_endpoint_counts_what_the_submission_rule_counts(
    api, competition, participant, settings
):
    settings.HELDOUT_INVALID_SUBMISSIONS_PER_DAY = 4
    phase = competition.phases.get()
    phase.daily_limit, phase.total_limit = 3, 10
    phase.save()
    client = api(participant)
    first, second = _submit(client, competition).json(), _submit(client, competition).json()
    Submission.objects.filter(pk=first["id"]).update(failure=Submission.Failure.INVALID)
    noon = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)

    with time_machine.travel(noon, tick=False):
        Submission.objects.filter(pk__in=[first["id"], second["id"]]).update(created_at=noon)
        body = client.get(f"/api/v1/competitions/{competition.slug}/quota").json()

    assert body == {
        "phase": phase.name,
        "is_late": False,
        "remaining": 2,
        "daily": {"used": 1, "limit": 3, "resets_at": _iso(noon + timedelta(hours=12))},
        "total": {"used": 1, "limit": 10},
        "invalid_today": {"used": 1, "limit": 4},
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_the_quota_shows_nothing_left_exactly_when_a_submission_is_refused(
    api, competition, participant
):
    phase = competition.phases.get()
    phase.daily_limit = 2
    phase.save()
    client = api(participant)
    url = f"/api/v1/competitions/{competition.slug}/quota/"
    for expected_remaining in (2, 1):
        assert client.get(url).json()["remaining"] == expected_remaining
        assert _submit(client, competition).status_code == 202
    assert client.get(url).json()["remaining"] == 0
    assert _submit(client, competition).status_code == 429


def test_a_quota_429_says_when_to_retry(api, competition, participant):
    phase = competition.phases.get()
    phase.daily_limit = 1
    phase.save()
    evening = timezone.now().replace(hour=23, minute=0, second=0, microsecond=0)
    with time_machine.travel(evening, tick=False):
        client = api(participant)
        assert _submit(client, competition).status_code == 202
        response = _submit(client, competition)
    assert response.status_code == 429
    assert response["Retry-After"] == "3600"
    assert response.json()["resets_at"] == (evening + timedelta(hours=1)).isoformat()


def test_a_used_up_phase_total_has_no_retry_after(api, competition, participant):
    phase = competition.phases.get()
    phase.total_limit = 1
    phase.save()
    client = api(participant)
    assert _submit(client, competition).status_code == 202
    response = _submit(client, competition)
    assert response.status_code == 429
    assert "Retry-After" not in response
    assert response.json()["resets_at"] is None


def test_the_submit_page_quota_refusal_says_when_to_retry(client, competition, participant):
    phase = competition.phases.get()
    phase.daily_limit = 1
    phase.save()
    client.force_login(participant)
    url = f"/c/{competition.slug}/submit/"
    upload = factories.upload(factories.perfect_predictions())
    assert client.post(url, {"file": upload}).status_code == 302
    for accept in ("text/html", "application/json"):
        upload = factories.upload(factories.perfect_predictions())
        response = client.post(url, {"file": upload}, HTTP_ACCEPT=accept)
        assert response.status_code == 429
        assert 0 < int(response["Retry-After"]) <= 86400


def test_the_submit_page_counts_the_day_as_the_quota_endpoint_does(
    api, client, competition, participant
):
    _submit(api(participant), competition)
    client.force_login(participant)
    page = client.get(f"/c/{competition.slug}/submit/").content.decode()
    used = api(participant).get(f"/api/v1/competitions/{competition.slug}/quota/").json()
    assert used["daily"]["used"] == 1
    assert '<span id="quota-used">1</span> of 5' in page


def test_each_participant_sees_only_their_own_teams_quota(
    api, competition, participant, other_participant
):
    _submit(api(participant), competition)
    url = f"/api/v1/competitions/{competition.slug}/quota/"
    assert api(participant).get(url).json()["daily"]["used"] == 1
    assert api(other_participant).get(url).json()["daily"]["used"] == 0


@pytest.mark.parametrize(
    ("persona", "status", "code"),
    [
        ("anonymous", 401, "not_authenticated"),
        ("outsider", 403, "not_joined"),
        ("other_organizer", 403, "not_joined"),
        ("organizer", 403, "not_joined"),
    ],
)
def test_only_participants_have_a_quota(request, api, competition, persona, status, code):
    user = persona_user(request, persona)
    response = api(user).get(f"/api/v1/competitions/{competition.slug}/quota/")
    assert (response.status_code, response.json()["code"]) == (status, code)


def test_the_quota_of_an_invite_only_competition_does_not_exist_for_outsiders(
    api, outsider, other_organizer, organizer
):
    hidden = factories.make_competition(
        slug="hidden", organizers=[organizer], visibility=Competition.Visibility.INVITE_ONLY
    )
    for user in (outsider, other_organizer):
        response = api(user).get(f"/api/v1/competitions/{hidden.slug}/quota/")
        assert response.status_code == 404


def test_the_quota_of_a_closed_competition_says_so(api, competition, participant):
    competition.phases.update(end_at=timezone.now() - timedelta(hours=1))
    response = api(participant).get(f"/api/v1/competitions/{competition.slug}/quota/")
    assert (response.status_code, response.json()["code"]) == (403, "phase_closed")


def test_the_quota_endpoint_has_a_typed_schema(api):
    schema = api(None).get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/competitions/{slug}/quota/"]["get"]
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    component = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert set(component["properties"]) >= {"phase", "daily", "total", "invalid_today"}


# next and previous on lists -----------------------------------------------------------------


def test_the_leaderboard_links_its_next_and_previous_pages(api, competition, participant):
    now = timezone.now()
    for i in range(5):
        team = factories.team_for(competition, f"team{i}")
        factories.scored_submission(
            team, {"public": {"roc_auc": 0.5 + i / 10, "accuracy": 0.5}}, created_at=now
        )
    client = api(participant)
    url = f"/api/v1/competitions/{competition.slug}/leaderboard/"

    first = client.get(url, {"page_size": 2}).json()
    assert first["previous"] is None
    assert first["next"] == f"http://testserver{url}?page=2&page_size=2"
    second = client.get(first["next"]).json()
    assert second["previous"] == f"http://testserver{url}?page_size=2"
    third = client.get(second["next"]).json()
    assert third["next"] is None
    assert third["previous"] == f"http://testserver{url}?page=2&page_size=2"
    teams = [r["team"] for page in (first, second, third) for r in page["results"]]
    assert len(teams) == len(set(teams)) == first["count"] == 5


def test_the_leaderboard_keeps_the_split_in_its_links(api, competition, organizer):
    body = (
        api(organizer)
        .get(f"/api/v1/competitions/{competition.slug}/leaderboard/?split=private&page=2")
        .json()
    )
    assert body["next"] is None
    assert body["previous"].endswith("/leaderboard/?split=private")


def test_the_submission_list_pages_through_every_submission(api, competition, participant):
    client = api(participant)
    for _ in range(3):
        assert _submit(client, competition).status_code == 202
    url = f"/api/v1/competitions/{competition.slug}/submissions/?page_size=2"

    first = client.get(url).json()
    assert first["count"] == 3
    assert first["previous"] is None
    second = client.get(first["next"]).json()
    assert second["next"] is None
    assert second["previous"] == "http://testserver" + url
    ids = [s["id"] for s in first["results"] + second["results"]]
    expected = list(
        participant.submission_set.order_by("-created_at", "-pk").values_list("pk", flat=True)
    )
    assert ids == expected


def test_a_list_on_one_page_has_no_links(api, competition, participant):
    _submit(api(participant), competition)
    body = api(participant).get(f"/api/v1/competitions/{competition.slug}/submissions/").json()
    assert (body["count"], body["next"], body["previous"]) == (1, None, None)
