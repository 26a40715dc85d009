"""Outbound webhooks: the endpoints a tenant registers and the log of every delivery to them.

A `Webhook` is a URL subscribed to some events, with a signing secret kept Fernet-encrypted.
Each event sent to an endpoint is one `WebhookDelivery`: its exact body (so every retry sends the
same bytes, and the receiver can use `delivery_id` as its idempotency key), where it stands
(pending → succeeded | failed), when it is tried next, and what each attempt got back.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.db import models
from django.utils import timezone

from tenants.tenancy import TenantOwnedModel


class WebhookEvent(models.TextChoices):
    SOURCE_INGESTED = "source.ingested", "A source finished ingesting"
    SOURCE_FAILED = "source.failed", "A source failed to ingest"
    CHAT_MESSAGE = "chat.message", "The bot answered a chat message"
    USAGE_THRESHOLD = "usage.threshold", "Model spend reached 80% or 100% of a monthly budget"
    CHAT_HANDOFF_REQUESTED = "chat.handoff_requested", "A visitor asked to talk to a person"


TEST_PING_EVENT = "test.ping"
SUBSCRIBABLE_EVENTS: tuple[str, ...] = tuple(WebhookEvent.values)


class Webhook(TenantOwnedModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    url = models.URLField(max_length=2048)
    events = models.JSONField(default=list, help_text="Event names this endpoint receives.")
    description = models.TextField(blank=True, default="")
    is_active = models.BooleanField(default=True)
    # Fernet ciphertext of the signing secret (shown to the tenant once, at creation or rotation).
    secret_ciphertext = models.TextField(editable=False)

    # Health: a run of failed attempts with no success in between, and why the endpoint stopped.
    failure_streak = models.PositiveIntegerField(default=0, editable=False)
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_reason = models.TextField(blank=True, default="", editable=False)
    disabled_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_success_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_failure_at = models.DateTimeField(null=True, blank=True, editable=False)

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "is_active"])]

    def __str__(self) -> str:
        return self.url

    def receives(self, event: str) -> bool:
        return event in self.events


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"  # waiting for its next attempt
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"  # gave up: attempts used up, 410 Gone, or the endpoint was disabled


class WebhookDelivery(TenantOwnedModel):
    """One event sent to one endpoint, with every attempt's outcome. Its id is the payload's
    `delivery_id`, the receiver's idempotency key (delivery is at least once)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=50)
    # The exact JSON sent (and signed) on every attempt; `payload` is its parsed form.
    body = models.TextField(editable=False)

    state = models.CharField(max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempt_count = models.PositiveSmallIntegerField(default=0)
    # Attempts since the delivery was last queued by hand: the retry budget and backoff count these.
    series_attempts = models.PositiveSmallIntegerField(default=0, editable=False)
    # When the next attempt is due (null once final). A worker moves it ahead while it sends, so a
    # second worker handed the same delivery leaves it alone.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # When a task was last sent to the queue for this delivery: the sweeper resends only when the
    # message seems lost, not on every tick.
    dispatched_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    last_response_body = models.TextField(blank=True, default="")  # truncated
    last_error = models.TextField(blank=True, default="")
    # Every attempt: [{"attempt", "at", "status_code", "latency_ms", "error", "trigger"}], oldest first.
    attempts = models.JSONField(default=list, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(fields=["tenant", "webhook", "-created_at"]),
            models.Index(fields=["state", "next_attempt_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.webhook_id}"

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)
