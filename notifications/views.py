"""The notifications page (where the bell leads), marking read, and the choices' form.

Every view acts on the signed-in user's own notifications only: another user's id is a 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from notifications.forms import PreferencesForm
from notifications.models import Notification
from notifications.selectors import notifications_for
from notifications.services import notifications_mark_read, preferences_set

PER_PAGE = 25


class AuthenticatedRequest(HttpRequest):
    """The request of a view behind login_required: its user is a User."""

    user: User


@login_required
@require_GET
def notifications_page(request: AuthenticatedRequest) -> HttpResponse:
    page = Paginator(notifications_for(user=request.user), PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(request, "notifications/list.html", {"page_obj": page})


@login_required
@require_POST
def notifications_read_all(request: AuthenticatedRequest) -> HttpResponse:
    changed = notifications_mark_read(user=request.user)
    messages.success(request, f"Marked {changed} notification{'s' if changed != 1 else ''} read.")
    return redirect("notifications")


@login_required
@require_POST
def notification_open(request: AuthenticatedRequest, notification_id: int) -> HttpResponse:
    """Mark one notification read and go where it points."""
    found = Notification.objects.filter(pk=notification_id, user=request.user).first()
    if found is None:
        raise Http404("No such notification.")
    notifications_mark_read(user=request.user, notification_id=found.pk)
    if found.url and url_has_allowed_host_and_scheme(found.url, {request.get_host()}):
        return redirect(found.url)
    return redirect("notifications")


@login_required
@require_POST
def preferences(request: AuthenticatedRequest) -> HttpResponse:
    form = PreferencesForm(request.POST)
    if form.is_valid():
        preferences_set(user=request.user, choices=form.choices())
        messages.success(request, "Your notification choices are saved.")
    return redirect("/account/#notifications")
