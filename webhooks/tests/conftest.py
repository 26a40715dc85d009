"""A real webhook receiver on loopback, and helpers to register it and move deliveries along."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.utils import timezone

from conftest import TenantWorld
from sources.tests.test_worker import worker_env  # noqa: F401 - a real Celery worker, for test_worker.py
from tenants.tenancy import tenant_scope
from webhooks.delivery import send_due_deliveries
from webhooks.models import SUBSCRIBABLE_EVENTS, Webhook, WebhookDelivery
from webhooks.services import webhook_create
from webhooks.signing import InvalidSignature, verify, verify_body_signature


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def event(self) -> str:
        return self.headers["X-MiniRAG-Event"]

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b'{"ok": true}'
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Receiver:
    """An HTTP server a tenant would run: records every POST (raw body and headers) and answers
    with the queued `replies` in order, then with `default`."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.replies: list[Reply] = []
        self.default = Reply()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.received.append(Received(self.path, dict(self.headers), body, time.monotonic()))
                    reply = receiver.replies.pop(0) if receiver.replies else receiver.default
                time.sleep(reply.delay)
                self.send_response(reply.status)
                self.send_header("Content-Length", str(len(reply.body)))
                self.send_header("Connection", "close")
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda *args: None  # a client that timed out and hung up is expected
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str = "/hooks/minirag") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def answer(self, *statuses: int, **reply: Any) -> None:
        self.replies.extend(Reply(status, **reply) for status in statuses)

    def of(self, event: str) -> list[Received]:
        return [request for request in self.received if request.event == event]

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.received) >= count, f"expected {count} deliveries, got {len(self.received)}"
        return self.received

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def committed(django_capture_on_commit_callbacks: Any) -> Callable[[], Any]:
    """`with committed(): ...` runs what the block queued for "after commit" (first attempts
    included) when it ends, as a real commit would; the test's own transaction never commits."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def register(
    world: TenantWorld, url: str, events: list[str] | None = None, secret: str | None = None
) -> tuple[Webhook, str]:
    """A webhook for `world` pointing at `url` (every event by default); the world's own
    unreachable fixture endpoint is disabled so only this one receives."""
    with tenant_scope(world.tenant):
        Webhook.objects.filter(pk=world.webhook.pk).update(is_active=False)
        return webhook_create(tenant=world.tenant, url=url, events=events or list(SUBSCRIBABLE_EVENTS), secret=secret)


def ask(world: TenantWorld, question: str = "Refunds?") -> Any:
    """A non-streamed chat turn as the world's owner: one `chat.message` event."""
    response = world.client().post(
        "/v1/chat", {"bot_profile_id": str(world.bot.pk), "message": question}, format="json"
    )
    assert response.status_code == 200, response.content
    return response


def assert_authentic(request: Received, secret: str) -> dict[str, Any]:
    """Both signature forms verify with the receiver's secret (and fail with another one); the
    headers carry the event and delivery id. Returns the payload."""
    verify(secret, request.body, request.headers)
    verify_body_signature(secret, request.body, request.headers)
    for check in (verify, verify_body_signature):
        with pytest.raises(InvalidSignature):
            check("another-secret-of-some-length", request.body, request.headers)
    assert request.headers["Content-Type"] == "application/json"
    payload = request.payload
    assert request.headers["X-MiniRAG-Event"] == payload["event"]
    assert request.headers["X-MiniRAG-Delivery"] == payload["delivery_id"]
    return payload


def deliveries(world: TenantWorld, webhook: Webhook, **filters: Any) -> list[WebhookDelivery]:
    with tenant_scope(world.tenant):
        return list(WebhookDelivery.objects.filter(webhook=webhook, **filters).order_by("created_at"))


def reload(world: TenantWorld, row: Any) -> Any:
    with tenant_scope(world.tenant):
        row.refresh_from_db()
    return row


def fast_forward(world: TenantWorld, delivery: WebhookDelivery) -> float:
    """Let the time until the delivery's next attempt pass (by moving that attempt to now) and
    run the sweeper, which sends it (inline, in tests). Returns the wait that was scheduled."""
    with tenant_scope(world.tenant):
        delivery.refresh_from_db()
        assert delivery.next_attempt_at is not None, "no attempt is scheduled"
        last_attempt = delivery.updated_at
        wait = (delivery.next_attempt_at - last_attempt).total_seconds()
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            next_attempt_at=timezone.now() - timedelta(milliseconds=1)
        )
    send_due_deliveries()
    return wait


WaitFor = Callable[[Callable[[], bool], str], None]
