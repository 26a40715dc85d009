"""Writes of the webhooks app: endpoints and their secrets, events turned into deliveries, manual
redelivery and the synchronous test ping. Sending itself lives in webhooks/delivery.py."""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from minirag.crypto import encrypt_text
from minirag.errors import ConflictError, InvalidInputError, NotFoundError
from minirag.safe_http.validation import validated_public_url
from minirag.task_queue import enqueue_on_commit
from tenants.models import Tenant
from webhooks import delivery as sending
from webhooks.models import SUBSCRIBABLE_EVENTS, TEST_PING_EVENT, DeliveryState, Webhook, WebhookDelivery

MAX_WEBHOOKS_PER_TENANT = 25
SECRET_MIN_LENGTH = 16
SECRET_MAX_LENGTH = 256
GENERATED_SECRET_PREFIX = "whsec_"


def generate_secret() -> str:
    return GENERATED_SECRET_PREFIX + secrets.token_urlsafe(32)


def _validated_events(events: Any) -> list[str]:
    valid = ", ".join(SUBSCRIBABLE_EVENTS)
    if not isinstance(events, list) or not events or not all(isinstance(event, str) for event in events):
        raise InvalidInputError.for_field("events", f"Give a non-empty list of events. Valid events: {valid}.")
    unknown = sorted({event for event in events if event not in SUBSCRIBABLE_EVENTS})
    if unknown:
        raise InvalidInputError.for_field("events", f"Unknown event(s): {', '.join(unknown)}. Valid events: {valid}.")
    return list(dict.fromkeys(events))


def _validated_secret(secret: Any) -> str:
    if secret is None or secret == "":
        return generate_secret()
    if not isinstance(secret, str) or not SECRET_MIN_LENGTH <= len(secret) <= SECRET_MAX_LENGTH:
        raise InvalidInputError.for_field(
            "secret",
            f"Must be {SECRET_MIN_LENGTH} to {SECRET_MAX_LENGTH} characters; leave it out to get a strong one.",
        )
    if secret != secret.strip() or not secret.isprintable():
        raise InvalidInputError.for_field("secret", "Must not contain spaces at either end or control characters.")
    return secret


# --- Endpoints --------------------------------------------------------------------------------


@transaction.atomic
def webhook_create(
    *, tenant: Tenant, url: str, events: list[str], description: str = "", secret: str | None = None
) -> tuple[Webhook, str]:
    """Register an endpoint. Returns it with its signing secret, which is shown only this once."""
    if Webhook.objects.filter(tenant=tenant).count() >= MAX_WEBHOOKS_PER_TENANT:
        raise InvalidInputError(f"A tenant can have at most {MAX_WEBHOOKS_PER_TENANT} webhooks; delete one first.")
    raw_secret = _validated_secret(secret)
    webhook = Webhook(
        tenant=tenant,
        url=validated_public_url(url, "url"),
        events=_validated_events(events),
        description=description.strip(),
        secret_ciphertext=encrypt_text(raw_secret),
    )
    webhook.full_clean()
    webhook.save()
    return webhook, raw_secret


@transaction.atomic
def webhook_update(
    *,
    tenant: Tenant,
    webhook: Webhook,
    url: str | None = None,
    events: list[str] | None = None,
    description: str | None = None,
    is_active: bool | None = None,
) -> Webhook:
    """Change an endpoint. Enabling it again clears the failure streak and the reason it stopped;
    disabling it fails its pending deliveries (they can be redelivered later)."""
    if webhook.tenant_id != tenant.pk:
        raise NotFoundError("Webhook not found.")
    if url is not None:
        webhook.url = validated_public_url(url, "url")
    if events is not None:
        webhook.events = _validated_events(events)
    if description is not None:
        webhook.description = description.strip()
    if is_active is True and not webhook.is_active:
        webhook.is_active = True
        webhook.failure_streak, webhook.failing_since = 0, None
        webhook.disabled_reason, webhook.disabled_at = "", None
    webhook.full_clean()
    webhook.save()
    if is_active is False:
        sending.disable_webhook(webhook, "Disabled through the API.")
    return webhook


@transaction.atomic
def webhook_delete(*, tenant: Tenant, webhook: Webhook) -> None:
    """Remove an endpoint and its delivery log; attempts already queued find nothing to send."""
    if webhook.tenant_id != tenant.pk:
        raise NotFoundError("Webhook not found.")
    webhook.delete()


@transaction.atomic
def webhook_rotate_secret(*, tenant: Tenant, webhook: Webhook, secret: str | None = None) -> tuple[Webhook, str]:
    """Replace the signing secret (generated unless given) and return the new one, shown once.
    Attempts from now on are signed with it, retries of older deliveries included."""
    if webhook.tenant_id != tenant.pk:
        raise NotFoundError("Webhook not found.")
    raw_secret = _validated_secret(secret)
    webhook.secret_ciphertext = encrypt_text(raw_secret)
    webhook.save(update_fields=["secret_ciphertext", "updated_at"])
    return webhook, raw_secret


# --- Events -----------------------------------------------------------------------------------


def _timestamp() -> str:
    return timezone.now().isoformat().replace("+00:00", "Z")


def _new_delivery(webhook: Webhook, event: str, fields: dict[str, Any]) -> WebhookDelivery:
    delivery_id = uuid.uuid4()
    payload = {
        "event": event,
        "delivery_id": str(delivery_id),
        "created_at": _timestamp(),
        "tenant_id": str(webhook.tenant_id),
        **fields,
    }
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, cls=DjangoJSONEncoder)
    now = timezone.now()
    return WebhookDelivery(
        id=delivery_id,
        tenant_id=webhook.tenant_id,
        webhook=webhook,
        event=event,
        body=body,
        next_attempt_at=now,
        dispatched_at=now,
        created_at=now,
    )


def webhook_event_emit(*, tenant_id: uuid.UUID, event: str, fields: dict[str, Any]) -> list[WebhookDelivery]:
    """Record `event` for every active endpoint of the tenant subscribed to it and queue their
    first attempts for when the surrounding transaction commits (so an event whose cause is rolled
    back is never sent, and nothing is sent from inside a request or an ingestion)."""
    from webhooks.tasks import deliver_webhook

    assert event in SUBSCRIBABLE_EVENTS, event
    # Unordered: every chat turn of a tenant with webhooks runs this, and the order is of no use.
    active = Webhook.objects.filter(tenant_id=tenant_id, is_active=True).order_by()
    endpoints = [hook for hook in active if hook.receives(event)]
    if not endpoints:
        return []
    deliveries = WebhookDelivery.objects.bulk_create([_new_delivery(hook, event, fields) for hook in endpoints])
    for delivery in deliveries:
        enqueue_on_commit(deliver_webhook, tenant_id=str(tenant_id), delivery_id=str(delivery.pk))
    return deliveries


def delivery_redeliver(*, tenant: Tenant, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again, with the same body and `delivery_id`: a finished one starts a fresh
    series of attempts (with retries), a pending one is sent now instead of at its scheduled time."""
    from webhooks.tasks import deliver_webhook

    if delivery.tenant_id != tenant.pk:
        raise NotFoundError("Delivery not found.")
    if delivery.event == TEST_PING_EVENT:
        raise ConflictError("Test pings are not redelivered; send a new one with POST /v1/webhooks/{id}/test.")
    if not delivery.webhook.is_active:
        raise ConflictError("The webhook is disabled; enable it (PATCH is_active=true) before redelivering.")
    now = timezone.now()
    with transaction.atomic():
        fields: dict[str, Any] = {"next_attempt_at": now, "dispatched_at": now, "updated_at": now}
        if delivery.state != DeliveryState.PENDING:
            fields.update(state=DeliveryState.PENDING, series_attempts=0, delivered_at=None)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
        enqueue_on_commit(deliver_webhook, tenant_id=str(tenant.pk), delivery_id=str(delivery.pk))
    delivery.refresh_from_db()
    return delivery


# --- The test ping ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TestPingResult:
    delivery: WebhookDelivery
    result: sending.AttemptResult


def webhook_send_test(*, tenant: Tenant, webhook: Webhook) -> TestPingResult:
    """Send a signed `test.ping` now and wait for the answer (at most WEBHOOK_TEST_TIMEOUT_SECONDS).
    It is logged like any delivery but never retried and never counts against the endpoint's
    health; it works on a disabled endpoint too, to check it before enabling it again."""
    if webhook.tenant_id != tenant.pk:
        raise NotFoundError("Webhook not found.")
    delivery = _new_delivery(webhook, TEST_PING_EVENT, {"webhook_id": str(webhook.pk)})
    delivery.next_attempt_at = None
    delivery.save(force_insert=True)
    result = sending.post_signed(webhook=webhook, delivery=delivery, timeout=settings.WEBHOOK_TEST_TIMEOUT_SECONDS)
    sending.record_attempt(delivery, result, trigger="test")
    delivery.refresh_from_db()
    return TestPingResult(delivery, result)
