"""Sending deliveries: one signed POST per attempt, the outcome recorded, the next attempt scheduled.

Everything here runs in a worker (Celery, or the embedded mode's threads), never in a request or
an ingestion, except the synchronous test ping. The schedule lives in the database: a failed
attempt sets `next_attempt_at`, and the periodic sweeper (`send_due_deliveries`, every 10 s)
queues whatever is due, so retries survive restarts and long delays never sit in the broker.

Delivery is at least once. A worker claims an attempt by moving `next_attempt_at` past the time the
attempt can take (a conditional update), so a duplicated queue message finds nothing to do; a
worker that dies mid-attempt lets the claim lapse and the sweeper sends the delivery again.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from minirag.crypto import DecryptionError, decrypt_text
from minirag.safe_http import FetchError, fetch
from minirag.safe_http.responses import retry_after_seconds, status_phrase
from minirag.task_queue import QueueUnavailableError, dispatch
from tenants.tenancy import tenant_scope, tenant_scope_disabled
from webhooks.models import DeliveryState, Webhook, WebhookDelivery
from webhooks.signing import DELIVERY_HEADER, EVENT_HEADER, signature_headers

logger = logging.getLogger(__name__)

USER_AGENT = "MiniRAG-Webhooks/1.0"
RESPONSE_MAX_BYTES = 64 * 1024  # read at most this much of a receiver's answer...
RESPONSE_KEPT_CHARS = 1024  # ...and keep this much of it in the log
ATTEMPTS_KEPT = 50  # per delivery, in `attempts`
CLAIM_MARGIN_SECONDS = 60  # a claim outlives the attempt's timeout by this much
REDISPATCH_AFTER_SECONDS = 120  # a queued attempt not started by then is presumed lost
SWEEP_BATCH = 500
RETRY_AFTER_CAP_SECONDS = 3600
UNREADABLE_SECRET = (
    "Not sent: the signing secret cannot be decrypted with the configured MINIRAG_ENCRYPTION_KEYS "
    "(a key was removed too early). Rotate the webhook's secret."
)


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None
    latency_ms: int
    response_body: str = ""
    error: str = ""
    retry_after: float | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        return self.status_code == 410


def post_signed(*, webhook: Webhook, delivery: WebhookDelivery, timeout: float) -> AttemptResult:
    """POST the delivery's body to its endpoint through the SSRF guard (which resolves and checks
    the address again, so a DNS change since the URL was saved gets nowhere), signed now.
    Redirects are not followed: a receiver that moved must be updated by its owner."""
    body = delivery.body.encode()
    try:
        secret = decrypt_text(webhook.secret_ciphertext)
    except DecryptionError:
        return AttemptResult(None, 0, error=UNREADABLE_SECRET)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_HEADER: delivery.event,
        DELIVERY_HEADER: str(delivery.pk),
        **signature_headers(secret, body),
    }
    started = time.monotonic()
    try:
        response = fetch(
            webhook.url,
            method="POST",
            content=body,
            headers=headers,
            timeout=timeout,
            max_bytes=RESPONSE_MAX_BYTES,
            follow_redirects=False,
            raise_for_status=False,
        )
    except FetchError as exc:
        return AttemptResult(None, _elapsed_ms(started), error=exc.message)
    text = response.content[: RESPONSE_KEPT_CHARS * 4].decode("utf-8", "replace")[:RESPONSE_KEPT_CHARS]
    status = response.status_code
    if 200 <= status < 300:
        return AttemptResult(status, response.elapsed_ms, text)
    error = f"The receiver answered {status} {status_phrase(status)}."
    if 300 <= status < 400:
        error += " Redirects are not followed; update the webhook's URL."
    return AttemptResult(
        status, response.elapsed_ms, text, error, retry_after_seconds(response.headers.get("retry-after"))
    )


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def retry_delay(series_attempts: int, retry_after: float | None = None) -> float:
    """Seconds before the next attempt after `series_attempts` failed ones: RETRY_BASE * 3^(n-1)
    ±25% (30 s, 1½ min, 4½ min, … ≈ 6 h before the 8th), or the receiver's Retry-After if longer."""
    base = settings.WEBHOOK_RETRY_BASE_SECONDS * 3 ** max(0, series_attempts - 1)
    delay = base * random.uniform(0.75, 1.25)  # noqa: S311 - jitter, not security
    if retry_after is not None:
        delay = max(delay, min(retry_after, RETRY_AFTER_CAP_SECONDS))
    return delay


# --- One attempt ------------------------------------------------------------------------------


def attempt_delivery(*, delivery_id: Any) -> AttemptResult | None:
    """Claim the delivery if an attempt is due, send it and record the outcome; None when there
    was nothing to do (already sent, not due yet, or claimed by another worker)."""
    now = timezone.now()
    claim_until = now + timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS + CLAIM_MARGIN_SECONDS)
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, state=DeliveryState.PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=claim_until)
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("webhook").get(pk=delivery_id)
    webhook = delivery.webhook
    if not webhook.is_active:
        _finalize_unsent(delivery, f"Not sent: the endpoint is disabled. {webhook.disabled_reason}".strip())
        return None
    result = post_signed(webhook=webhook, delivery=delivery, timeout=settings.WEBHOOK_TIMEOUT_SECONDS)
    record_attempt(delivery, result, trigger="scheduled")
    return result


def _attempt_entry(delivery: WebhookDelivery, result: AttemptResult, trigger: str, at: datetime) -> dict[str, Any]:
    return {
        "attempt": delivery.attempt_count,
        "at": at.isoformat().replace("+00:00", "Z"),
        "status_code": result.status_code,
        "latency_ms": result.latency_ms,
        "error": result.error,
        "trigger": trigger,
    }


_ATTEMPT_FIELDS = (
    "attempt_count",
    "series_attempts",
    "attempts",
    "last_status_code",
    "last_latency_ms",
    "last_response_body",
    "last_error",
    "state",
    "delivered_at",
    "next_attempt_at",
    "updated_at",
)


@transaction.atomic
def record_attempt(delivery: WebhookDelivery, result: AttemptResult, *, trigger: str) -> None:
    """Write an attempt's outcome to the delivery and to its endpoint's health. `trigger` is
    "scheduled" (retried on failure while the budget lasts) or "test" (one attempt, no effect on
    the endpoint's health)."""
    now = timezone.now()
    delivery.attempt_count += 1
    delivery.series_attempts += 1
    delivery.attempts = [*delivery.attempts, _attempt_entry(delivery, result, trigger, now)][-ATTEMPTS_KEPT:]
    delivery.last_status_code = result.status_code
    delivery.last_latency_ms = result.latency_ms
    delivery.last_response_body = result.response_body
    delivery.last_error = result.error
    webhook = delivery.webhook
    if result.succeeded:
        delivery.state, delivery.delivered_at, delivery.next_attempt_at = DeliveryState.SUCCEEDED, now, None
    elif trigger == "test" or result.gone or delivery.series_attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        delivery.state, delivery.next_attempt_at = DeliveryState.FAILED, None
    else:
        delivery.next_attempt_at = now + timedelta(seconds=retry_delay(delivery.series_attempts, result.retry_after))
    delivery.updated_at = now
    # An update, not save(): if the endpoint was deleted during the attempt, nothing comes back to life.
    written = WebhookDelivery.objects.filter(pk=delivery.pk).update(
        **{name: getattr(delivery, name) for name in _ATTEMPT_FIELDS}
    )
    if not written or trigger == "test":
        return
    if result.succeeded:
        Webhook.objects.filter(pk=webhook.pk).update(
            failure_streak=0, failing_since=None, last_success_at=now, updated_at=now
        )
    elif result.gone:
        disable_webhook(webhook, "The receiver answered 410 Gone, which asks MiniRAG to stop sending.")
    else:
        _count_failure(webhook, now)


def _count_failure(webhook: Webhook, now: datetime) -> None:
    Webhook.objects.filter(pk=webhook.pk).update(
        failure_streak=F("failure_streak") + 1,
        failing_since=Coalesce("failing_since", now),
        last_failure_at=now,
        updated_at=now,
    )
    webhook.refresh_from_db(fields=["failure_streak", "failing_since", "is_active"])
    span = now - (webhook.failing_since or now)
    if (
        webhook.is_active
        and webhook.failure_streak >= settings.WEBHOOK_DISABLE_AFTER_FAILURES
        and span >= timedelta(seconds=settings.WEBHOOK_DISABLE_AFTER_SECONDS)
    ):
        hours = span.total_seconds() / 3600
        disable_webhook(
            webhook,
            f"Disabled automatically after {webhook.failure_streak} failed attempts in a row over "
            f"{hours:.1f} hours. Fix the receiver, then set is_active back to true.",
        )


def disable_webhook(webhook: Webhook, reason: str) -> bool:
    """Stop sending to an endpoint: it is marked inactive with the reason, and its pending
    deliveries fail (they can be redelivered once it is enabled again). False if it already was."""
    now = timezone.now()
    with transaction.atomic():
        changed = Webhook.objects.filter(pk=webhook.pk, is_active=True).update(
            is_active=False, disabled_reason=reason, disabled_at=now, updated_at=now
        )
        if changed:
            WebhookDelivery.objects.filter(webhook_id=webhook.pk, state=DeliveryState.PENDING).update(
                state=DeliveryState.FAILED,
                next_attempt_at=None,
                last_error=f"Not sent: the endpoint was disabled. {reason}",
                updated_at=now,
            )
    if changed:
        webhook.is_active, webhook.disabled_reason, webhook.disabled_at = False, reason, now
        logger.info("Webhook %s disabled: %s", webhook.pk, reason)
    return bool(changed)


def _finalize_unsent(delivery: WebhookDelivery, reason: str) -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk, state=DeliveryState.PENDING).update(
        state=DeliveryState.FAILED, next_attempt_at=None, last_error=reason, updated_at=timezone.now()
    )


# --- The sweeper ------------------------------------------------------------------------------


def send_due_deliveries(now: datetime | None = None) -> int:
    """Queue an attempt for every pending delivery that is due and not already queued (or whose
    queued attempt seems lost). Returns how many were queued."""
    from webhooks.tasks import deliver_webhook

    now = now or timezone.now()
    lost = now - timedelta(seconds=REDISPATCH_AFTER_SECONDS)
    with tenant_scope_disabled("webhook sweeper: finds due deliveries of every tenant"):
        due = list(
            WebhookDelivery.objects.filter(state=DeliveryState.PENDING, next_attempt_at__lte=now)
            .filter(
                Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=F("next_attempt_at")) | Q(dispatched_at__lt=lost)
            )
            .order_by("next_attempt_at")
            .values_list("pk", "tenant_id", "dispatched_at")[:SWEEP_BATCH]
        )
    queued = 0
    for delivery_id, tenant_id, dispatched_at in due:
        with tenant_scope(tenant_id):
            # Conditional on what was read, so two sweepers never queue the same attempt twice.
            marked = WebhookDelivery.objects.filter(pk=delivery_id, dispatched_at=dispatched_at).update(
                dispatched_at=now
            )
        if not marked:
            continue
        try:
            dispatch(deliver_webhook, tenant_id=str(tenant_id), delivery_id=str(delivery_id))
            queued += 1
        except QueueUnavailableError:
            logger.warning("Webhook sweeper could not queue delivery %s; it will try again.", delivery_id)
            return queued
    return queued
