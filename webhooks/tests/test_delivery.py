"""Delivery to a real receiver on loopback: both signatures on every event, retries with backoff
when the receiver fails and recovers, disabling after 410 or a long run of failures, the SSRF
guard at send time, and the at-least-once bookkeeping (claims, lost messages)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from chat.tests.test_streaming import stream_turn
from conftest import LocalSite, TenantWorld
from minirag.safe_http import destinations
from sources.services import source_create, source_ingest_request
from tenants.tenancy import tenant_scope
from webhooks import delivery as sending
from webhooks.models import DeliveryState, Webhook, WebhookDelivery
from webhooks.services import webhook_event_emit
from webhooks.tests.conftest import Receiver, ask, assert_authentic, deliveries, fast_forward, register, reload

pytestmark = pytest.mark.django_db


def ingest_text(world: TenantWorld, content: str, name: str = "Returns policy") -> Any:
    with tenant_scope(world.tenant):
        source = source_create(
            tenant=world.tenant, bot_profile=world.bot, name=name, source_type="text", content=content
        )
        source_ingest_request(tenant=world.tenant, source=source)
        source.refresh_from_db()
    return source


def test_every_event_arrives_with_both_signatures(
    alpha: TenantWorld, receiver: Receiver, committed: Any, site: LocalSite
) -> None:
    webhook, secret = register(alpha, receiver.url())
    with committed():
        source = ingest_text(alpha, "Returns are accepted within thirty days of delivery with the receipt.")
    with committed():
        answer = alpha.client().post(
            "/v1/chat", {"bot_profile_id": str(alpha.bot.pk), "message": "When are returns accepted?"}, format="json"
        )
    with committed():
        _, events = stream_turn(alpha, "Are returns accepted with the receipt?")
    with committed(), tenant_scope(alpha.tenant):
        failed = source_create(
            tenant=alpha.tenant, bot_profile=alpha.bot, name="Gone page", source_type="url",
            config={"url": site.url("/moved-away")},
        )  # fmt: skip
        source_ingest_request(tenant=alpha.tenant, source=failed)  # the site answers 404
    assert alpha.client("admin").post(f"/v1/webhooks/{webhook.pk}/test").json()["success"]

    received = [assert_authentic(request, secret) for request in receiver.received]
    assert [payload["event"] for payload in received] == [
        "source.ingested", "chat.message", "chat.message", "source.failed", "test.ping",
    ]  # fmt: skip
    ingested, plain, streamed, failure, _ = received
    assert {k: ingested[k] for k in ("source_id", "source_name", "document_count", "chunk_count")} == {
        "source_id": str(source.pk), "source_name": "Returns policy", "document_count": 1, "chunk_count": 1,
    }  # fmt: skip
    assert ingested["tenant_id"] == str(alpha.tenant.pk) and ingested["bot_profile_id"] == str(alpha.bot.pk)
    body = answer.json()
    assert plain["chat_id"] == body["chat_id"] and plain["message_id"] == body["message"]["id"]
    assert plain["bot_profile_id"] == str(alpha.bot.pk) and plain["streamed"] is False
    assert plain["question"] == "When are returns accepted?" and plain["answer"] == body["message"]["content"]
    assert str(source.pk) in [cited["source_id"] for cited in plain["sources"]]
    done = dict(events)["done"]
    assert streamed["streamed"] is True and streamed["message_id"] == done["message_id"]
    assert streamed["answer"] == "".join(data["content"] for name, data in events if name == "delta")
    assert failure["source_id"] == str(failed.pk) and failure["error"] == reload(alpha, failed).error_message
    for payload in received:
        assert payload["created_at"].endswith("Z")
    assert len({payload["delivery_id"] for payload in received}) == len(received)
    assert {d.state for d in deliveries(alpha, webhook)} == {DeliveryState.SUCCEEDED}


def test_events_reach_only_subscribed_active_endpoints_of_their_own_tenant(
    alpha: TenantWorld, beta: TenantWorld, receiver: Receiver, committed: Any
) -> None:
    switched_off, _ = register(alpha, receiver.url("/alpha-off"))  # every event, but disabled below
    register(alpha, receiver.url("/alpha-chat"), events=["chat.message"])
    with tenant_scope(alpha.tenant):
        Webhook.objects.filter(pk=switched_off.pk).update(is_active=False)
    register(beta, receiver.url("/beta"))
    with committed():
        ingest_text(alpha, "Alpha ships every weekday before noon from the central warehouse.")
        ask(alpha, "Ships?")
    assert [(r.path, r.event) for r in receiver.received] == [("/alpha-chat", "chat.message")]


def test_an_event_whose_transaction_rolls_back_is_never_sent(alpha: TenantWorld, receiver: Receiver) -> None:
    webhook, _ = register(alpha, receiver.url())
    with tenant_scope(alpha.tenant), pytest.raises(RuntimeError), transaction.atomic():
        webhook_event_emit(tenant_id=alpha.tenant.pk, event="chat.message", fields={"chat_id": "x"})
        raise RuntimeError("the turn failed after all")
    assert deliveries(alpha, webhook) == [] and receiver.received == []


def test_a_failing_receiver_is_retried_with_backoff_until_it_recovers(
    alpha: TenantWorld, receiver: Receiver, committed: Any
) -> None:
    webhook, secret = register(alpha, receiver.url(), events=["chat.message"])
    receiver.answer(500, 502)
    receiver.answer(503, headers={"Retry-After": "600"})
    receiver.answer(408)
    with committed():
        ask(alpha)
    [delivery] = deliveries(alpha, webhook)
    waits = [fast_forward(alpha, delivery) for _ in range(4)]

    assert 22 <= waits[0] <= 38, "the first retry comes within a minute"
    assert 67 <= waits[1] <= 113
    assert waits[2] >= 600, "Retry-After is honoured when longer than the backoff"
    assert 607 <= waits[3] <= 1013
    delivery = reload(alpha, delivery)
    assert delivery.state == DeliveryState.SUCCEEDED and delivery.attempt_count == 5
    assert [a["status_code"] for a in delivery.attempts] == [500, 502, 503, 408, 200]
    assert "503 Service Unavailable" in delivery.attempts[2]["error"]
    assert len(receiver.received) == 5
    assert len({request.body for request in receiver.received}) == 1, "every attempt sends the same bytes"
    for request in receiver.received:
        assert_authentic(request, secret)
    webhook = reload(alpha, webhook)
    assert webhook.failure_streak == 0 and webhook.is_active and webhook.last_success_at


def test_a_receiver_that_stays_down_exhausts_the_schedule_and_is_disabled(
    alpha: TenantWorld, receiver: Receiver, committed: Any, settings: Any
) -> None:
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 8
    settings.WEBHOOK_DISABLE_AFTER_SECONDS = 0
    webhook, _ = register(alpha, receiver.url(), events=["chat.message"])
    receiver.default.status = 500
    with committed():
        for question in ("Refunds?", "Shipping?"):
            ask(alpha, question)
    first, second = deliveries(alpha, webhook)
    waits = [fast_forward(alpha, first) for _ in range(settings.WEBHOOK_MAX_ATTEMPTS - 2)]
    # Attempts so far: 7 of the first delivery, 1 of the second: 8 failures in a row, endpoint disabled.
    assert all(0.75 * 30 * 3**n <= wait <= 1.25 * 30 * 3**n for n, wait in enumerate(waits)), waits
    assert sum(waits) > 2 * 3600, "the schedule spreads over hours"
    webhook = reload(alpha, webhook)
    assert not webhook.is_active and webhook.failure_streak == 8
    assert "8 failed attempts in a row" in webhook.disabled_reason and webhook.disabled_at
    for delivery in (reload(alpha, first), reload(alpha, second)):
        assert delivery.state == DeliveryState.FAILED and delivery.next_attempt_at is None
        assert "endpoint was disabled" in delivery.last_error
    shown = alpha.client("admin").get(f"/v1/webhooks/{webhook.pk}").json()
    assert shown["is_active"] is False and shown["disabled_reason"] == webhook.disabled_reason

    with committed():
        ask(alpha, "More?")
    assert len(deliveries(alpha, webhook)) == 2, "a disabled endpoint gets no new deliveries"


def test_the_attempt_budget_ends_a_delivery_as_failed(
    alpha: TenantWorld, receiver: Receiver, committed: Any, settings: Any
) -> None:
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    webhook, _ = register(alpha, receiver.url(), events=["chat.message"])
    receiver.default.status = 500
    with committed():
        ask(alpha)
    [delivery] = deliveries(alpha, webhook)
    fast_forward(alpha, delivery)
    fast_forward(alpha, delivery)
    delivery = reload(alpha, delivery)
    assert delivery.state == DeliveryState.FAILED and delivery.attempt_count == 3 and delivery.next_attempt_at is None
    assert reload(alpha, webhook).is_active, "three failures within seconds do not disable an endpoint"


def test_410_gone_disables_the_endpoint_at_once(alpha: TenantWorld, receiver: Receiver, committed: Any) -> None:
    webhook, _ = register(alpha, receiver.url(), events=["chat.message"])
    receiver.answer(410)
    with committed():
        ask(alpha)
    [delivery] = deliveries(alpha, webhook)
    assert reload(alpha, delivery).state == DeliveryState.FAILED
    webhook = reload(alpha, webhook)
    assert not webhook.is_active and "410 Gone" in webhook.disabled_reason
    assert len(receiver.received) == 1


def test_redirects_are_not_followed(alpha: TenantWorld, receiver: Receiver, committed: Any, settings: Any) -> None:
    settings.ALLOW_PRIVATE_NETWORKS = False
    settings.SSRF_ALLOWED_NETWORKS = ["127.0.0.1/32"]  # the receiver itself is allowed, nothing else private
    webhook, _ = register(alpha, receiver.url(), events=["chat.message"])
    receiver.answer(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
    with committed():
        ask(alpha)
    [delivery] = deliveries(alpha, webhook)
    delivery = reload(alpha, delivery)
    assert delivery.state == DeliveryState.PENDING and delivery.last_status_code == 302
    assert "Redirects are not followed" in delivery.last_error
    assert [request.path for request in receiver.received] == ["/hooks/minirag"]


def test_the_ssrf_guard_checks_the_destination_again_at_delivery(
    alpha: TenantWorld, receiver: Receiver, committed: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name that resolved to a public address when saved and to loopback later (DNS rebinding)
    is refused when sending; so is a loopback URL saved while private networks were allowed."""
    port = receiver.server.server_address[1]
    answers = {"hooks.example.com": ["93.184.215.14"]}
    real_resolve = destinations.resolve
    monkeypatch.setattr(destinations, "resolve", lambda host, p: answers.get(host) or real_resolve(host, p))
    settings.ALLOW_PRIVATE_NETWORKS = False
    rebinding, _ = register(alpha, f"http://hooks.example.com:{port}/hook", events=["chat.message"])
    settings.ALLOW_PRIVATE_NETWORKS = True
    loopback, _ = register(alpha, receiver.url(), events=["chat.message"])

    settings.ALLOW_PRIVATE_NETWORKS = False
    answers["hooks.example.com"] = ["127.0.0.1"]
    with committed():
        ask(alpha)
    for webhook in (rebinding, loopback):
        [delivery] = deliveries(alpha, webhook)
        assert "private or reserved address" in delivery.last_error and delivery.last_status_code is None
    assert receiver.received == []


def test_a_slow_receiver_is_cut_off_by_the_timeout(
    alpha: TenantWorld, receiver: Receiver, committed: Any, settings: Any
) -> None:
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    webhook, _ = register(alpha, receiver.url(), events=["chat.message"])
    receiver.answer(200, delay=3)
    with committed():
        ask(alpha)
    [delivery] = deliveries(alpha, webhook)
    delivery = reload(alpha, delivery)
    assert delivery.state == DeliveryState.PENDING and "timed out after 0.5 s" in delivery.last_error
    assert delivery.last_latency_ms < 2000


def test_a_duplicated_message_or_a_second_worker_sends_nothing_twice(
    alpha: TenantWorld, receiver: Receiver, committed: Any
) -> None:
    webhook, _ = register(alpha, receiver.url(), events=["chat.message"])
    with committed():
        ask(alpha)
    [delivery] = deliveries(alpha, webhook)
    with tenant_scope(alpha.tenant):
        assert sending.attempt_delivery(delivery_id=delivery.pk) is None  # already delivered
    assert sending.send_due_deliveries() == 0
    assert len(receiver.received) == 1


def test_the_sweeper_resends_a_lost_message_and_a_claim_its_worker_abandoned(
    alpha: TenantWorld, receiver: Receiver, settings: Any
) -> None:
    register(alpha, receiver.url(), events=["chat.message"])
    # Recorded, but its queue message was lost (the on-commit send never ran in this test).
    with tenant_scope(alpha.tenant):
        [lost] = webhook_event_emit(tenant_id=alpha.tenant.pk, event="chat.message", fields={"chat_id": "c1"})
    assert sending.send_due_deliveries() == 0, "a freshly queued delivery is not sent twice"
    with tenant_scope(alpha.tenant):
        WebhookDelivery.objects.filter(pk=lost.pk).update(dispatched_at=timezone.now() - timedelta(minutes=5))
    assert sending.send_due_deliveries() == 1
    assert reload(alpha, lost).state == DeliveryState.SUCCEEDED

    # A worker claimed this one and died: once the claim lapses, the sweeper sends it again.
    with tenant_scope(alpha.tenant):
        [abandoned] = webhook_event_emit(tenant_id=alpha.tenant.pk, event="chat.message", fields={"chat_id": "c2"})
        WebhookDelivery.objects.filter(pk=abandoned.pk).update(
            next_attempt_at=timezone.now() + timedelta(seconds=70)  # the claim
        )
    assert sending.send_due_deliveries() == 0
    with tenant_scope(alpha.tenant):
        WebhookDelivery.objects.filter(pk=abandoned.pk).update(next_attempt_at=timezone.now())
    assert sending.send_due_deliveries() == 1
    assert reload(alpha, abandoned).state == DeliveryState.SUCCEEDED
    assert [request.payload["chat_id"] for request in receiver.received] == ["c1", "c2"]


def test_a_streamed_refusal_is_announced_as_the_bots_answer(
    alpha: TenantWorld, receiver: Receiver, committed: Any
) -> None:
    register(alpha, receiver.url(), events=["chat.message"])
    with committed():
        _, events = stream_turn(alpha, "What is the airspeed velocity of an unladen swallow?")
    [payload] = [request.payload for request in receiver.received]
    assert payload["outcome"] == "refused" and payload["streamed"] is True and payload["sources"] == []
    assert payload["message_id"] == dict(events)["done"]["message_id"]


def test_a_secret_that_cannot_be_decrypted_fails_the_attempt_readably(
    alpha: TenantWorld, receiver: Receiver, committed: Any
) -> None:
    webhook, _ = register(alpha, receiver.url(), events=["chat.message"])
    with tenant_scope(alpha.tenant):
        Webhook.objects.filter(pk=webhook.pk).update(secret_ciphertext="gAAAA-encrypted-with-a-key-now-gone")
    with committed():
        ask(alpha)
    [delivery] = deliveries(alpha, webhook)
    assert "cannot be decrypted" in delivery.last_error and delivery.attempt_count == 1
    assert delivery.state == DeliveryState.PENDING and receiver.received == []
