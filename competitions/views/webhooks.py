"""The account's webhooks page: register, pause, ping and remove hooks, and read each one's
recent deliveries. The same services as the API (docs/api.md#webhooks)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from competitions.errors import ApplicationError
from competitions.models import Competition, Webhook
from competitions.permissions import NotFound
from competitions.selectors_webhooks import access_webhook, webhook_list_for_user
from competitions.services.webhooks import (
    webhook_create,
    webhook_delete,
    webhook_ping,
    webhook_update,
)
from competitions.views.common import AuthenticatedRequest

RECENT = 10


class WebhookForm(forms.Form):
    url = forms.URLField(label="Endpoint URL", max_length=500, assume_scheme="https")
    events = forms.MultipleChoiceField(
        choices=Webhook.Event.choices, widget=forms.CheckboxSelectMultiple
    )
    competition = forms.ModelChoiceField(
        queryset=Competition.objects.none(), required=False, empty_label="All my competitions"
    )

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        mine = Competition.objects.filter(teams__members=user) | Competition.objects.filter(
            organizers=user
        )
        field = self.fields["competition"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = mine.distinct().order_by("title")


@login_required
def webhooks_page(request: AuthenticatedRequest) -> HttpResponse:
    form = WebhookForm(request.POST or None, user=request.user)
    secret = None
    if request.method == "POST" and form.is_valid():
        try:
            _, secret = webhook_create(
                owner=request.user,
                url=form.cleaned_data["url"],
                events=form.cleaned_data["events"],
                competition=form.cleaned_data["competition"],
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            form = WebhookForm(user=request.user)
    hooks = [
        (hook, list(hook.deliveries.order_by("-created_at", "-pk")[:RECENT]))
        for hook in webhook_list_for_user(user=request.user)
    ]
    status = 400 if request.method == "POST" and form.errors else 200
    context = {"form": form, "hooks": hooks, "secret": secret}
    return render(request, "account/webhooks.html", context, status=status)


def _own(request: AuthenticatedRequest, webhook_id: int) -> Webhook:
    try:
        return access_webhook(request.user, webhook_id)
    except NotFound as exc:
        raise Http404(str(exc)) from exc


@login_required
@require_POST
def webhook_action(request: AuthenticatedRequest, webhook_id: int, action: str) -> HttpResponse:
    hook = _own(request, webhook_id)
    if action == "ping":
        webhook_ping(webhook=hook)
        messages.success(request, "A ping is on its way; its delivery shows below.")
    elif action in ("pause", "resume"):
        webhook_update(webhook=hook, active=action == "resume")
        messages.success(request, f"The webhook is {'active' if hook.active else 'paused'}.")
    elif action == "delete":
        webhook_delete(webhook=hook)
        messages.success(request, "The webhook and its deliveries were removed.")
    else:
        raise Http404("No such action.")
    return redirect("webhooks")
