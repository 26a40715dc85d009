"""HTTP API for webhooks: endpoints, their secrets, the test ping and the delivery log.
Owners and admins only: an endpoint receives the tenant's conversations."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from minirag.openapi import ERROR_RESPONSES
from tenants.api import TenantViewSet
from tenants.models import Role
from webhooks import selectors, services
from webhooks.models import Webhook
from webhooks.serializers import (
    DeliveryFilterSerializer,
    WebhookCreateInputSerializer,
    WebhookDeliverySerializer,
    WebhookRotateSecretInputSerializer,
    WebhookSerializer,
    WebhookTestResultSerializer,
    WebhookUpdateInputSerializer,
    WebhookWithSecretSerializer,
)

DELIVERY_ID = OpenApiParameter("delivery_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


class WebhookViewSet(TenantViewSet):
    serializer_class = WebhookSerializer
    input_serializer_classes = {
        "create": WebhookCreateInputSerializer,
        "partial_update": WebhookUpdateInputSerializer,
        "rotate_secret": WebhookRotateSecretInputSerializer,
    }
    queryset = Webhook.objects.all()  # for the schema's model; requests use get_queryset()
    # Reads too: URLs and delivery payloads (which hold conversations) are not for every member.
    minimum_roles = dict.fromkeys(("list", "retrieve", "deliveries", "delivery_detail"), Role.ADMIN)

    def get_queryset(self) -> Any:
        return selectors.webhook_list(tenant=self.tenant)

    def get_object(self) -> Any:
        return selectors.webhook_get(tenant=self.tenant, webhook_id=self.kwargs["pk"])

    def _with_secret(self, webhook: Webhook, secret: str) -> dict[str, Any]:
        webhook.secret = secret  # type: ignore[attr-defined]
        return WebhookWithSecretSerializer(webhook).data

    @extend_schema(responses={200: WebhookSerializer(many=True), **ERROR_RESPONSES})
    def list(self, request: Request) -> Response:
        return self.paginated(self.get_queryset())

    @extend_schema(responses={200: WebhookSerializer, **ERROR_RESPONSES})
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(WebhookSerializer(self.get_object()).data)

    @extend_schema(
        request=WebhookCreateInputSerializer, responses={201: WebhookWithSecretSerializer, **ERROR_RESPONSES}
    )
    def create(self, request: Request) -> Response:
        webhook, secret = services.webhook_create(tenant=self.tenant, **self.validated_input())
        return Response(self._with_secret(webhook, secret), status=status.HTTP_201_CREATED)

    @extend_schema(request=WebhookUpdateInputSerializer, responses={200: WebhookSerializer, **ERROR_RESPONSES})
    def partial_update(self, request: Request, pk: str) -> Response:
        webhook = self.get_object()
        webhook = services.webhook_update(tenant=self.tenant, webhook=webhook, **self.validated_input())
        return Response(WebhookSerializer(webhook).data)

    @extend_schema(responses={204: OpenApiResponse(description="Deleted, with its delivery log."), **ERROR_RESPONSES})
    def destroy(self, request: Request, pk: str) -> Response:
        services.webhook_delete(tenant=self.tenant, webhook=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: WebhookTestResultSerializer, **ERROR_RESPONSES})
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str) -> Response:
        """Send a signed `test.ping` now and report what the receiver answered."""
        ping = services.webhook_send_test(tenant=self.tenant, webhook=self.get_object())
        result = ping.result
        return Response(
            {
                "success": result.succeeded,
                "status_code": result.status_code,
                "latency_ms": result.latency_ms,
                "error": result.error,
                "delivery_id": str(ping.delivery.pk),
            }
        )

    @extend_schema(
        request=WebhookRotateSecretInputSerializer, responses={200: WebhookWithSecretSerializer, **ERROR_RESPONSES}
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret", url_name="rotate-secret")
    def rotate_secret(self, request: Request, pk: str) -> Response:
        """Replace the signing secret; the new one is in the answer, shown once."""
        webhook = self.get_object()
        secret = self.validated_input().get("secret")
        webhook, raw_secret = services.webhook_rotate_secret(tenant=self.tenant, webhook=webhook, secret=secret)
        return Response(self._with_secret(webhook, raw_secret))

    @extend_schema(
        parameters=[DeliveryFilterSerializer], responses={200: WebhookDeliverySerializer(many=True), **ERROR_RESPONSES}
    )
    @action(detail=True, methods=["get"])
    def deliveries(self, request: Request, pk: str) -> Response:
        """The delivery log, newest first: every event sent to this endpoint and each attempt's outcome."""
        filters = DeliveryFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        deliveries = selectors.delivery_list(tenant=self.tenant, webhook=self.get_object(), **filters.validated_data)
        return self.paginated(deliveries, WebhookDeliverySerializer)

    @extend_schema(parameters=[DELIVERY_ID], responses={200: WebhookDeliverySerializer, **ERROR_RESPONSES})
    @action(detail=True, methods=["get"], url_path="deliveries/(?P<delivery_id>[^/]+)", url_name="delivery-detail")
    def delivery_detail(self, request: Request, pk: str, delivery_id: str) -> Response:
        delivery = selectors.delivery_get(tenant=self.tenant, webhook=self.get_object(), delivery_id=delivery_id)
        return Response(WebhookDeliverySerializer(delivery).data)

    @extend_schema(
        request=None, parameters=[DELIVERY_ID], responses={202: WebhookDeliverySerializer, **ERROR_RESPONSES}
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="deliveries/(?P<delivery_id>[^/]+)/redeliver",
        url_name="delivery-redeliver",
    )
    def redeliver(self, request: Request, pk: str, delivery_id: str) -> Response:
        """Queue the delivery again, same body and `delivery_id` (the receiver's idempotency key)."""
        delivery = selectors.delivery_get(tenant=self.tenant, webhook=self.get_object(), delivery_id=delivery_id)
        delivery = services.delivery_redeliver(tenant=self.tenant, delivery=delivery)
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
