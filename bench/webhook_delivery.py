#!/usr/bin/env python
"""Webhook costs: what an event adds to the transaction that causes it, and what one delivery
attempt costs next to a bare HTTP POST.

    .venv/bin/python bench/webhook_delivery.py                  # about 20 seconds
    .venv/bin/python bench/webhook_delivery.py --events 2000 --database-url postgres://...

Part 1, emission. N transactions each store a chat message (the baseline: what a turn writes
anyway) and, in the measured run, also announce `chat.message` to 1 and to 5 subscribed
endpoints (the delivery rows; the sending is queued after commit and not timed here). Reported:
time per transaction and the ratio to the baseline.

Part 2, one attempt. A loopback receiver answers 200 at once. Baseline: a bare `httpx` POST of the
same body on a new connection (what any sender pays). Measured: `attempt_delivery`, i.e. claim
the delivery, decrypt the secret, sign, resolve and check the destination (the SSRF guard), POST,
record the outcome. Reported: p50/p95 and the ratio of medians.

Embedded mode (SQLite in a temporary directory), or PostgreSQL with --database-url.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import embedded_environment  # noqa: E402


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def setup(receiver_url: str) -> dict[str, Any]:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from bots.services import bot_profile_create
    from chat.models import Chat
    from tenants.services import tenant_bootstrap
    from tenants.tenancy import tenant_scope

    created = tenant_bootstrap(
        name="Bench", slug="bench", owner_email="bench@bench.test", owner_password="bench-password-1"
    )
    tenant = created.tenant
    with tenant_scope(tenant):
        bot = bot_profile_create(tenant=tenant, name="Bench bot")
        chat = Chat.objects.create(tenant=tenant, bot_profile=bot, title="bench")
    return {"tenant": tenant, "bot": bot, "chat": chat, "url": receiver_url}


def time_transactions(ids: dict[str, Any], count: int, endpoints: int) -> list[float]:
    from django.db import transaction

    from chat.models import Message
    from tenants.tenancy import tenant_scope
    from webhooks.models import SUBSCRIBABLE_EVENTS, Webhook
    from webhooks.services import webhook_create, webhook_event_emit

    tenant = ids["tenant"]
    samples = []
    with tenant_scope(tenant):
        Webhook.objects.filter(tenant=tenant).delete()
        for n in range(endpoints):
            webhook_create(tenant=tenant, url=f"{ids['url']}/{n}", events=list(SUBSCRIBABLE_EVENTS))
        for n in range(count):
            started = time.perf_counter()
            with transaction.atomic():
                message = Message.objects.create(
                    tenant=tenant, chat=ids["chat"], role="assistant", content=f"Answer {n} [1]."
                )
                webhook_event_emit(
                    tenant_id=tenant.pk,
                    event="chat.message",
                    fields={"chat_id": str(ids["chat"].pk), "message_id": str(message.pk), "answer": message.content},
                )
            samples.append(time.perf_counter() - started)
    return samples


def time_attempts(ids: dict[str, Any], count: int) -> tuple[list[float], list[float]]:
    import httpx
    from django.db import transaction

    from tenants.tenancy import tenant_scope
    from webhooks.delivery import attempt_delivery
    from webhooks.models import Webhook
    from webhooks.services import webhook_create, webhook_event_emit

    tenant = ids["tenant"]
    body = b'{"event":"chat.message","answer":"' + b"x" * 600 + b'"}'
    raw, guarded = [], []
    with httpx.Client() as client:
        for _ in range(count):
            started = time.perf_counter()
            client.post(ids["url"], content=body, headers={"Connection": "close", "Content-Type": "application/json"})
            raw.append(time.perf_counter() - started)
    with tenant_scope(tenant):
        Webhook.objects.filter(tenant=tenant).delete()
        webhook_create(tenant=tenant, url=ids["url"], events=["chat.message"])
        for _ in range(count):
            with transaction.atomic():  # recorded only: the bench sends it itself, timed
                [delivery] = webhook_event_emit(tenant_id=tenant.pk, event="chat.message", fields={"answer": "x" * 600})
            started = time.perf_counter()
            result = attempt_delivery(delivery_id=delivery.pk)
            guarded.append(time.perf_counter() - started)
            assert result is not None and result.succeeded, result
    return raw, guarded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000, help="Transactions per emission run (default 1000).")
    parser.add_argument("--attempts", type=int, default=300, help="Delivery attempts (default 300).")
    parser.add_argument("--database-url", help="Use this database instead of a temporary SQLite file.")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    with tempfile.TemporaryDirectory(prefix="minirag-webhook-bench-") as data_dir:
        os.environ.update(embedded_environment(Path(data_dir), args.database_url))
        os.environ["MINIRAG_ALLOW_PRIVATE_NETWORKS"] = "true"  # the receiver is on loopback
        # Sending is timed in part 2; here only what the causing transaction pays is measured.
        os.environ["MINIRAG_TASKS_IN_PROCESS"], os.environ["CELERY_BROKER_URL"] = "true", ""
        ids = setup(url)
        from django.conf import settings

        settings.TASKS_RUN_INLINE = False
        settings.IN_PROCESS_WORKERS = 1
        import minirag.task_queue as task_queue

        task_queue._run_in_process_later = lambda *args, **kwargs: None  # part 1 times the writes only

        database = "PostgreSQL" if args.database_url else "SQLite"
        print(f"Part 1: a chat message stored, with its chat.message deliveries recorded ({database})")
        baseline = statistics.median(time_transactions(ids, args.events, 0))
        print(f"  no endpoint (baseline)  {baseline * 1000:6.2f} ms per transaction")
        for endpoints in (1, 5):
            measured = statistics.median(time_transactions(ids, args.events, endpoints))
            print(
                f"  {endpoints} endpoint{'s' if endpoints > 1 else ' '}             {measured * 1000:6.2f} ms"
                f"  (x{measured / baseline:.2f}, +{(measured - baseline) * 1000:.2f} ms)"
            )

        raw, guarded = time_attempts(ids, args.attempts)
        raw_p50, guarded_p50 = statistics.median(raw), statistics.median(guarded)
        raw_p95, guarded_p95 = percentile(raw, 0.95), percentile(guarded, 0.95)
        print(f"Part 2: one delivery attempt to a loopback receiver ({args.attempts} each)")
        print(f"  bare httpx POST (baseline)  p50 {raw_p50 * 1000:5.2f} ms  p95 {raw_p95 * 1000:5.2f} ms")
        print(
            f"  attempt_delivery            p50 {guarded_p50 * 1000:5.2f} ms  p95 {guarded_p95 * 1000:5.2f}"
            f" ms  (x{guarded_p50 / raw_p50:.2f}, +{(guarded_p50 - raw_p50) * 1000:.2f} ms)"
        )
        print(f"  => one worker process sends about {1 / guarded_p50:.0f} deliveries/s to a fast receiver")
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
