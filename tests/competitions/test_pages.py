"""The server-rendered pages of the core issue: list, competition, account and API docs."""

import pytest
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db


def test_a_participant_logs_in_and_creates_then_revokes_an_api_token(client, participant):
    response = client.post("/accounts/login/", {"username": "alice", "password": "pw-alice"})
    assert response.status_code == 302
    assert client.get("/account/").status_code == 200
    client.post("/account/token/")
    token = Token.objects.get(user=participant)
    assert token.key in client.get("/account/").content.decode()
    client.post("/account/token/")
    assert Token.objects.get(user=participant).key != token.key
    client.post("/account/token/revoke/")
    assert not Token.objects.filter(user=participant).exists()


def test_the_account_page_needs_a_login(client):
    response = client.get("/account/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_competition_page_renders_markdown_without_scripts(client, competition):
    competition.description = (
        "# Hello\n\n<script>alert(1)</script> **bold** [x](javascript:alert(1))"
    )
    competition.save()
    body = client.get(f"/c/{competition.slug}/").content.decode()
    assert "<h1>Hello</h1>" in body
    assert "<strong>bold</strong>" in body
    assert "<script>alert(1)</script>" not in body
    assert "javascript:" not in body


def test_an_invite_only_competition_page_is_a_404_for_outsiders(client, outsider, organizer):
    from tests import factories

    factories.make_competition(slug="secret", organizers=[organizer], visibility="invite_only")
    client.force_login(outsider)
    assert client.get("/c/secret/").status_code == 404
    assert client.get("/c/secret/leaderboard/").status_code == 404
    assert "secret" not in client.get("/").content.decode()


def test_the_openapi_schema_and_docs_are_served_without_a_cdn(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/competitions/{slug}/submissions/" in schema.content
    docs = client.get("/api/docs/").content.decode()
    assert "cdn.jsdelivr" not in docs
    assert "unpkg" not in docs


def test_the_openapi_schema_generates_without_warnings(capsys):
    from django.core.management import call_command

    call_command("spectacular", "--file", "/dev/null", "--validate", "--fail-on-warn")
