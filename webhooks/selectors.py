"""Reads of the webhooks app. The explicit tenant filter lives here."""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, QuerySet

from minirag.lookups import get_by_id_or_404
from tenants.models import Tenant
from webhooks.models import Webhook, WebhookDelivery


def webhook_list(*, tenant: Tenant) -> QuerySet[Webhook]:
    return Webhook.objects.filter(tenant=tenant).order_by("-created_at")


def has_active_webhooks() -> Exists:
    """An annotation: whether the row's tenant has an enabled webhook. A chat turn reads it with
    its first statement, so a tenant without webhooks makes no statement for them when the answer
    is stored (chat/services.py)."""
    return Exists(Webhook.all_tenants.filter(tenant_id=OuterRef("tenant_id"), is_active=True))


def webhook_get(*, tenant: Tenant, webhook_id: Any) -> Webhook:
    return get_by_id_or_404(webhook_list(tenant=tenant), webhook_id, label="Webhook")


def delivery_list(
    *, tenant: Tenant, webhook: Webhook, state: str | None = None, event: str | None = None
) -> QuerySet[WebhookDelivery]:
    """A webhook's deliveries, newest first, optionally of one state and/or event."""
    deliveries = WebhookDelivery.objects.filter(tenant=tenant, webhook=webhook).order_by("-created_at")
    if state:
        deliveries = deliveries.filter(state=state)
    if event:
        deliveries = deliveries.filter(event=event)
    return deliveries


def delivery_get(*, tenant: Tenant, webhook: Webhook, delivery_id: Any) -> WebhookDelivery:
    return get_by_id_or_404(
        delivery_list(tenant=tenant, webhook=webhook).select_related("webhook"), delivery_id, label="Delivery"
    )
