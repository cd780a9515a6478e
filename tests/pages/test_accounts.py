"""Signing up, resetting a password by email, and the error pages."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.core import mail

pytestmark = pytest.mark.django_db

SIGNUP = {
    "username": "newbie",
    "email": "newbie@example.org",
    "password1": "a-long-pass-phrase-42",
    "password2": "a-long-pass-phrase-42",
}


def test_signing_up_logs_in_and_returns_to_where_the_user_was(client, competition):
    response = client.post("/accounts/signup/", {**SIGNUP, "next": f"/c/{competition.slug}/rules/"})
    assert response["Location"] == f"/c/{competition.slug}/rules/"
    user = User.objects.get(username="newbie")
    assert (user.email, user.is_staff) == ("newbie@example.org", False)
    assert client.get("/account/").status_code == 200


def test_signing_up_refuses_a_taken_name_a_weak_password_and_a_foreign_next(client, participant):
    response = client.post("/accounts/signup/", {**SIGNUP, "username": "alice"})
    assert response.status_code == 400
    assert "already exists" in response.content.decode()
    weak = {**SIGNUP, "password1": "123", "password2": "123"}
    assert "too short" in client.post("/accounts/signup/", weak).content.decode()
    response = client.post("/accounts/signup/", {**SIGNUP, "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_a_forgotten_password_is_reset_through_the_emailed_link(client, participant):
    response = client.post("/accounts/password/reset/", {"email": "alice@example.org"})
    assert response["Location"] == "/accounts/password/reset/sent/"
    assert len(mail.outbox) == 1
    match = re.search(r"http://testserver(/accounts/password/reset/\S+/)", str(mail.outbox[0].body))
    assert match is not None
    link = match[1]
    assert mail.outbox[0].subject == "Reset your Heldout password"

    form_url = client.get(link)["Location"]  # Django swaps the token for a session marker
    assert "Choose a new password" in client.get(form_url).content.decode()
    new = "another-long-phrase-77"
    response = client.post(form_url, {"new_password1": new, "new_password2": new})
    assert response["Location"] == "/accounts/password/reset/done/"
    assert client.login(username="alice", password=new)


def test_an_unknown_email_gets_the_same_answer_and_no_mail(client):
    response = client.post("/accounts/password/reset/", {"email": "nobody@example.org"})
    assert response["Location"] == "/accounts/password/reset/sent/"
    assert mail.outbox == []


def test_the_404_page_says_what_happened_and_where_to_go(client):
    response = client.get("/c/no-such-thing/")
    page = response.content.decode()
    assert response.status_code == 404
    assert "We can't find that page" in page
    assert "No competition named &#x27;no-such-thing&#x27;." in page
    assert 'href="/accounts/login/?next=/c/no-such-thing/"' in page
    # An unknown URL shows no resolver internals.
    assert "tried" not in client.get("/nothing/here/").content.decode()


def test_the_login_page_links_to_the_password_reset_and_sign_up(client):
    page = client.get("/accounts/login/").content.decode()
    assert 'href="/accounts/password/reset/"' in page
    assert 'href="/accounts/signup/"' in page
