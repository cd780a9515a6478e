"""Account pages: the API token."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from rest_framework.authtoken.models import Token


@login_required
def account(request: HttpRequest) -> HttpResponse:
    token = Token.objects.filter(user=request.user).first()
    return render(request, "account/account.html", {"token": token})


@login_required
@require_POST
def token_create(request: HttpRequest) -> HttpResponse:
    # A new token replaces the old one, which stops working at once.
    Token.objects.filter(user=request.user).delete()
    Token.objects.create(user=request.user)
    return redirect("account")


@login_required
@require_POST
def token_revoke(request: HttpRequest) -> HttpResponse:
    Token.objects.filter(user=request.user).delete()
    return redirect("account")
