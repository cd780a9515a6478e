"""Webhooks: a user's signed endpoints for events (docs/api.md#webhooks). Every hook and
delivery is its owner's alone: anyone else gets 404."""

from __future__ import annotations

import json

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from competitions.api.pagination import PAGE_PARAMETERS, page_of
from competitions.models import Webhook, WebhookDelivery
from competitions.permissions import signed_in
from competitions.selectors_webhooks import (
    access_webhook,
    delivery_list,
    webhook_competition,
    webhook_list_for_user,
)
from competitions.services.webhooks import (
    webhook_create,
    webhook_delete,
    webhook_ping,
    webhook_update,
)


class WebhookOutput(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.SerializerMethodField(help_text="This hook in the API")
    endpoint = serializers.URLField(source="url", help_text="Where deliveries are POSTed")
    competition = serializers.CharField(
        source="competition.slug", default=None, help_text="null: all my competitions"
    )
    events = serializers.ListField(child=serializers.CharField())
    active = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    deliveries_url = serializers.SerializerMethodField()

    def get_url(self, hook: Webhook) -> str:
        return reverse("api:webhook-detail", args=[hook.pk], request=self.context["request"])

    def get_deliveries_url(self, hook: Webhook) -> str:
        return reverse("api:webhook-deliveries", args=[hook.pk], request=self.context["request"])


class WebhookCreatedOutput(WebhookOutput):
    secret = serializers.CharField(help_text="Shown this once: keep it to verify signatures")


class DeliveryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    event = serializers.CharField()
    event_id = serializers.CharField()
    status = serializers.CharField()
    attempts = serializers.IntegerField()
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    next_try_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    payload = serializers.SerializerMethodField()

    def get_payload(self, delivery: WebhookDelivery) -> dict:
        return json.loads(delivery.body)


class WebhookPageOutput(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = WebhookOutput(many=True)


class DeliveryPageOutput(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = DeliveryOutput(many=True)


class WebhookCreateInput(serializers.Serializer):
    url = serializers.URLField(max_length=500, help_text="http:// or https://")
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=Webhook.Event.values), allow_empty=False
    )
    competition = serializers.SlugField(
        required=False, allow_null=True, help_text="A competition's slug; omitted: all of mine"
    )


class WebhookUpdateInput(serializers.Serializer):
    active = serializers.BooleanField()


class WebhookListCreateApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="webhooks_list", parameters=PAGE_PARAMETERS, responses=WebhookPageOutput
    )
    def get(self, request: Request) -> Response:
        """Newest first, paged like every list (a user has at most 20 hooks: one page)."""
        hooks = webhook_list_for_user(user=signed_in(request.user))
        rows, envelope = page_of(request, hooks, default_size=50, max_size=200)
        body = envelope | {"results": rows}
        return Response(WebhookPageOutput(body, context={"request": request}).data)

    @extend_schema(request=WebhookCreateInput, responses={201: WebhookCreatedOutput})
    def post(self, request: Request) -> Response:
        data = WebhookCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        slug = data.validated_data.get("competition")
        competition = webhook_competition(request.user, slug) if slug else None
        hook, secret = webhook_create(
            owner=signed_in(request.user),
            url=data.validated_data["url"],
            events=data.validated_data["events"],
            competition=competition,
        )
        hook.secret = secret
        body = WebhookCreatedOutput(hook, context={"request": request}).data
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": body["url"]})


class WebhookDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=WebhookOutput)
    def get(self, request: Request, webhook_id: int) -> Response:
        hook = access_webhook(request.user, webhook_id)
        return Response(WebhookOutput(hook, context={"request": request}).data)

    @extend_schema(request=WebhookUpdateInput, responses=WebhookOutput)
    def patch(self, request: Request, webhook_id: int) -> Response:
        hook = access_webhook(request.user, webhook_id)
        data = WebhookUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        hook = webhook_update(webhook=hook, active=data.validated_data["active"])
        return Response(WebhookOutput(hook, context={"request": request}).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, webhook_id: int) -> Response:
        webhook_delete(webhook=access_webhook(request.user, webhook_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveryListApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="webhooks_deliveries_list",
        parameters=PAGE_PARAMETERS,
        responses=DeliveryPageOutput,
    )
    def get(self, request: Request, webhook_id: int) -> Response:
        """Newest first, a page at a time: each delivery's status, attempts and last answer."""
        hook = access_webhook(request.user, webhook_id)
        rows, envelope = page_of(
            request, delivery_list(webhook=hook), default_size=50, max_size=200
        )
        return Response(DeliveryPageOutput(envelope | {"results": rows}).data)


class WebhookPingApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={202: DeliveryOutput})
    def post(self, request: Request, webhook_id: int) -> Response:
        """Send a test delivery (event "ping") to the hook."""
        delivery = webhook_ping(webhook=access_webhook(request.user, webhook_id))
        return Response(DeliveryOutput(delivery).data, status=status.HTTP_202_ACCEPTED)
