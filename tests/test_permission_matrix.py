"""The permission matrix, generated from the URLconf: every URL of the site (the API and the
pages; Django's admin is left to Django) is requested by five personas with every method its
view answers, and each answer must be in the set EXPECTED declares for that URL name and
persona, never a 5xx. A new URL without a line in EXPECTED fails this test: declare who may
do what there (and `tests/conftest.py` explains the personas).

Each request runs in a savepoint rolled back afterwards, so an organizer's finalize or a
participant's team leave does not change what the next request sees.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.authtoken.models import Token

from competitions.models import OrganizerJob, Submission
from competitions.services.submissions import submission_create
from judging.services import submission_score
from notifications.models import Kind
from notifications.services import Notice, notifications_create
from suites import services as suites
from tests import factories

pytestmark = pytest.mark.django_db

PERSONAS = ("anonymous", "participant", "other_participant", "organizer", "other_organizer")
SKIPPED_NAMESPACES = ("admin",)  # Django's own admin: staff only, its own permission checks
METHODS = ("get", "post", "put", "patch", "delete")

Allowed = int | set[int]


def row(*allowed: Allowed) -> dict[str, set[int]]:
    """The statuses allowed for each persona, in PERSONAS' order."""
    assert len(allowed) == len(PERSONAS)
    return {p: {a} if isinstance(a, int) else a for p, a in zip(PERSONAS, allowed, strict=True)}


# --- The table ------------------------------------------------------------------------------
# URL name (namespaced: "api:join") -> row(anonymous, participant, other_participant,
# organizer, other_organizer): the statuses each may get, for every method the view answers;
# a "<name> <METHOD>" line declares one method on its own. A new URL needs its line(s) here:
# the failure message prints the answers seen, to be checked before they are pasted.
# The world: `competition` (public, open) with one scored submission of `participant`'s team,
# a queued organizer job; `other_organizer` organizes another competition only. Requests carry
# no valid body, so writes mostly answer 400/302 (a form re-shown or redirected): what matters
# is who gets past the permission check (2xx/3xx/400/409) and who is refused (401/403/404).
# Pages sign in with a session (anonymous: 302 to the log in), the API with a token.

EXPECTED: dict[str, dict[str, set[int]]] = {
    "admin/login/ GET": row(200, 200, 200, 302, 302),
    "admin/login/ POST": row(200, 200, 200, 200, 200),
    "api:token": row(400, 400, 400, 400, 400),
    "api:competition-list": row(200, 200, 200, 200, 200),
    "api:bundle-import": row(401, 403, 403, 400, 400),
    "api:competition-detail": row(200, 200, 200, 200, 200),
    "api:join": row(401, 200, 200, 400, 400),
    "api:competition-file": row(200, 200, 200, 200, 200),
    "api:ground-truth": row(404, 404, 404, 200, 404),
    "api:leaderboard": row(200, 200, 200, 200, 200),
    # Like the board: anyone who may see the competition (no ids given here: 400).
    "api:leaderboard-compare": row(400, 400, 400, 400, 400),
    # A phase's dates, quotas and pinned version: its organizers only (an empty PATCH
    # changes nothing: 200).
    "api:phase-list GET": row(401, 403, 403, 200, 403),
    "api:phase-detail GET": row(401, 403, 403, 200, 403),
    "api:phase-detail PATCH": row(401, 403, 403, 200, 403),
    "api:version-list GET": row(200, 200, 200, 200, 200),
    "api:version-list POST": row(401, 403, 403, 201, 403),
    "api:version-activate": row(401, 403, 403, 409, 403),
    "api:scorer-workers": row(401, 403, 403, 200, 403),
    "api:scorer-adopt": row(401, 403, 403, 201, 403),
    "api:model-index": row(200, 200, 200, 200, 200),
    "api:submission-list GET": row(401, 200, 200, 200, 200),
    "api:submission-list POST": row(401, 400, 400, 400, 400),
    "api:quota": row(401, 200, 200, 403, 403),
    "api:rescore-all": row(401, 403, 403, 409, 403),
    "api:finalize": row(401, 403, 403, 200, 403),
    "api:reopen": row(401, 403, 403, 400, 403),
    "api:export": row(401, 403, 403, 200, 403),
    "api:scorer GET": row(401, 403, 403, 200, 403),
    "api:scorer POST": row(401, 403, 403, 400, 403),
    "api:job-detail": row(401, 403, 403, 200, 403),
    "api:team-ban": row(401, 403, 403, 400, 403),
    "api:submission-detail": row(401, 200, 404, 200, 404),
    "api:submission-file": row(401, 200, 404, 200, 404),
    "api:submission-manifest": row(200, 200, 200, 200, 200),
    "api:submission-bundle": row(200, 200, 200, 200, 200),
    "api:submission-replications": row(401, 200, 404, 200, 404),
    "api:submission-replicate": row(401, 403, 404, 409, 404),
    "api:replication-cancel": row(401, 404, 404, 404, 404),
    "api:submission-select": row(401, 200, 404, 404, 404),
    "api:submission-rescore": row(401, 403, 404, 202, 404),
    # The organizer sends no reason: refused (400), the rule book wants one to disqualify.
    "api:submission-disqualify": row(401, 403, 404, 400, 404),
    "api:upload-list": row(401, 412, 412, 412, 412),
    "api:upload-detail": row(401, 412, 412, 412, 412),
    "schema": row(200, 200, 200, 200, 200),
    "api-docs": row(200, 200, 200, 200, 200),
    "competition-list": row(200, 200, 200, 200, 200),
    "login": row(200, 200, 200, 200, 200),
    "logout GET": row(405, 405, 405, 405, 405),
    "logout POST": row(302, 302, 302, 302, 302),
    "signup GET": row(200, 302, 302, 302, 302),
    "signup POST": row(400, 302, 302, 302, 302),
    "password_change": row(302, 200, 200, 200, 200),
    "password_change_done": row(302, 200, 200, 200, 200),
    "password_reset": row(200, 200, 200, 200, 200),
    "password_reset_done": row(200, 200, 200, 200, 200),
    "password_reset_confirm": row(200, 200, 200, 200, 200),
    "password_reset_complete": row(200, 200, 200, 200, 200),
    "account": row(302, 200, 200, 200, 200),
    "token-create GET": row(302, 405, 405, 405, 405),
    "token-create POST": row(302, 302, 302, 302, 302),
    "token-revoke GET": row(302, 405, 405, 405, 405),
    "token-revoke POST": row(302, 302, 302, 302, 302),
    "competition": row(200, 200, 200, 200, 200),
    "competition-data": row(200, 200, 200, 200, 200),
    "competition-rules": row(200, 200, 200, 200, 200),
    "competition-join GET": row(302, 405, 405, 405, 405),
    "competition-join POST": row(302, 400, 400, 400, 400),
    "leaderboard": row(200, 200, 200, 200, 200),
    "compare GET": row(200, 200, 200, 200, 200),
    "compare POST": row(405, 405, 405, 405, 405),
    "entry": row(200, 200, 200, 200, 200),
    "competition-stats": row(200, 200, 200, 200, 200),
    "submit GET": row(302, 200, 200, 200, 200),
    "submit POST": row(302, 400, 400, 400, 400),
    "my-submissions": row(302, 200, 200, 302, 302),
    "submission-page": row(302, 200, 404, 200, 404),
    "submission-select GET": row(302, 405, 405, 405, 405),
    "submission-select POST": row(302, 302, 404, 404, 404),
    "team": row(302, 200, 200, 200, 200),
    "team-rename GET": row(302, 405, 405, 405, 405),
    "team-rename POST": row(302, 302, 302, 404, 404),
    "team-invite GET": row(302, 405, 405, 405, 405),
    "team-invite POST": row(302, 302, 302, 404, 404),
    "team-leave GET": row(302, 405, 405, 405, 405),
    "team-leave POST": row(302, 302, 302, 404, 404),
    "invitation-revoke GET": row(302, 405, 405, 405, 405),
    "invitation-revoke POST": row(302, 404, 404, 404, 404),
    "invitation": row(302, 404, 404, 404, 404),
    "bundle-upload": row(302, 403, 403, 200, 200),
    "organize": row(302, 403, 403, 200, 403),
    "organize-data": row(302, 403, 403, 200, 403),
    "organize-version-create GET": row(302, 405, 405, 405, 405),
    "organize-version-create POST": row(302, 403, 403, 302, 403),
    "organize-version-activate GET": row(302, 405, 405, 405, 405),
    "organize-version-activate POST": row(302, 403, 403, 302, 403),
    "organize-scorer-adopt GET": row(302, 405, 405, 405, 405),
    "organize-scorer-adopt POST": row(302, 403, 403, 302, 403),
    "organize-phases": row(302, 403, 403, 200, 403),
    "organize-overview GET": row(302, 403, 403, 200, 403),
    "organize-overview POST": row(302, 403, 403, 400, 403),
    "organize-phase-delete GET": row(302, 405, 405, 405, 405),
    "organize-phase-delete POST": row(302, 403, 403, 302, 403),
    "organize-people": row(302, 403, 403, 200, 403),
    "organize-log": row(302, 403, 403, 200, 403),
    "organize-submissions-bulk GET": row(302, 405, 405, 405, 405),
    "organize-submissions-bulk POST": row(302, 403, 403, 302, 403),
    "organize-submissions": row(302, 403, 403, 200, 403),
    "organize-teams": row(302, 403, 403, 200, 403),
    "organize-shakeup": row(302, 403, 403, 200, 403),
    "organize-rescore GET": row(302, 405, 405, 405, 405),
    "organize-rescore POST": row(302, 403, 403, 302, 403),
    "organize-finalize GET": row(302, 405, 405, 405, 405),
    "organize-finalize POST": row(302, 403, 403, 302, 403),
    "organize-replication-cancel GET": row(302, 405, 405, 405, 405),
    "organize-replication-cancel POST": row(302, 403, 403, 404, 403),
    "organize-reopen GET": row(302, 405, 405, 405, 405),
    "organize-reopen POST": row(302, 403, 403, 302, 403),
    "organize-export": row(302, 403, 403, 200, 403),
    "organize-disqualify GET": row(302, 405, 405, 405, 405),
    "organize-disqualify POST": row(302, 403, 403, 302, 403),
    "organize-rescore-one GET": row(302, 405, 405, 405, 405),
    "organize-rescore-one POST": row(302, 403, 403, 302, 403),
    "organize-ban GET": row(302, 405, 405, 405, 405),
    "organize-ban POST": row(302, 403, 403, 302, 403),
    # Webhooks are their owner's alone; the world has none, so every id is someone else's.
    "api:webhook-list GET": row(401, 200, 200, 200, 200),
    "api:webhook-list POST": row(401, 400, 400, 400, 400),
    "api:webhook-detail GET": row(401, 404, 404, 404, 404),
    "api:webhook-detail PATCH": row(401, 404, 404, 404, 404),
    "api:webhook-detail DELETE": row(401, 404, 404, 404, 404),
    "api:webhook-deliveries GET": row(401, 404, 404, 404, 404),
    "api:webhook-ping POST": row(401, 404, 404, 404, 404),
    "webhooks GET": row(302, 200, 200, 200, 200),
    "webhooks POST": row(302, 200, 200, 200, 200),  # the form again, with its errors
    "webhook-action GET": row(302, 405, 405, 405, 405),
    "webhook-action POST": row(302, 404, 404, 404, 404),
    # Notifications: each user's own; `notification` is the participant's.
    "notifications GET": row(302, 200, 200, 200, 200),
    "notifications POST": row(302, 405, 405, 405, 405),
    "notifications-read GET": row(302, 405, 405, 405, 405),
    "notifications-read POST": row(302, 302, 302, 302, 302),
    "notification-open GET": row(302, 405, 405, 405, 405),
    "notification-open POST": row(302, 302, 404, 404, 404),
    "notification-preferences GET": row(302, 405, 405, 405, 405),
    "notification-preferences POST": row(302, 302, 302, 302, 302),
    # Applying a bundle: staff only; an empty request is refused before any slug is known.
    "api:bundle-apply POST": row(401, 400, 400, 400, 400),
    "bundle-apply GET": row(302, 403, 403, 200, 200),
    "bundle-apply POST": row(302, 403, 403, 200, 200),
    # Operations: health for everyone; metrics exist only with a token setting (none here).
    "healthz GET": row(200, 200, 200, 200, 200),
    "healthz POST": row(405, 405, 405, 405, 405),
    "readyz GET": row(200, 200, 200, 200, 200),
    "readyz POST": row(405, 405, 405, 405, 405),
    "metrics GET": row(404, 404, 404, 404, 404),
    "metrics POST": row(405, 405, 405, 405, 405),
    "favicon GET": row(200, 200, 200, 200, 200),
    "favicon POST": row(405, 405, 405, 405, 405),
    # Suites (suites/permissions.py): the world's suite is public, its one task the
    # competition, its one method the participant's (only its owner submits to it). One
    # method on one task draws no CD diagram: 404 for everyone. The read pages answer a
    # POST as a GET, as the competition's do.
    "suites-api:suite-list GET": row(200, 200, 200, 200, 200),
    "suites-api:suite-detail GET": row(200, 200, 200, 200, 200),
    # The suite organizer's console and endpoints (suites/views_console.py,
    # suites/api_organize.py): the suite's organizers only. The world's method has no run,
    # so its one task may be removed (204); empty bodies answer 400.
    "suites-api:suite-detail PATCH": row(401, 403, 403, 200, 403),
    "suites-api:suite-matrix-refresh POST": row(401, 403, 403, 202, 403),
    "suites-api:suite-task-list POST": row(401, 403, 403, 400, 403),
    "suites-api:suite-task-detail GET": row(401, 403, 403, 200, 403),
    "suites-api:suite-task-detail DELETE": row(401, 403, 403, 204, 403),
    "suites-api:suite-task-move POST": row(401, 403, 403, 400, 403),
    "suites-api:suite-phases GET": row(401, 403, 403, 200, 403),
    "suites-api:suite-phases PUT": row(401, 403, 403, 400, 403),
    "suite-organize GET": row(302, 403, 403, 200, 403),
    "suite-organize POST": row(302, 403, 403, 400, 403),
    "suite-organize-tasks GET": row(302, 403, 403, 200, 403),
    "suite-organize-tasks POST": row(302, 403, 403, 400, 403),
    "suite-organize-task-remove GET": row(302, 405, 405, 405, 405),
    "suite-organize-task-remove POST": row(302, 403, 403, 302, 403),
    "suite-organize-task-move GET": row(302, 405, 405, 405, 405),
    "suite-organize-task-move POST": row(302, 403, 403, 302, 403),
    "suite-organize-methods": row(302, 403, 403, 200, 403),
    "suite-organize-phases GET": row(302, 403, 403, 200, 403),
    "suite-organize-phases POST": row(302, 403, 403, 400, 403),
    "suite-organize-refresh GET": row(302, 405, 405, 405, 405),
    "suite-organize-refresh POST": row(302, 403, 403, 302, 403),
    "suites-api:suite-join POST": row(401, 200, 200, 400, 400),
    "suites-api:suite-matrix GET": row(200, 200, 200, 200, 200),
    "suites-api:suite-matrix-csv GET": row(200, 200, 200, 200, 200),
    "suites-api:suite-cd-diagram GET": row(404, 404, 404, 404, 404),
    "suites-api:method-list GET": row(200, 200, 200, 200, 200),
    "suites-api:method-list POST": row(401, 400, 400, 400, 400),
    "suites-api:method-detail GET": row(200, 200, 200, 200, 200),
    "suites-api:method-submit-everywhere POST": row(401, 400, 403, 403, 403),
    "suites-api:method-task-submit POST": row(401, 400, 403, 403, 403),
    "suite-list": row(200, 200, 200, 200, 200),
    "suite": row(200, 200, 200, 200, 200),
    "suite-join GET": row(302, 405, 405, 405, 405),
    "suite-join POST": row(302, 400, 400, 400, 400),
    "suite-matrix": row(200, 200, 200, 200, 200),
    "suite-method-new GET": row(302, 200, 200, 200, 200),
    "suite-method-new POST": row(302, 400, 400, 400, 400),
    "suite-method": row(200, 200, 200, 200, 200),
    "suite-method-upload GET": row(302, 405, 405, 405, 405),
    "suite-method-upload POST": row(302, 400, 403, 403, 403),
    # A method's bundle: anyone who sees the suite (suites/views_downloads.py).
    "suite-method-bundle GET": row(200, 200, 200, 200, 200),
    "suite-method-bundle POST": row(405, 405, 405, 405, 405),
}


def _routes(patterns=None, prefix: str = "", namespace: str = "") -> Iterator[tuple]:
    """(name, route, callback) of every named endpoint, once per name."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            if entry.namespace in SKIPPED_NAMESPACES:
                continue
            yield from _routes(entry.url_patterns, route, inner)
        elif isinstance(entry, URLPattern):
            # An unnamed route (the throttled admin log in) is keyed by its route.
            yield f"{namespace}{entry.name or route}", route, entry.callback


def _methods(callback) -> list[str]:
    """The methods a view answers: a class-based view's handlers; for a function, GET and
    POST (a function view refusing one answers 405, which the table allows or not)."""
    view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view_class is None:
        return ["get", "post"]
    return [m for m in METHODS if hasattr(view_class, m)]


@pytest.fixture
def world(competition, participant, other_participant, organizer, other_organizer, settings):
    other_competition = factories.make_competition(slug="other", organizers=[other_organizer])
    submission = submission_create(
        competition=competition,
        user=participant,
        uploaded_file=factories.upload(factories.perfect_predictions()),
    )
    settings.HELDOUT_SCORER = "in-process"
    assert submission_score(submission_id=submission.pk)  # a manifest, a leaderboard entry
    submission.refresh_from_db()
    job = OrganizerJob.objects.create(
        competition=competition, kind=OrganizerJob.Kind.RESCORE_ALL, created_by=organizer
    )
    [notification] = notifications_create(
        notice=Notice(kind=Kind.SUBMISSION_SCORED, title="Scored", url="/"),
        user_ids=[participant.pk],
    )
    # A suite of the same slug, holding the competition as its one task: the participant
    # has joined it and owns its one method; `other_organizer` does not organize it.
    suite = suites.suite_create(slug=competition.slug, title="Suite", organizer=organizer)
    suites.suite_task_add(suite=suite, competition=competition, key="tiny", owned=False)
    method = suites.method_create(suite=suite, owner=participant, name="m")
    return {
        "method": method,
        "notification": notification,
        "competition": competition,
        "other_competition": other_competition,
        "submission": submission,
        "job": job,
        "users": {
            "anonymous": None,
            "participant": participant,
            "other_participant": other_participant,
            "organizer": organizer,
            "other_organizer": other_organizer,
        },
    }


def _concrete(route: str, world: dict) -> str:
    submission: Submission = world["submission"]
    values = {
        "slug": world["competition"].slug,
        "submission_id": str(submission.pk),
        "team_id": str(submission.team_id),
        "number": "1",
        "job_id": str(world["job"].pk),
        "notification_id": str(world["notification"].pk),
        # The competition's own phase: ids are not 1 once other tests advanced the sequence.
        "phase_id": str(submission.phase_id),
        "name": "sample_submission.csv",
        "upload_id": "00000000-0000-4000-8000-000000000000",
        "method_id": str(world["method"].pk),
        "key": "tiny",
    }
    url = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values.get(m[1], "1"), route)
    return "/" + url.lstrip("^").rstrip("$")


def _client(user: User | None, api: bool) -> Client:
    client = Client()
    if user is not None and api:
        token, _ = Token.objects.get_or_create(user=user)
        client.defaults["HTTP_AUTHORIZATION"] = f"Token {token.key}"
    elif user is not None:
        client.force_login(user)
    return client


def _status(client: Client, method: str, url: str) -> int:
    """The answer's status, whatever the request changed undone."""
    cache.clear()  # throttle counts
    atomic = transaction.atomic()
    # Marked as the test case's own block: services' durable atomic blocks may nest in it.
    atomic._from_testcase = True  # type: ignore[attr-defined]
    with atomic:
        response = getattr(client, method)(url)
        transaction.set_rollback(True)
    return response.status_code


def test_the_walk_finds_the_api_and_the_pages():
    names = [name for name, _, _ in _routes()]
    assert len(names) == len(set(names))
    assert {"api:submission-list", "submit", "organize", "login", "schema"} <= set(names)
    assert len(names) > 80


def test_every_url_answers_each_persona_as_the_table_declares(world):
    wrong, undeclared, server_errors = [], [], []
    for name, route, callback in _routes():
        url = _concrete(route, world)
        for method in _methods(callback):
            key = f"{name} {method.upper()}"
            expected = EXPECTED.get(key) or EXPECTED.get(name)
            seen = []
            for persona in PERSONAS:
                client = _client(world["users"][persona], api=url.startswith("/api/"))
                status = _status(client, method, url)
                seen.append(status)
                if status >= 500:
                    server_errors.append(f"{key} {persona}: {status}")
                elif expected is not None and status not in expected[persona]:
                    wrong.append(f"{key} {persona}: {status}, expected {expected[persona]}")
            if expected is None:
                undeclared.append(f'    "{key}": row({", ".join(map(str, seen))}),')
    assert server_errors == []
    assert undeclared == [], "Declare who may do what on these URLs:\n" + "\n".join(undeclared)
    assert wrong == []


def test_every_line_of_the_table_names_a_url():
    names = {name for name, _, _ in _routes()}
    stale = [key for key in EXPECTED if key.rsplit(" ", 1)[0] not in names and key not in names]
    assert stale == []
