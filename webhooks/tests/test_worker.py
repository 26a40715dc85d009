"""With a real Celery worker on the real Redis: deliveries leave the request and the ingestion
entirely, so a receiver that takes seconds to answer never slows a chat turn."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from conftest import build_world
from sources.tests.test_worker import Worker, wait_until
from webhooks.models import DeliveryState
from webhooks.tests.conftest import Receiver, assert_authentic, deliveries, register

pytestmark = pytest.mark.django_db(transaction=True)

RECEIVER_DELAY = 4.0


def test_a_slow_receiver_does_not_slow_the_turn_and_a_worker_delivers_signed_events(
    worker_env: Callable[[], Worker], receiver: Receiver
) -> None:
    alpha = build_world("alpha")
    worker = worker_env()
    chat = {"bot_profile_id": str(alpha.bot.pk), "message": "How long do refunds take?"}
    # Both of the fixture's sources: one still ingesting would announce itself to the receiver below.
    for source in (alpha.text_source, alpha.upload_source):
        wait_until(
            lambda source=source: alpha.client().get(f"/v1/sources/{source.pk}").json()["status"] == "ready", "ingest"
        )
    assert alpha.client().post("/v1/chat", chat, format="json").status_code == 200  # warm the models up

    webhook, secret = register(alpha, receiver.url())
    receiver.default.delay = RECEIVER_DELAY
    started = time.monotonic()
    response = alpha.client().post("/v1/chat", chat, format="json")
    turn_seconds = time.monotonic() - started
    assert response.status_code == 200
    assert turn_seconds < RECEIVER_DELAY / 2, f"the turn took {turn_seconds:.2f} s"

    [request] = receiver.wait_for(1)
    payload = assert_authentic(request, secret)
    assert payload["event"] == "chat.message" and payload["message_id"] == response.json()["message"]["id"]
    wait_until(lambda: deliveries(alpha, webhook)[0].state == DeliveryState.SUCCEEDED, "the delivery to finish")
    [delivery] = deliveries(alpha, webhook)
    assert delivery.last_latency_ms >= RECEIVER_DELAY * 1000 and delivery.attempts[0]["status_code"] == 200

    # Ingestion through the worker announces itself the same way.
    receiver.default.delay = 0
    source_id = (
        alpha.client("admin")
        .post(
            "/v1/sources",
            {"bot_profile_id": str(alpha.bot.pk), "name": "Hours", "source_type": "text", "content": "Open 9-5."},
            format="json",
        )
        .json()["id"]
    )
    assert alpha.client("admin").post(f"/v1/sources/{source_id}/ingest").status_code == 202
    ingested = assert_authentic(receiver.wait_for(2)[1], secret)
    assert ingested["event"] == "source.ingested" and ingested["source_id"] == source_id
    worker.stop()
