"""Accounts: signing up. Logging in, out and password resets are Django's own views."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.db import transaction

from competitions.errors import ApplicationError


@transaction.atomic
def user_create(*, username: str, email: str, password: str) -> User:
    """A participant account: no staff rights (organizers are made by an administrator)."""
    if User.objects.filter(username__iexact=username).exists():
        raise ApplicationError(f'The username "{username}" is taken.')
    user = User(username=username, email=email)
    validate_password(password, user)
    user.set_password(password)
    user.full_clean()
    user.save()
    return user
