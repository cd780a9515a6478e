"""Account pages: signing up and the API token. Logging in and out and resetting a password
are Django's own views with the templates under templates/registration/."""

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from rest_framework.authtoken.models import Token

from competitions.errors import ApplicationError
from competitions.forms import SignupForm
from competitions.services.accounts import user_create
from competitions.throttles import AUTH, throttle
from competitions.views.common import AuthenticatedRequest
from notifications.selectors import preferences_table


@throttle(AUTH)
def signup(request: HttpRequest) -> HttpResponse:
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}):
        next_url = ""
    if request.user.is_authenticated:
        return redirect(next_url or "competition-list")
    form = SignupForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            user = user_create(
                username=form.cleaned_data["username"],
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"],
            )
        except (ApplicationError, ValidationError) as exc:
            message = exc.message if isinstance(exc, ApplicationError) else " ".join(exc.messages)
            form.add_error(None, message)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome, {user.username}. Pick a competition to join.")
            return redirect(next_url or "competition-list")
    status = 400 if request.method == "POST" else 200
    return render(
        request, "registration/signup.html", {"form": form, "next": next_url}, status=status
    )


@login_required
def account(request: AuthenticatedRequest) -> HttpResponse:
    token = Token.objects.filter(user=request.user).first()
    teams = request.user.teams.select_related("competition").order_by("-competition__created_at")
    context = {
        "token": token,
        "teams": teams,
        "notification_preferences": preferences_table(user=request.user),
    }
    return render(request, "account/account.html", context)


@login_required
@require_POST
@throttle(AUTH)
def token_create(request: AuthenticatedRequest) -> HttpResponse:
    # A new token replaces the old one, which stops working at once.
    Token.objects.filter(user=request.user).delete()
    Token.objects.create(user=request.user)
    messages.success(request, "A new API token was created; the old one no longer works.")
    return redirect("account")


@login_required
@require_POST
def token_revoke(request: AuthenticatedRequest) -> HttpResponse:
    Token.objects.filter(user=request.user).delete()
    messages.success(request, "Your API token was revoked.")
    return redirect("account")
