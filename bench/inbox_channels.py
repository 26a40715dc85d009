#!/usr/bin/env python
"""Inbox live channels: operator replies reaching many open visitor channels, and what a channel costs.

    .venv/bin/python bench/inbox_channels.py                      # 200 channels, 3 rounds at 20/s (≈ 2.5 min)
    .venv/bin/python bench/inbox_channels.py --channels 400 --rounds 5 --rate 50
    .venv/bin/python bench/inbox_channels.py --quick              # 20 channels, 1 round (the test smoke, ≈ 20 s)
    .venv/bin/python bench/inbox_channels.py --embedded           # SQLite, events inside the process
    .venv/bin/python bench/inbox_channels.py --database-url postgres://postgres@127.0.0.1:5432/minirag_bench_inbox \
        --redis-url redis://127.0.0.1:6379/13

The target (issue 18): with 200 visitor widgets holding their chat's event channel open
(`GET /v1/chat/{id}/events`) in ONE web process, an operator's message (`POST /v1/chat/{id}/replies`)
reaches the visitor in at most 1 s at p95. And: the memory one open channel costs.

What runs where:

* **the server**: `minirag.asgi:application` in ONE uvicorn process on loopback, flags as
  `make run` (bench/load.py's `Server`). Production mode by default: PostgreSQL — a throwaway
  database created from `--database-url` (its name plus a random suffix; dropped at the end),
  migrated as the superuser with row-level security and served as the app role `minirag_app`,
  with the connection pool of production (`MINIRAG_DB_POOL_MAX_SIZE`, default 20) — and Redis
  (`--redis-url`): the cache (event storage for Last-Event-ID, presence, rate limits) under a
  unique key prefix, deleted at the end, and django-eventstream's pub/sub (`EVENTSTREAM_REDIS`),
  so a reply travels server → Redis → the server's subscriber → the visitor's stream, as it does
  between processes in production. `--embedded`: SQLite and no Redis (events stay in the process).
* **the seed**, through the HTTP API: a tenant (sign-up; the owner's tenant token is the
  operator), a bot with `handoff: on_request`, a bot (widget) token whose `allowed_origins` is
  the shop's origin, and CHANNELS chats, each started by its own visitor (`X-MiniRAG-Visitor`),
  handed off by that visitor and taken over by the operator (`POST .../takeover`).
* **the visitors**: CHANNELS asyncio tasks in this process (httpx, one connection each) open their
  chat's events as the widget does: `Authorization: Bearer <widget token>`, `X-MiniRAG-Visitor`,
  `Origin: <the allowed origin>`. All must answer `stream-open` before anything is measured.
* **the operator**: a separate httpx client with the tenant token sends `POST /v1/chat/{id}/replies`.
  Each reply carries its send time (this process's monotonic clock, taken before the request
  starts), so a visitor measures send → arrival on its stream; the POST's own duration is measured
  too. Rounds: one reply to every chat, in a shuffled order, started at `--rate` replies per
  second (an open loop: a slow answer does not slow the sending), rounds one second apart. The
  default, 20 replies/s, is several times what the people answering 200 chats type (one message
  every 10 to 30 s per chat); one process's ceiling is about 1 / (the server's CPU per reply).

Measured, in order (the same run, the same server):

1. **baseline**: 1 channel open; `--probe` replies to it, one after another, 50 ms apart.
2. memory with 0 channels open after that warm-up: the server's VmRSS, threads, its PostgreSQL
   connections, Redis clients.
3. CHANNELS channels opened at once: time until every one said `stream-open`; the same figures.
4. held open `--hold` seconds (default 25: django-eventstream sends a `keep-alive` every 20 s, so
   every visitor must have received one; `--quick` holds 0 s and skips this check).
5. **paced**: the same `--probe` replies as the baseline, one after another, 50 ms apart, each to
   a different chat, with CHANNELS open: what the open channels alone cost a delivery.
6. **rounds**: `--rounds` x CHANNELS replies at `--rate`: delivery p50 / p95 / max, POST p50 / p95.
   For 1, 5 and 6: the server's CPU time per reply (/proc/<pid>/stat over the group).
7. another CHANNELS streams on the same chats (a second tab each: 2 x CHANNELS open): memory again,
   so the cost per channel is also measured from CHANNELS to 2 x CHANNELS open.
8. every stream closed: memory, connections and threads after.
9. `--cycles` times (default 3): CHANNELS streams opened, held 1 s and closed again, memory after
   each: a leak per channel would grow it cycle after cycle (the first cycles after the peak may
   still settle: the allocator keeps what 2 x CHANNELS threads used).

Errors: a stream not answering 200 or ending while it should be open, a reply not answered 201, a
reply that did not reach its visitor within 10 s, a reply delivered twice. The ratio printed is
p95 of the rounds (CHANNELS open, replies at --rate) / p95 of the baseline (1 open, one at a time).
The last line, `summary: key=value ...`, is for scripts (inbox/tests/test_bench_smoke.py parses it).
Exit status 1 on any error, or when the rounds' p95 is above 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.load import (  # noqa: E402
    APP_ROLE,
    Server,
    ThrowawayDatabase,
    cpu_seconds,
    percentile,
)
from bench.load import server_environment as load_server_environment  # noqa: E402

ORIGIN = "https://shop.example.com"
TARGET_P95_SECONDS = 1.0
DELIVERY_TIMEOUT_SECONDS = 10.0
OPEN_TIMEOUT_SECONDS = 60.0
KEEP_ALIVE_SECONDS = 20  # django-eventstream's interval (views.py: asyncio.wait(..., timeout=20))
PROBE_GAP_SECONDS = 0.05
REPLY_PREFIX = "bench-reply"


# --- The server's side: memory, threads, connections -----------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS (KB) and Threads of a process, from /proc."""
    out = {"rss_kb": 0, "threads": 0}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            out["rss_kb"] = int(line.split()[1])
        elif line.startswith("Threads:"):
            out["threads"] = int(line.split()[1])
    return out


@dataclass
class Probe:
    """Where the server's resources are read from: its pid, its database and its Redis db."""

    pid: int
    database_url: str | None  # a superuser URL of the throwaway database (None: SQLite)
    database_name: str | None
    redis_url: str
    settle: float = 1.0  # seconds to wait before a sample: the server finishes what the last step started

    def pg_connections(self) -> int | None:
        if not self.database_url:
            return None
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True) as connection:
            row = connection.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [self.database_name],
            ).fetchone()
        return int(row[0]) if row else 0

    def redis_clients(self) -> int | None:
        """Clients connected to the server's Redis db (subscribers included), this probe excluded."""
        if not self.redis_url:
            return None
        import redis

        client = redis.Redis.from_url(self.redis_url)
        try:
            db = client.connection_pool.connection_kwargs.get("db", 0)
            me = client.client_id()
            return sum(1 for row in client.client_list() if int(row.get("db", -1)) == db and int(row["id"]) != me)
        finally:
            client.close()

    async def sample(self, label: str, open_channels: int, longer: float = 1.0) -> dict[str, Any]:
        await asyncio.sleep(self.settle * longer)
        status = proc_status(self.pid)
        return {
            "label": label,
            "open": open_channels,
            **status,
            "pg_connections": await asyncio.to_thread(self.pg_connections),
            "redis_clients": await asyncio.to_thread(self.redis_clients),
        }


# --- Visitors ------------------------------------------------------------------------------------


@dataclass
class Chat:
    chat_id: str
    visitor_id: str


@dataclass
class Deliveries:
    """Reply tag → when it arrived on its visitor's stream (monotonic), for all the visitors."""

    arrived: dict[str, float] = field(default_factory=dict)
    duplicates: int = 0

    def record(self, tag: str, at: float) -> None:
        if tag in self.arrived:
            self.duplicates += 1
        else:
            self.arrived[tag] = at


@dataclass
class Errors:
    count: int = 0
    samples: list[str] = field(default_factory=list)

    def add(self, description: str) -> None:
        self.count += 1
        if len(self.samples) < 10:
            self.samples.append(description[:300])


class Visitor:
    """One widget holding its chat's event stream open, reading every event."""

    def __init__(self, chat: Chat, bot_token: str, deliveries: Deliveries, errors: Errors) -> None:
        self.chat = chat
        self.headers = {
            "Authorization": f"Bearer {bot_token}",
            "X-MiniRAG-Visitor": chat.visitor_id,
            "Origin": ORIGIN,
            "Accept": "text/event-stream",
        }
        self.deliveries = deliveries
        self.errors = errors
        self.opened = asyncio.Event()
        self.keep_alives = 0
        self.closing = False
        self.task: asyncio.Task[None] | None = None

    def start(self, client: Any, url: str) -> None:
        self.task = asyncio.create_task(self._run(client, url))

    async def close(self) -> None:
        self.closing = True
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def _run(self, client: Any, url: str) -> None:
        import httpx

        try:
            async with client.stream("GET", f"{url}/v1/chat/{self.chat.chat_id}/events", headers=self.headers) as r:
                if r.status_code != 200:
                    text = (await r.aread()).decode(errors="replace")
                    self.errors.add(f"events: HTTP {r.status_code} {text}")
                    return
                buffer = ""
                async for chunk in r.aiter_text():
                    buffer += chunk
                    while "\n\n" in buffer:
                        block, buffer = buffer.split("\n\n", 1)
                        self._event(block, time.monotonic())
            if not self.closing:
                self.errors.add(f"events: the stream of chat {self.chat.chat_id} ended")
        except asyncio.CancelledError:
            raise
        except (httpx.HTTPError, ValueError) as exc:
            if not self.closing:
                self.errors.add(f"events: {type(exc).__name__}: {exc}")

    def _event(self, block: str, at: float) -> None:
        name, data = "", ""
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
        if name == "stream-open":
            self.opened.set()
        elif name == "keep-alive":
            self.keep_alives += 1
        elif name in ("stream-error", "stream-reset"):
            self.errors.add(f"events: {name} {data}")
        elif name == "message" and data:
            content = json.loads(data).get("content", "")
            if content.startswith(REPLY_PREFIX):
                self.deliveries.record(content.split()[1], at)


async def open_visitors(
    client: Any,
    url: str,
    chats: list[Chat],
    bot_token: str,
    deliveries: Deliveries,
    errors: Errors,
    timeout: float = OPEN_TIMEOUT_SECONDS,
) -> tuple[list[Visitor], float]:
    """Open one stream per chat, all at once; returns them and the seconds until all said stream-open
    (an error for each group that did not within `timeout`)."""
    started = time.monotonic()
    visitors = [Visitor(chat, bot_token, deliveries, errors) for chat in chats]
    for visitor in visitors:
        visitor.start(client, url)
    waits = [asyncio.create_task(visitor.opened.wait()) for visitor in visitors]
    _, pending = await asyncio.wait(waits, timeout=timeout)
    for wait in pending:
        wait.cancel()
    if pending:
        errors.add(f"{len(pending)} of {len(visitors)} streams did not open within {timeout:.0f} s")
    return visitors, time.monotonic() - started


async def close_visitors(visitors: list[Visitor]) -> None:
    await asyncio.gather(*(visitor.close() for visitor in visitors))


# --- The operator ----------------------------------------------------------------------------------


@dataclass
class Sent:
    """Replies sent: tag → send time (monotonic, before the request started), and the POST's duration."""

    at: dict[str, float] = field(default_factory=dict)
    post_seconds: dict[str, float] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)  # the POST failed: nothing to deliver


async def send_reply(client: Any, chat: Chat, tag: str, sent: Sent, errors: Errors) -> None:
    import httpx

    started = time.monotonic()
    sent.at[tag] = started
    try:
        response = await client.post(
            f"/v1/chat/{chat.chat_id}/replies", json={"content": f"{REPLY_PREFIX} {tag} Thanks, looking into it."}
        )
    except httpx.HTTPError as exc:
        sent.failed.add(tag)
        errors.add(f"replies: {type(exc).__name__}: {exc}")
        return
    sent.post_seconds[tag] = time.monotonic() - started
    if response.status_code != 201:
        sent.failed.add(tag)
        errors.add(f"replies: HTTP {response.status_code} {response.text}")


async def wait_delivered(tags: list[str], sent: Sent, deliveries: Deliveries, errors: Errors) -> None:
    """Until every reply that was accepted reached its visitor (an error for each that did not in time)."""
    tags = [tag for tag in tags if tag not in sent.failed]
    deadline = time.monotonic() + DELIVERY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if all(tag in deliveries.arrived for tag in tags):
            return
        await asyncio.sleep(0.01)
    missing = [tag for tag in tags if tag not in deliveries.arrived]
    for tag in missing[:3]:
        errors.add(f"reply {tag} did not reach its visitor within {DELIVERY_TIMEOUT_SECONDS:.0f} s")
    errors.count += max(0, len(missing) - 3)


async def paced(
    operator: Any, chats: list[Chat], label: str, sent: Sent, deliveries: Deliveries, errors: Errors
) -> list[str]:
    """One reply after another (each awaited, then PROBE_GAP_SECONDS), to `chats` in turn."""
    tags = []
    for number, chat in enumerate(chats):
        tag = f"{label}-{number}"
        tags.append(tag)
        await send_reply(operator, chat, tag, sent, errors)
        await asyncio.sleep(PROBE_GAP_SECONDS)
    await wait_delivered(tags, sent, deliveries, errors)
    return tags


async def round_of_replies(
    operator: Any, chats: list[Chat], number: int, rate: float, sent: Sent, deliveries: Deliveries, errors: Errors
) -> list[str]:
    """One reply to every chat, started at `rate` per second in a shuffled order (an open loop)."""
    order = list(chats)
    random.Random(number).shuffle(order)  # noqa: S311 - an order, not a secret
    start = time.monotonic()
    tasks, tags = [], []
    for index, chat in enumerate(order):
        delay = start + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tag = f"r{number}-{chat.chat_id[:8]}-{index}"
        tags.append(tag)
        tasks.append(asyncio.create_task(send_reply(operator, chat, tag, sent, errors)))
    await asyncio.gather(*tasks)
    await wait_delivered(tags, sent, deliveries, errors)
    return tags


def latencies_ms(tags: list[str], sent: Sent, deliveries: Deliveries) -> list[float]:
    return [(deliveries.arrived[tag] - sent.at[tag]) * 1000 for tag in tags if tag in deliveries.arrived]


def post_ms(tags: list[str], sent: Sent) -> list[float]:
    return [sent.post_seconds[tag] * 1000 for tag in tags if tag in sent.post_seconds]


def stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {"count": 0, "p50": 0.0, "p95": 0.0, "max": 0.0, "mean": 0.0}
    return {
        "count": len(values),
        "p50": percentile(values, 0.50),
        "p95": percentile(values, 0.95),
        "max": max(values),
        "mean": statistics.fmean(values),
    }


# --- Seed -------------------------------------------------------------------------------------------


@dataclass
class Seed:
    tenant_token: str
    bot_token: str
    bot_id: str
    chats: list[Chat]


async def seed(url: str, channels: int, run_id: str) -> Seed:
    """Tenant, bot with hand-off, widget token, and `channels` chats taken over by the operator."""
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(keepalive_expiry=2.0)) as client:
        response = await client.post(
            "/v1/tenants",
            json={
                "tenant_name": "Inbox bench",
                "tenant_slug": f"inbox-{run_id}",
                "owner_email": "operator@example.com",
                "owner_password": secrets.token_urlsafe(16),
            },
        )
        response.raise_for_status()
        tenant_token = response.json()["api_token"]
        operator = {"Authorization": f"Bearer {tenant_token}"}
        response = await client.post(
            "/v1/bot-profiles", headers=operator, json={"name": "Shop bot", "handoff": "on_request"}
        )
        response.raise_for_status()
        bot_id = response.json()["id"]
        response = await client.post(
            "/v1/api-tokens",
            headers=operator,
            json={"name": "Shop widget", "bot_profile_id": bot_id, "allowed_origins": [ORIGIN]},
        )
        response.raise_for_status()
        bot_token = response.json()["raw_token"]

        async def one(number: int) -> Chat:
            visitor = {
                "Authorization": f"Bearer {bot_token}",
                "X-MiniRAG-Visitor": f"v-{run_id}-{number}",
                "Origin": ORIGIN,
            }
            response = await client.post(
                "/v1/chat", headers=visitor, json={"bot_profile_id": bot_id, "message": "Where is my order?"}
            )
            response.raise_for_status()
            chat = Chat(chat_id=response.json()["chat_id"], visitor_id=visitor["X-MiniRAG-Visitor"])
            (await client.post(f"/v1/chat/{chat.chat_id}/handoff", headers=visitor, json={})).raise_for_status()
            (await client.post(f"/v1/chat/{chat.chat_id}/takeover", headers=operator)).raise_for_status()
            return chat

        chats: list[Chat] = []
        batch = 8
        for start in range(0, channels, batch):
            chats += await asyncio.gather(*(one(n) for n in range(start, min(channels, start + batch))))
    return Seed(tenant_token=tenant_token, bot_token=bot_token, bot_id=bot_id, chats=chats)


# --- The whole benchmark --------------------------------------------------------------------------


@dataclass
class Options:
    channels: int = 200
    rounds: int = 3
    rate: float = 20.0
    probe: int = 40
    hold: float = 25.0
    double: bool = True
    embedded: bool = False
    db_pool: int = 0  # MINIRAG_DB_POOL_MAX_SIZE for the server; 0 = the settings' default (20)
    open_timeout: float = OPEN_TIMEOUT_SECONDS
    cycles: int = 3  # step 9: open and close every channel again this many times
    settle: float = 1.0  # seconds before each memory sample
    database_url: str = "postgres://postgres@127.0.0.1:5432/minirag_bench_inbox"
    redis_url: str = "redis://127.0.0.1:6379/13"


def empty_stats() -> dict[str, float]:
    return stats([])


@dataclass
class Phase:
    """A group of replies: delivery (send → the visitor's stream), the POST itself, and the server's
    CPU time per reply while the group ran (its keep-alives and Redis subscriber included)."""

    delivery: dict[str, float] = field(default_factory=empty_stats)
    post: dict[str, float] = field(default_factory=empty_stats)
    cpu_ms_per_reply: float = 0.0

    @classmethod
    def of(cls, tags: list[str], sent: Sent, deliveries: Deliveries, cpu: float) -> Phase:
        return cls(
            delivery=stats(latencies_ms(tags, sent, deliveries)),
            post=stats(post_ms(tags, sent)),
            cpu_ms_per_reply=cpu * 1000 / len(tags) if tags else 0.0,
        )

    def line(self) -> str:
        d, p = self.delivery, self.post
        return (
            f"{d['count']} delivered: p50 {d['p50']:.1f} ms, p95 {d['p95']:.1f} ms, max {d['max']:.1f} ms "
            f"(the POST: p50 {p['p50']:.1f} ms, p95 {p['p95']:.1f} ms; server CPU {self.cpu_ms_per_reply:.1f} ms "
            "per reply)"
        )


@dataclass
class Report:
    """What one run measured; filled in step by step by `measure`."""

    options: Options
    pool_size: str = ""
    seed_seconds: float = 0.0
    open_seconds: float = 0.0
    reopen_seconds: float = 0.0
    baseline: Phase = field(default_factory=Phase)
    paced: Phase = field(default_factory=Phase)
    rounds: Phase = field(default_factory=Phase)
    rounds_each: list[Phase] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    keep_alives_min: int = 0
    errors: Errors = field(default_factory=Errors)
    duplicates: int = 0
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def sample(self, label: str) -> dict[str, Any] | None:
        return next((s for s in self.samples if s["label"] == label), None)

    @property
    def kb_per_channel(self) -> float:
        idle, full = self.sample("0 open"), self.sample(f"{self.options.channels} open")
        return (full["rss_kb"] - idle["rss_kb"]) / self.options.channels if idle and full else 0.0

    @property
    def kb_per_channel_slope(self) -> float | None:
        """The second CHANNELS streams' cost: measured from right before they opened (after the rounds)."""
        channels = self.options.channels
        full = self.sample(f"{channels} open, after the rounds")
        double = self.sample(f"{2 * channels} open")
        return (double["rss_kb"] - full["rss_kb"]) / channels if full and double else None

    @property
    def cycle_growth_mb(self) -> float | None:
        """Memory after the last open-and-close cycle minus after the first: ~0 without a leak."""
        closed = [s for s in self.samples if s["label"].startswith("all closed, after cycle")]
        return (closed[-1]["rss_kb"] - closed[0]["rss_kb"]) / 1024 if len(closed) > 1 else None

    @property
    def error_count(self) -> int:
        return self.errors.count + self.duplicates

    @property
    def ratio(self) -> float:
        base = self.baseline.delivery["p95"]
        return self.rounds.delivery["p95"] / base if base else 0.0

    @property
    def target_met(self) -> bool:
        delivered_all = self.rounds.delivery["count"] == self.options.channels * self.options.rounds
        return delivered_all and self.rounds.delivery["p95"] <= TARGET_P95_SECONDS * 1000

    @property
    def passed(self) -> bool:
        return self.error_count == 0 and self.target_met


def server_environment(data_dir: Path, options: Options, database_url: str | None, cache_prefix: str) -> dict[str, str]:
    """bench/load.py's server, with the pool size asked for (the smoke runs a small one)."""
    redis_url = "" if options.embedded else options.redis_url
    return {
        **load_server_environment(data_dir, database_url, redis_url, cache_prefix),
        **({"MINIRAG_DB_POOL_MAX_SIZE": str(options.db_pool)} if options.db_pool else {}),
    }


def delete_redis_keys(redis_url: str, prefix: str) -> None:
    if not redis_url:
        return
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    finally:
        client.close()


def log(message: str) -> None:
    print(message, flush=True)


@dataclass
class Run:
    """The clients and shared records of one measurement."""

    options: Options
    url: str
    data: Seed
    operator: Any  # httpx.AsyncClient with the tenant token
    visitors_client: Any  # httpx.AsyncClient for the streams
    probe: Probe
    report: Report
    deliveries: Deliveries = field(default_factory=Deliveries)
    sent: Sent = field(default_factory=Sent)

    async def open(self, chats: list[Chat], timeout: float = OPEN_TIMEOUT_SECONDS) -> tuple[list[Visitor], float]:
        return await open_visitors(
            self.visitors_client, self.url, chats, self.data.bot_token, self.deliveries, self.report.errors, timeout
        )

    async def paced(self, chats: list[Chat], label: str) -> Phase:
        cpu = cpu_seconds(self.probe.pid)
        tags = await paced(self.operator, chats, label, self.sent, self.deliveries, self.report.errors)
        return Phase.of(tags, self.sent, self.deliveries, cpu_seconds(self.probe.pid) - cpu)

    async def round(self, number: int) -> Phase:
        cpu = cpu_seconds(self.probe.pid)
        tags = await round_of_replies(
            self.operator, self.data.chats, number, self.options.rate, self.sent, self.deliveries, self.report.errors
        )
        return Phase.of(tags, self.sent, self.deliveries, cpu_seconds(self.probe.pid) - cpu)

    async def sample(self, label: str, open_channels: int, longer: float = 1.0) -> None:
        self.report.samples.append(await self.probe.sample(label, open_channels, longer))


async def measure(options: Options, server: Server, probe: Probe) -> Report:
    import httpx

    report = Report(options=options)
    started = time.monotonic()
    data = await seed(server.url, options.channels, secrets.token_hex(3))
    report.seed_seconds = time.monotonic() - started
    log(f"seeded {options.channels} chats taken over by the operator in {report.seed_seconds:.1f} s")
    visitors_limits = httpx.Limits(max_connections=2 * options.channels + 8, max_keepalive_connections=0)
    async with (
        # A stream is quiet for up to 20 s between keep-alives: no read timeout.
        httpx.AsyncClient(limits=visitors_limits, timeout=httpx.Timeout(30.0, read=None)) as visitors_client,
        httpx.AsyncClient(
            base_url=server.url,
            timeout=30.0,
            headers={"Authorization": f"Bearer {data.tenant_token}"},
            # Idle connections are dropped before uvicorn's 5 s keep-alive timeout closes them: a request
            # sent on a connection the server is closing fails with ReadError (a client-side race).
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=2.0),
        ) as operator,
    ):
        run = Run(options, server.url, data, operator, visitors_client, probe, report)
        await measure_baseline(run)
        visitors, all_open = await measure_open_channels(run)
        more: list[Visitor] = []
        if all_open:
            await measure_replies(run)
            if options.double:  # 7. A second stream on every chat (a second tab each).
                more, report.reopen_seconds = await run.open(data.chats)
                log(f"another {len(more)} channels opened at once: all open after {report.reopen_seconds:.2f} s")
                await run.sample(f"{2 * options.channels} open", 2 * options.channels)
        # 8. Every stream closed.
        await close_visitors(visitors + more)
        await run.sample("all closed", 0, longer=3.0)
        # 9. Open and close them all again, a few times: a leak would grow with every cycle.
        for cycle in range(options.cycles if all_open else 0):
            again, _ = await run.open(data.chats)
            await asyncio.sleep(1.0)
            await close_visitors(again)
            await run.sample(f"all closed, after cycle {cycle + 1}", 0, longer=3.0)
    report.duplicates = run.deliveries.duplicates
    return report


async def measure_baseline(run: Run) -> None:
    """1. One channel open, replies one after another; 2. memory with none open after that warm-up."""
    chats = run.data.chats
    one, _ = await run.open(chats[:1])
    await run.paced(chats[:1] * 5, "warmup")
    run.report.baseline = await run.paced(chats[:1] * run.options.probe, "baseline")
    log(f"baseline, 1 channel open, replies one after another: {run.report.baseline.line()}")
    await close_visitors(one)
    await run.sample("0 open", 0, longer=2.0)


async def measure_open_channels(run: Run) -> tuple[list[Visitor], bool]:
    """3. Every channel opened at once; 4. held for keep-alives. The streams, and whether all of them
    opened (when not, nothing more is measured)."""
    options, report = run.options, run.report
    failed_before = report.errors.count
    visitors, report.open_seconds = await run.open(run.data.chats, options.open_timeout)
    await run.sample(f"{options.channels} open", options.channels)
    if report.errors.count != failed_before:
        log(f"NOT all {len(visitors)} channels opened within {options.open_timeout:.0f} s: no reply is measured")
        return visitors, False
    log(f"{len(visitors)} channels opened at once: all said stream-open after {report.open_seconds:.2f} s")
    if options.hold > 0:
        log(f"holding {options.channels} channels open for {options.hold:.0f} s (keep-alive every 20 s)...")
        await asyncio.sleep(options.hold)
        await run.sample(f"{options.channels} open, after {options.hold:.0f} s", options.channels)
    report.keep_alives_min = min(visitor.keep_alives for visitor in visitors)
    if options.hold > KEEP_ALIVE_SECONDS and report.keep_alives_min == 0:
        report.errors.add(f"a visitor received no keep-alive in {options.hold:.0f} s")
    return visitors, True


async def measure_replies(run: Run) -> None:
    """5. The paced probe and 6. the rounds, every channel open."""
    options, report, chats = run.options, run.report, run.data.chats
    report.paced = await run.paced([chats[(i * 7919) % len(chats)] for i in range(options.probe)], "paced")
    log(f"paced, {options.channels} open, replies one after another: {report.paced.line()}")
    cpu, started = cpu_seconds(run.probe.pid), len(run.sent.at)
    for number in range(options.rounds):
        if number:
            await asyncio.sleep(1.0)
        report.rounds_each.append(each := await run.round(number))
        log(f"round {number + 1}/{options.rounds}, {len(chats)} replies at {options.rate:.0f}/s: {each.line()}")
    tags = list(run.sent.at)[started:]
    report.rounds = Phase.of(tags, run.sent, run.deliveries, cpu_seconds(run.probe.pid) - cpu)
    await run.sample(f"{options.channels} open, after the rounds", options.channels)


def run(options: Options) -> Report:
    """Set up (database, server), measure, and remove everything created."""
    load_before = os.getloadavg()
    cache_prefix = f"minirag-inbox-{secrets.token_hex(4)}"
    database = None
    if not options.embedded:
        database = ThrowawayDatabase(options.database_url, APP_ROLE)
        database.create()
    try:
        with tempfile.TemporaryDirectory(prefix="minirag-inbox-") as data_dir:
            env = server_environment(Path(data_dir), options, database.app_url if database else None, cache_prefix)
            migrate_env = {**env, "MINIRAG_DATABASE_OWNER_URL": database.superuser_url} if database else env
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=migrate_env, check=True
            )
            server = Server("minirag.asgi:application", env)
            try:
                server.wait_ready()
                probe = Probe(
                    pid=server.pid,
                    database_url=database.superuser_url if database else None,
                    database_name=database.name if database else None,
                    redis_url="" if options.embedded else options.redis_url,
                    settle=options.settle,
                )
                report = asyncio.run(measure(options, server, probe))
            finally:
                server.stop()
    finally:
        if database:
            database.drop()
        if not options.embedded:
            delete_redis_keys(options.redis_url, cache_prefix)
    report.pool_size = env.get("MINIRAG_DB_POOL_MAX_SIZE", "20, the default") if database else "none (SQLite)"
    report.load_before, report.load_after = load_before, os.getloadavg()
    return report


def format_report(report: Report) -> str:
    options = report.options
    mode = (
        "embedded (SQLite, events inside the process)"
        if options.embedded
        else f"PostgreSQL (row-level security, app role {APP_ROLE}, pool {report.pool_size}) and Redis "
        f"(cache + eventstream pub/sub, {options.redis_url})"
    )
    b, p, r = report.baseline, report.paced, report.rounds
    rows = [
        ("baseline: 1 open, one at a time", b),
        (f"paced: {options.channels} open, one at a time", p),
        (f"rounds: {options.channels} open, {options.rate:.0f} replies/s", r),
    ]
    lines = [
        "",
        f"Inbox live channels: {options.channels} visitor channels in one uvicorn process; {mode}",
        f"load average before {report.load_before[0]:.2f}, after {report.load_after[0]:.2f}",
        "",
        f"{'replies':38} {'count':>6} {'delivery (send → visitor) ms':>30} {'POST /replies ms':>18} {'CPU':>7}",
        f"{'':38} {'':>6} {'p50':>8} {'p95':>10} {'max':>10} {'p50':>8} {'p95':>9} {'ms':>7}",
    ]
    for label, phase in rows:
        d, post = phase.delivery, phase.post
        lines.append(
            f"{label:38} {d['count']:>6} {d['p50']:>8.1f} {d['p95']:>10.1f} {d['max']:>10.1f} "
            f"{post['p50']:>8.1f} {post['p95']:>9.1f} {phase.cpu_ms_per_reply:>7.1f}"
        )
    paced_ratio = p.delivery["p95"] / b.delivery["p95"] if b.delivery["p95"] else 0.0
    lines += [
        "(CPU: the server's CPU time per reply while the group ran)",
        "",
        f"ratio p95 rounds / p95 baseline: {report.ratio:.2f} x; paced / baseline: {paced_ratio:.2f} x",
        f"target: p95 ≤ {TARGET_P95_SECONDS * 1000:.0f} ms with {options.channels} open: "
        f"{'met' if report.target_met else 'MISSED'} ({r.delivery['p95']:.1f} ms, {r.delivery['count']} of "
        f"{options.channels * options.rounds} delivered)",
        f"opening: {options.channels} streams at once all open after {report.open_seconds:.2f} s"
        + (f"; {options.channels} more after {report.reopen_seconds:.2f} s" if options.double else ""),
        f"keep-alives: every visitor received at least {report.keep_alives_min} in {options.hold:.0f} s",
        f"errors: {report.error_count} (duplicates {report.duplicates})",
        "",
        f"{'server':34} {'open':>5} {'VmRSS MB':>9} {'threads':>8} {'pg conns':>9} {'redis clients':>14}",
    ]
    for sample in report.samples:
        pg = "-" if sample["pg_connections"] is None else str(sample["pg_connections"])
        rc = "-" if sample["redis_clients"] is None else str(sample["redis_clients"])
        lines.append(
            f"{sample['label']:34} {sample['open']:>5} {sample['rss_kb'] / 1024:>9.1f} {sample['threads']:>8} "
            f"{pg:>9} {rc:>14}"
        )
    slope = report.kb_per_channel_slope
    lines.append(
        f"memory per open channel: {report.kb_per_channel:.1f} KB (0 → {options.channels} open)"
        + (f", {slope:.1f} KB ({options.channels} → {2 * options.channels} open)" if slope is not None else "")
    )
    growth = report.cycle_growth_mb
    if growth is not None:
        cycles = len([s for s in report.samples if s["label"].startswith("all closed, after cycle")])
        per_channel = growth * 1024 / options.channels / (cycles - 1)
        lines.append(
            f"leaks: after {cycles} cycles of {options.channels} streams opened and closed, memory moved "
            f"{growth:+.1f} MB from the first cycle to the last ({per_channel:+.1f} KB per channel per cycle)"
        )
    if report.errors.samples:
        lines += ["first errors:", *(f"  {sample}" for sample in report.errors.samples)]
    summary = {
        "channels": options.channels,
        "rounds": options.rounds,
        "rate": options.rate,
        "delivered": r.delivery["count"],
        "expected": options.channels * options.rounds,
        "errors": report.error_count,
        "p50_ms": round(r.delivery["p50"], 1),
        "p95_ms": round(r.delivery["p95"], 1),
        "max_ms": round(r.delivery["max"], 1),
        "baseline_p95_ms": round(b.delivery["p95"], 1),
        "paced_p95_ms": round(p.delivery["p95"], 1),
        "ratio_p95": round(report.ratio, 2),
        "post_p50_ms": round(r.post["p50"], 1),
        "post_p95_ms": round(r.post["p95"], 1),
        "cpu_ms_per_reply": round(r.cpu_ms_per_reply, 1),
        "baseline_cpu_ms_per_reply": round(b.cpu_ms_per_reply, 1),
        "kb_per_channel": round(report.kb_per_channel, 1),
        "target": "met" if report.passed else "missed",
    }
    lines += ["", "summary: " + " ".join(f"{key}={value}" for key, value in summary.items())]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channels", type=int, default=200, help="Visitor channels held open (default 200).")
    parser.add_argument("--rounds", type=int, default=3, help="Rounds of one reply per chat (default 3).")
    parser.add_argument("--rate", type=float, default=20, help="Replies started per second in a round (default 20).")
    parser.add_argument("--probe", type=int, default=40, help="Replies of the baseline and paced probes (default 40).")
    parser.add_argument(
        "--hold", type=float, default=25, help="Seconds to hold the channels open before replying (default 25)."
    )
    parser.add_argument("--no-double", action="store_true", help="Skip opening a second stream per chat.")
    parser.add_argument(
        "--cycles", type=int, default=3, help="Open-and-close cycles at the end, for leaks (default 3)."
    )
    parser.add_argument("--quick", action="store_true", help="A smoke run: 20 channels, 1 round, no hold.")
    parser.add_argument("--embedded", action="store_true", help="SQLite and no Redis: events stay in the process.")
    parser.add_argument(
        "--db-pool",
        type=int,
        default=0,
        help="The server's database pool size (MINIRAG_DB_POOL_MAX_SIZE; default: the settings' 20).",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("MINIRAG_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/minirag_bench_inbox"),
        help="PostgreSQL superuser URL; its database name is the prefix of the throwaway database.",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("MINIRAG_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
        help="Redis for the cache and eventstream's pub/sub (keys under a unique prefix, deleted).",
    )
    args = parser.parse_args()
    options = Options(
        channels=args.channels,
        rounds=args.rounds,
        rate=args.rate,
        probe=args.probe,
        hold=args.hold,
        double=not args.no_double,
        cycles=args.cycles,
        embedded=args.embedded,
        database_url=args.database_url,
        redis_url=args.redis_url,
        db_pool=args.db_pool,
    )
    if args.quick:
        options.channels = min(options.channels, 20)
        options.rounds, options.probe, options.hold, options.double, options.settle = 1, 10, 0, False, 0.3
        options.open_timeout, options.cycles = 20, 1
    report = run(options)
    print(format_report(report))
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
