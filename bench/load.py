#!/usr/bin/env python
"""Sustained load from a second process: streamed chats and API reads, zero errors, flat memory.

    .venv/bin/python bench/load.py                              # 32 users, 30 s, after a 5 s warm-up
    .venv/bin/python bench/load.py --users 64 --duration 60
    .venv/bin/python bench/load.py --only sources --no-baseline    # one kind: its CPU per request
    .venv/bin/python bench/load.py --database-url postgres://postgres@127.0.0.1:5432/minirag_load

What runs where:

* **the server**: the real application (`minirag.asgi:application`, with the benchmark models of
  bench/providers.py registered — `bench/instant` answers at once, so what is measured is
  MiniRAG, not a model) in ONE uvicorn process on loopback, as `make run` serves it. PostgreSQL:
  a throwaway database created (and dropped) by this script — a superuser URL names its prefix;
  when row-level security exists (tenants/rls.py) the app connects as the unprivileged role
  `minirag_app` and `manage.py migrate` runs as the superuser, as in production. Redis
  (`--redis-url`, default db 5 of the local server, keys under a unique prefix, deleted at the
  end) counts the widget rate limits, as in production; the limits are raised so the load is
  never refused (still counted: a limit of 0 would skip the counting). Vectors: local-mode
  Qdrant in a temporary directory; embeddings: the offline `local/minilm`.
* **the seed**, through the HTTP API itself: a tenant (sign-up), a bot on `bench/instant`, a text
  source ingested by the server, and a bot (widget) token next to the owner's tenant token.
* **the load generator**: a separate process (`bench/load.py generate`, asyncio + httpx; no
  other dependency), USERS virtual users in a closed loop for WARMUP + DURATION seconds. Each user
  is a widget visitor with its own `X-MiniRAG-Visitor` id: 40% streamed chats (`POST /v1/chat`,
  `stream: true`, read to the end; a chat carries on for 4 turns, then a new one starts), 20%
  `GET /v1/chat/{id}/messages` of its current chat (bot token, same visitor), 20% `GET /v1/sources`
  and 20% `GET /v1/bot-profiles` (tenant token).

Reported for the measured DURATION: requests and streams completed, errors (a non-2xx answer, a
transport error, or a stream that did not end with `done`, warm-up included), p50/p95/p99 per
kind (time to the first `delta` and to the end for streams), throughput; the server's resident
memory (VmRSS) sampled every second — right after the warm-up, at the end, the maximum, and the
growth between the first and the last third of the run; the server's CPU time per request; and
the UPDATE statements on `tenants_apitoken` and the rows they wrote while the load ran (counted
exactly by triggers in the throwaway database, cross-checked with `pg_stat_user_tables.n_tup_upd`
over the server's lifetime): token authentication writes `last_used_at` at most once a minute per
token, never once per request.

Baseline, in the same run: a bare ASGI application (`baseline_application` below: a tiny JSON
for reads, a fixed `sources`, six `delta`, `done` event stream for chats) served by the same uvicorn
with the same flags and loaded by the same generator with the same users and mix. Latency ratios
MiniRAG / baseline are printed per kind. Exit status 1 when an error occurred, a stream did not
end with `done`, memory grew by more than 30 MB, or more than 2 token writes happened per
minute of load. minirag/tests/test_load.py runs the same machinery with small numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import embedded_environment  # noqa: E402

MIX = {"chat": 4, "messages": 2, "sources": 2, "bot_profiles": 2}
TURNS_PER_CHAT = 4
REQUEST_TIMEOUT_SECONDS = 30.0
MEMORY_GROWTH_LIMIT_MB = 30.0
APP_ROLE = "minirag_app"
# Widget rate limits for the run: high enough never to refuse, non-zero so they are still counted.
RAISED_RATE_LIMITS = {
    "MINIRAG_BOT_TOKEN_MESSAGES_PER_MINUTE": "10000000",
    "MINIRAG_BOT_TOKEN_MESSAGES_PER_DAY": "10000000",
    "MINIRAG_VISITOR_MESSAGES_PER_MINUTE": "10000000",
    "MINIRAG_VISITOR_MESSAGES_PER_DAY": "10000000",
    "MINIRAG_ADDRESS_MESSAGES_PER_MINUTE": "10000000",
    "MINIRAG_ADDRESS_MESSAGES_PER_DAY": "10000000",
}
QUESTIONS = [
    "How long does shipping take?",
    "How do refunds work?",
    "When is the office open?",
    "Can I change my delivery address?",
    "Do you ship abroad?",
    "How do I reset my password?",
    "What payment methods do you accept?",
    "How long is the warranty?",
]
HANDBOOK = "\n\n".join(
    [
        "Shipping. Orders placed before two in the afternoon ship the same working day. Delivery "
        "inside the country takes one to three working days; express delivery arrives the next day.",
        "International shipping. We ship to every country of the European Union and to Switzerland, "
        "Norway and the United Kingdom. Delivery abroad takes three to seven working days.",
        "Delivery address. The delivery address can be changed until the parcel has been handed to "
        "the carrier. Write to support with the order number and the new address.",
        "Refunds. Refunds take five working days from the day the returned parcel arrives at our "
        "warehouse. The money goes back to the payment method used for the order.",
        "Returns. Any item can be returned within thirty days of delivery, unused and in its original "
        "packaging. The return label is free inside the country.",
        "Opening hours. The office opens at nine in the morning and closes at five in the afternoon, "
        "Monday to Friday. On public holidays the office is closed.",
        "Payment. We accept credit cards, debit cards, bank transfer and invoices for business "
        "customers. Invoices are payable within fourteen days.",
        "Accounts. A forgotten password is reset from the login page: enter the account's email "
        "address and follow the link in the message, which stays valid for one hour.",
        "Warranty. Every product carries a two-year warranty from the date of delivery. Defects are "
        "repaired or the product is replaced; shipping for warranty claims is free.",
        "Gift cards. Gift cards are valid for three years and can be combined with any payment method. "
        "They cannot be exchanged for cash.",
    ]
    * 3
)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- The baseline: a bare ASGI application ---------------------------------------------------

_BASELINE_JSON = b'{"status": "ok"}'
_BASELINE_EVENTS = [
    b'event: sources\ndata: {"sources": [{"chunk_id": "c", "content": "Orders ship.", "score": 0.9}]}\n\n',
    *(
        f"event: delta\ndata: {json.dumps({'content': word + ' '})}\n\n".encode()
        for word in "Orders ship within two working days [1].".split()
    ),
    b'event: done\ndata: {"chat_id": "00000000-0000-0000-0000-000000000000", "message_id": "m"}\n\n',
]


async def baseline_application(scope: dict, receive: Any, send: Any) -> None:
    """What any ASGI server answers at its fastest: a tiny JSON, or for `POST /v1/chat` a fixed
    event stream shaped like a short MiniRAG answer (sources, six deltas, done), event by event."""
    if scope["type"] != "http":
        return
    more_body = True
    while more_body:  # read the request body, as any real application must
        message = await receive()
        more_body = message.get("more_body", False)
    if scope["method"] == "POST" and scope["path"] == "/v1/chat":
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")],
            }
        )
        for event in _BASELINE_EVENTS:
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(_BASELINE_JSON)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": _BASELINE_JSON})


# --- The load generator (runs in its own process) ---------------------------------------------


@dataclass
class Target:
    url: str
    bot_id: str
    tenant_token: str
    bot_token: str


@dataclass
class Recorder:
    """Latencies of the requests that started inside the measured window; errors of the whole run."""

    window: tuple[float, float] = (0.0, 0.0)  # monotonic start, end
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    requests: int = 0
    streams_started: int = 0
    streams_done: int = 0

    def measured(self, started: float) -> bool:
        return self.window[0] <= started < self.window[1]

    def add(self, name: str, started: float, milliseconds: float) -> None:
        if self.measured(started):
            self.latencies.setdefault(name, []).append(milliseconds)

    def error(self, description: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 10:
            self.error_samples.append(description[:300])


async def _chat(client: Any, target: Target, visitor: str, chat_id: str | None, question: str, rec: Recorder) -> Any:
    """One streamed turn, read to its end. Returns the chat id from `done` (None on failure)."""
    import httpx

    body: dict[str, Any] = {"bot_profile_id": target.bot_id, "message": question, "stream": True}
    if chat_id:
        body["chat_id"] = chat_id
    headers = {"Authorization": f"Bearer {target.bot_token}", "X-MiniRAG-Visitor": visitor}
    started = time.monotonic()
    rec.streams_started += 1
    first_delta: float | None = None
    done: dict | None = None
    last_event = ""
    try:
        async with client.stream("POST", f"{target.url}/v1/chat", json=body, headers=headers) as response:
            headers_at = time.monotonic()
            if response.status_code != 200:
                text = (await response.aread()).decode(errors="replace")
                rec.error(f"chat: HTTP {response.status_code} {text}")
                return None
            buffer = b""
            async for chunk in response.aiter_bytes():
                buffer += chunk
                while b"\n\n" in buffer:
                    block, buffer = buffer.split(b"\n\n", 1)
                    name, data = "", ""
                    for line in block.decode().split("\n"):
                        if line.startswith("event: "):
                            name = line[7:]
                        elif line.startswith("data: "):
                            data = line[6:]
                    if not name:
                        continue  # a keep-alive comment
                    last_event = f"{name} {data}"
                    if name == "delta" and first_delta is None:
                        first_delta = time.monotonic()
                    elif name == "done":
                        done = json.loads(data)
    except (httpx.HTTPError, ValueError) as exc:
        rec.error(f"chat: {type(exc).__name__}: {exc}")
        return None
    finished = time.monotonic()
    if done is None:
        rec.error(f"chat: the stream ended without done (last event: {last_event or 'none'})")
        return None
    rec.streams_done += 1
    rec.requests += 1
    rec.add("chat_headers", started, (headers_at - started) * 1000)
    rec.add("chat_first_delta", started, ((first_delta or finished) - started) * 1000)
    rec.add("chat_total", started, (finished - started) * 1000)
    return done.get("chat_id")


async def _read(client: Any, kind: str, path: str, headers: dict[str, str], rec: Recorder) -> None:
    import httpx

    started = time.monotonic()
    try:
        response = await client.get(path, headers=headers)
    except httpx.HTTPError as exc:
        rec.error(f"{kind}: {type(exc).__name__}: {exc}")
        return
    if not 200 <= response.status_code < 300:
        rec.error(f"{kind}: HTTP {response.status_code} {response.text}")
        return
    rec.requests += 1
    rec.add(kind, started, (time.monotonic() - started) * 1000)


async def _user(
    client: Any, target: Target, number: int, seed: int, run_id: str, end: float, rec: Recorder, mix: dict[str, int]
) -> None:
    rng = random.Random(seed * 100_003 + number)  # noqa: S311 - a reproducible mix, not a secret
    visitor = f"load-{run_id}-{number}"
    tenant = {"Authorization": f"Bearer {target.tenant_token}"}
    widget = {"Authorization": f"Bearer {target.bot_token}", "X-MiniRAG-Visitor": visitor}
    chat_id: str | None = None
    turns = 0
    kind = "chat"
    while time.monotonic() < end:
        if kind == "chat":
            if turns >= TURNS_PER_CHAT:
                chat_id, turns = None, 0
            answered = await _chat(client, target, visitor, chat_id, rng.choice(QUESTIONS), rec)
            if answered:
                chat_id, turns = answered, turns + 1
        elif kind == "messages":
            await _read(client, kind, f"{target.url}/v1/chat/{chat_id}/messages", widget, rec)
        elif kind == "sources":
            await _read(client, kind, f"{target.url}/v1/sources?bot_profile_id={target.bot_id}", tenant, rec)
        else:
            await _read(client, kind, f"{target.url}/v1/bot-profiles", tenant, rec)
        kind = rng.choices(list(mix), weights=list(mix.values()))[0]
        if kind == "messages" and chat_id is None:
            kind = "chat"


async def generate(config: dict[str, Any]) -> dict[str, Any]:
    """Prime (one chat and one read, one after the other), warm up, then measure. Returns the
    summary the orchestrator reports, with the measured window in wall-clock time."""
    import httpx

    target = Target(**config["target"])
    users, warmup, duration = int(config["users"]), float(config["warmup"]), float(config["duration"])
    rec = Recorder()
    limits = httpx.Limits(max_connections=users + 4, max_keepalive_connections=users + 4)
    async with httpx.AsyncClient(limits=limits, timeout=REQUEST_TIMEOUT_SECONDS) as client:
        run_started_wall = time.time()
        await _chat(client, target, f"load-{config['run_id']}-prime", None, QUESTIONS[0], rec)
        await _read(
            client, "sources", f"{target.url}/v1/sources", {"Authorization": f"Bearer {target.tenant_token}"}, rec
        )
        now = time.monotonic()
        rec.window = (now + warmup, now + warmup + duration)
        measure_start_wall = time.time() + warmup
        await asyncio.gather(
            *(
                _user(client, target, number, int(config["seed"]), config["run_id"], rec.window[1], rec, config["mix"])
                for number in range(users)
            )
        )
        run_ended_wall = time.time()
    kinds = {}
    for name, values in sorted(rec.latencies.items()):
        kinds[name] = {
            "count": len(values),
            "per_second": len(values) / duration,
            "p50": percentile(values, 0.50),
            "p95": percentile(values, 0.95),
            "p99": percentile(values, 0.99),
            "max": max(values),
            "mean": statistics.fmean(values),
        }
    return {
        "kinds": kinds,
        "errors": rec.errors,
        "error_samples": rec.error_samples,
        "requests_total": rec.requests,
        "streams_started": rec.streams_started,
        "streams_done": rec.streams_done,
        "measured_requests": sum(len(v) for k, v in rec.latencies.items() if k not in ("chat_headers", "chat_total")),
        "run_started": run_started_wall,
        "measure_start": measure_start_wall,
        "measure_end": measure_start_wall + duration,
        "run_ended": run_ended_wall,
    }


def generator_main(config_path: str, result_path: str) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # plain asyncio is fine, only a little slower
        pass
    config = json.loads(Path(config_path).read_text())
    Path(result_path).write_text(json.dumps(asyncio.run(generate(config))))


# --- Servers, database, seed ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_environment() -> dict[str, str]:
    """This process's environment without any MiniRAG, Django or service setting (a test run's
    settings must not leak into the server)."""
    prefixes = ("MINIRAG_", "DJANGO_", "DATABASE_", "REDIS_", "QDRANT_", "CELERY_", "SENTRY_", "OPENAI_")
    return {key: value for key, value in os.environ.items() if not key.startswith(prefixes)}


def with_user(url: str, user: str, database: str | None = None) -> str:
    parts = urlsplit(url)
    netloc = f"{user}@{parts.hostname or '127.0.0.1'}:{parts.port or 5432}"
    return urlunsplit(parts._replace(netloc=netloc, path=f"/{database}" if database else parts.path))


def with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


class Server:
    """One uvicorn process serving `app`, on a free loopback port."""

    def __init__(self, app: str, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "uvicorn",
                app,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--lifespan",
                "off",
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            # A crash in native code (seen once: a segfault under load) prints every thread's Python
            # stack to stderr instead of dying silently.
            env={**env, "PYTHONFAULTHANDLER": "1"},
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float = 90) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server ({self.url}) exited with status {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the server ({self.url}) did not answer /health within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


class ThrowawayDatabase:
    """A PostgreSQL database created for one run and dropped after it. `superuser_url` names the
    server and the name's prefix (a random suffix is added, so nothing existing is ever dropped)."""

    def __init__(self, superuser_url: str, app_role: str | None) -> None:
        parts = urlsplit(superuser_url)
        if parts.scheme not in ("postgres", "postgresql", "pgsql"):
            raise SystemExit(
                "bench/load.py needs PostgreSQL (--database-url postgres://...): SQLite serialises writers"
            )
        self.name = f"{(parts.path.lstrip('/') or 'minirag_load')[:40]}_{secrets.token_hex(4)}"
        self.superuser_url = with_database(superuser_url, self.name)
        self.maintenance_url = with_database(superuser_url, "postgres")
        self.app_role = app_role
        self.app_url = with_user(self.superuser_url, app_role) if app_role else self.superuser_url

    def create(self) -> None:
        import psycopg

        with psycopg.connect(self.maintenance_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{self.name}"')
            if (
                self.app_role
                and not admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [self.app_role]).fetchone()
            ):
                admin.execute(f'CREATE ROLE "{self.app_role}" LOGIN NOSUPERUSER NOBYPASSRLS')

    def install_write_counter(self) -> None:
        """Every UPDATE statement on tenants_apitoken, and every row it writes, leaves a
        timestamped line in a side table: a statement-level trigger fires even when the statement
        matched no row. The trigger function runs as its owner (SECURITY DEFINER), so the app role
        needs no grant and sees nothing new."""
        import psycopg

        with psycopg.connect(self.superuser_url, autocommit=True) as connection:
            connection.execute(
                "CREATE TABLE load_apitoken_writes (at timestamptz NOT NULL DEFAULT clock_timestamp(), level text)"
            )
            connection.execute(
                "CREATE FUNCTION load_count_apitoken_write() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER "
                "SET search_path = public AS $$ BEGIN "
                "INSERT INTO load_apitoken_writes (level) VALUES (lower(TG_LEVEL)); RETURN NULL; END $$"
            )
            for level in ("ROW", "STATEMENT"):
                connection.execute(
                    f"CREATE TRIGGER load_count_apitoken_{level.lower()} AFTER UPDATE ON tenants_apitoken "
                    f"FOR EACH {level} EXECUTE FUNCTION load_count_apitoken_write()"
                )

    def apitoken_writes(self, start: float, end: float) -> dict[str, int]:
        """UPDATE statements (`statement`) and rows written (`row`) between two wall-clock times."""
        import psycopg

        with psycopg.connect(self.superuser_url, autocommit=True) as connection:
            rows = connection.execute(
                "SELECT level, count(*) FROM load_apitoken_writes "
                "WHERE at >= to_timestamp(%s) AND at <= to_timestamp(%s) GROUP BY level",
                [start, end],
            ).fetchall()
        return {"row": 0, "statement": 0, **{level: int(count) for level, count in rows}}

    def apitoken_updates_stat(self, wait_for_backends: bool = False) -> int:
        """`n_tup_upd` of tenants_apitoken. Backends report their counts when they exit (or
        idle), so after the server stops, wait until its connections are gone."""
        import psycopg

        with psycopg.connect(self.superuser_url, autocommit=True) as connection:
            deadline = time.monotonic() + 15
            while wait_for_backends and time.monotonic() < deadline:
                others = connection.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ).fetchone()
                if not others or not others[0]:
                    break
                time.sleep(0.2)
            time.sleep(0.5 if wait_for_backends else 0)
            connection.execute("SELECT pg_stat_clear_snapshot()")
            row = connection.execute(
                "SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'tenants_apitoken'"
            ).fetchone()
        return int(row[0]) if row else 0

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(self.maintenance_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def seed(url: str, slug: str) -> Target:
    """Tenant, bot, an ingested text source and a bot token, all through the HTTP API."""
    import httpx

    with httpx.Client(base_url=url, timeout=60) as client:
        response = client.post(
            "/v1/tenants",
            json={
                "tenant_name": "Load",
                "tenant_slug": slug,
                "owner_email": "load@example.com",
                "owner_password": secrets.token_urlsafe(16),
            },
        )
        response.raise_for_status()
        tenant_token = response.json()["api_token"]
        client.headers["Authorization"] = f"Bearer {tenant_token}"
        response = client.post(
            "/v1/bot-profiles",
            json={
                "name": "Load bot",
                "model": "bench/instant",
                "embedding_model": "local/minilm",
                "similarity_threshold": 0,
            },
        )
        response.raise_for_status()
        bot_id = response.json()["id"]
        bot_token = seed_knowledge_and_widget_token(client, bot_id, {"Handbook": HANDBOOK}, token_name="Load widget")
        return Target(url=url, bot_id=bot_id, tenant_token=tenant_token, bot_token=bot_token)


def seed_knowledge_and_widget_token(client: Any, bot_id: str, documents: dict[str, str], *, token_name: str) -> str:
    """Text sources of the bot, ingested by the server (waited for until ready), and a widget token
    of the bot; its raw value."""
    source_ids = []
    for name, text in documents.items():
        response = client.post(
            "/v1/sources", json={"bot_profile_id": bot_id, "name": name, "source_type": "text", "content": text}
        )
        response.raise_for_status()
        source_ids.append(response.json()["id"])
        client.post(f"/v1/sources/{source_ids[-1]}/ingest").raise_for_status()
    deadline = time.monotonic() + 180
    for source_id in source_ids:
        while True:
            source = client.get(f"/v1/sources/{source_id}").json()
            if source["status"] == "ready":
                break
            if source["status"] == "error" or time.monotonic() > deadline:
                raise RuntimeError(f"a seed source did not become ready: {source}")
            time.sleep(0.1)
    response = client.post("/v1/api-tokens", json={"name": token_name, "bot_profile_id": bot_id})
    response.raise_for_status()
    return response.json()["raw_token"]


# --- One measured run against one server --------------------------------------------------------


@dataclass
class RunResult:
    summary: dict[str, Any]
    rss: list[tuple[float, float]]  # (wall time, MB), every second while the generator ran
    rss_before_load: float
    cpu: list[tuple[float, float]]  # (wall time, the server's CPU seconds so far), every second

    @property
    def cpu_ms_per_request(self) -> float:
        """The server's CPU time in the measured window per request completed in it."""
        start, end = self.summary["measure_start"], self.summary["measure_end"]
        inside = [seconds for at, seconds in self.cpu if start <= at <= end]
        if len(inside) < 2 or not self.summary["measured_requests"]:
            return 0.0
        covered = (end - start) / max(1e-9, self.cpu_span(start, end))
        return (inside[-1] - inside[0]) * covered * 1000 / self.summary["measured_requests"]

    def cpu_span(self, start: float, end: float) -> float:
        times = [at for at, _ in self.cpu if start <= at <= end]
        return times[-1] - times[0] if len(times) > 1 else 0.0

    def _window(self, start: float, end: float) -> list[float]:
        return [mb for at, mb in self.rss if start <= at <= end]

    @property
    def memory(self) -> dict[str, float]:
        start, end = self.summary["measure_start"], self.summary["measure_end"]
        third = (end - start) / 3
        window = self._window(start, end) or [mb for _, mb in self.rss]
        first, last = self._window(start, start + third) or window[:1], self._window(end - third, end) or window[-1:]
        return {
            "before_load": self.rss_before_load,
            "after_warmup": window[0],
            "end": window[-1],
            "max": max(window),
            "first_third": statistics.median(first),
            "last_third": statistics.median(last),
            "growth": statistics.median(last) - statistics.median(first),
        }

    def kind(self, name: str) -> dict[str, float]:
        return self.summary["kinds"].get(name, {})


def drive(
    target: Target,
    server_pid: int,
    *,
    users: int,
    warmup: float,
    duration: float,
    seed: int,
    kinds: tuple[str, ...] = tuple(MIX),
) -> RunResult:
    """Run the load generator process against `target` and sample the server's memory every
    second while it runs. The generator is killed if it overruns its time by a minute."""
    with tempfile.TemporaryDirectory(prefix="minirag-load-") as work:
        config_path, result_path = Path(work) / "config.json", Path(work) / "result.json"
        config = {
            "target": target.__dict__,
            "users": users,
            "warmup": warmup,
            "duration": duration,
            "seed": seed,
            "mix": {kind: MIX[kind] for kind in kinds},
            "run_id": secrets.token_hex(3),
        }
        config_path.write_text(json.dumps(config))
        before = rss_mb(server_pid)
        generator = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, str(Path(__file__).resolve()), "generate", str(config_path), str(result_path)],
            cwd=ROOT,
            env=clean_environment(),
        )
        deadline = time.monotonic() + warmup + duration + REQUEST_TIMEOUT_SECONDS + 60
        samples: list[tuple[float, float]] = []
        cpu: list[tuple[float, float]] = []
        while True:
            now = time.time()
            samples.append((now, rss_mb(server_pid)))
            cpu.append((now, cpu_seconds(server_pid)))
            try:
                generator.wait(timeout=1)
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline:
                    generator.kill()
                    generator.wait(timeout=10)
                    raise RuntimeError("the load generator overran its time and was stopped") from None
        if generator.returncode != 0:
            raise RuntimeError(f"the load generator failed with status {generator.returncode}")
        return RunResult(summary=json.loads(result_path.read_text()), rss=samples, rss_before_load=before, cpu=cpu)


# --- The whole benchmark ---------------------------------------------------------------------


@dataclass
class LoadOptions:
    database_url: str  # a superuser URL; its database name is the throwaway database's prefix
    redis_url: str = "redis://127.0.0.1:6379/5"
    users: int = 32
    duration: float = 30.0
    warmup: float = 5.0
    baseline: bool = True
    seed: int = 1
    kinds: tuple[str, ...] = tuple(MIX)  # the request kinds in the mix (MIX's weights among them)


@dataclass
class LoadReport:
    options: LoadOptions
    minirag: RunResult
    baseline: RunResult | None
    row_level_security: bool
    apitoken_writes_run: int  # rows written, warm-up and measured window
    apitoken_writes_measured: int  # rows written, measured window
    apitoken_update_statements_run: int  # UPDATE statements, even those that matched no row
    apitoken_updates_lifetime: int  # pg_stat n_tup_upd over the server's life, seed included
    redis_keys: int  # cache keys the run left in Redis (rate-limit windows): proof they were counted there
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]

    @property
    def errors(self) -> int:
        return self.minirag.summary["errors"] + (self.baseline.summary["errors"] if self.baseline else 0)

    @property
    def streams_without_done(self) -> int:
        return self.minirag.summary["streams_started"] - self.minirag.summary["streams_done"]

    @property
    def passed(self) -> bool:
        minutes = (self.options.warmup + self.options.duration) / 60
        return (
            self.errors == 0
            and self.streams_without_done == 0
            and self.minirag.memory["growth"] < MEMORY_GROWTH_LIMIT_MB
            and self.apitoken_writes_run <= max(2, 2 * (int(minutes) + 1))
        )


def server_environment(data_dir: Path, database_url: str, redis_url: str, cache_prefix: str) -> dict[str, str]:
    return {
        **clean_environment(),
        **embedded_environment(data_dir, database_url),
        "MINIRAG_ALLOWED_HOSTS": "*",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "REDIS_URL": redis_url,
        "MINIRAG_CACHE_PREFIX": cache_prefix,
        "MINIRAG_TASKS_IN_PROCESS": "true",
        "MINIRAG_TASKS_RUN_INLINE": "false",
        "MINIRAG_SIGNUP_RATE": "1000/minute",
        "MINIRAG_DEFAULT_EMBEDDING_MODEL": "local/minilm",
        **RAISED_RATE_LIMITS,
    }


def _delete_redis_keys(redis_url: str, prefix: str) -> int:
    """Remove the run's cache keys (the rate-limit counters, mostly); returns how many there were."""
    if not redis_url:
        return 0
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    finally:
        client.close()
    return len(keys)


def run(options: LoadOptions) -> LoadReport:
    """Baseline first (if asked), then MiniRAG; every resource created here is removed again."""
    load_before = os.getloadavg()
    baseline = None
    if options.baseline:
        server = Server("bench.load:baseline_application", clean_environment())
        try:
            server.wait_ready()
            fake = Target(
                url=server.url, bot_id="00000000-0000-0000-0000-000000000000", tenant_token="t", bot_token="b"
            )
            baseline = drive(
                fake,
                server.pid,
                users=options.users,
                warmup=options.warmup,
                duration=options.duration,
                seed=options.seed,
                kinds=options.kinds,
            )
        finally:
            server.stop()

    row_level_security = (ROOT / "tenants" / "rls.py").exists()
    database = ThrowawayDatabase(options.database_url, APP_ROLE if row_level_security else None)
    cache_prefix = f"minirag-load-{secrets.token_hex(4)}"
    database.create()
    try:
        with tempfile.TemporaryDirectory(prefix="minirag-load-") as data_dir:
            env = server_environment(Path(data_dir), database.app_url, options.redis_url, cache_prefix)
            migrate_env = {**env, "MINIRAG_DATABASE_OWNER_URL": database.superuser_url} if row_level_security else env
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=migrate_env, check=True
            )
            database.install_write_counter()
            updates_before = database.apitoken_updates_stat()
            server = Server("bench.bench_asgi:application", env)
            try:
                server.wait_ready()
                target = seed(server.url, f"load-{secrets.token_hex(4)}")
                minirag = drive(
                    target,
                    server.pid,
                    users=options.users,
                    warmup=options.warmup,
                    duration=options.duration,
                    seed=options.seed,
                    kinds=options.kinds,
                )
            finally:
                server.stop()
            summary = minirag.summary
            writes_run = database.apitoken_writes(summary["run_started"], summary["run_ended"])
            writes_measured = database.apitoken_writes(summary["measure_start"], summary["measure_end"])["row"]
            updates_lifetime = database.apitoken_updates_stat(wait_for_backends=True) - updates_before
    finally:
        database.drop()
        redis_keys = _delete_redis_keys(options.redis_url, cache_prefix)
    return LoadReport(
        options=options,
        minirag=minirag,
        baseline=baseline,
        row_level_security=row_level_security,
        apitoken_writes_run=writes_run["row"],
        apitoken_update_statements_run=writes_run["statement"],
        apitoken_writes_measured=writes_measured,
        apitoken_updates_lifetime=updates_lifetime,
        redis_keys=redis_keys,
        load_before=load_before,
        load_after=os.getloadavg(),
    )


LABELS = {
    "chat_first_delta": "chat stream, first delta",
    "chat_total": "chat stream, to the end",
    "messages": "GET /v1/chat/{id}/messages",
    "sources": "GET /v1/sources",
    "bot_profiles": "GET /v1/bot-profiles",
}


def format_report(report: LoadReport) -> str:
    options, summary = report.options, report.minirag.summary
    database = f"row-level security, app role {APP_ROLE}" if report.row_level_security else "superuser"
    lines = [
        f"MiniRAG under load: {options.users} users for {options.duration:.0f} s after a "
        f"{options.warmup:.0f} s warm-up; one uvicorn process; PostgreSQL ({database}); "
        f"{'Redis' if options.redis_url else 'in-process'} rate limits; bench/instant model, local/minilm embeddings",
        *([] if options.kinds == tuple(MIX) else [f"only: {', '.join(options.kinds)}"]),
        f"load average before {report.load_before[0]:.2f}, after {report.load_after[0]:.2f}",
        "",
        f"{'kind':30} {'count':>7} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}"
        + (f" {'base p50':>9} {'base p99':>9} {'x p50':>6} {'x p99':>6}" if report.baseline else ""),
    ]
    for name, label in LABELS.items():
        row = report.minirag.kind(name)
        if not row:
            continue
        line = (
            f"{label:30} {row['count']:>7} {row['per_second']:>7.1f} {row['p50']:>8.1f} {row['p95']:>8.1f} "
            f"{row['p99']:>8.1f} {row['max']:>8.1f}"
        )
        base = report.baseline.kind(name) if report.baseline else {}
        if base:
            line += f" {base['p50']:>9.2f} {base['p99']:>9.2f}"
            line += f" {row['p50'] / base['p50']:>6.1f} {row['p99'] / base['p99']:>6.1f}"
        lines.append(line)
    duration = options.duration
    total = summary["measured_requests"] / duration
    throughput = f"throughput: {total:.1f} requests/s (streams counted once)"
    if report.baseline:
        base_total = report.baseline.summary["measured_requests"] / duration
        throughput += f"; baseline {base_total:.1f} requests/s (MiniRAG / baseline {total / base_total:.3f})"
    memory = report.minirag.memory
    cpu = f"server CPU per request (the window's CPU time / its requests): {report.minirag.cpu_ms_per_request:.1f} ms"
    if report.baseline:
        base_cpu = report.baseline.cpu_ms_per_request
        cpu += f"; baseline {base_cpu:.2f} ms (MiniRAG / baseline {report.minirag.cpu_ms_per_request / base_cpu:.0f})"
    lines += [
        "",
        throughput,
        cpu,
        f"errors: {report.errors} (warm-up included); streams: {summary['streams_started']} started, "
        f"{summary['streams_done']} ended with done; requests in all (warm-up included): {summary['requests_total']}",
        f"server memory (VmRSS): {memory['before_load']:.0f} MB before the load, {memory['after_warmup']:.0f} MB after "
        f"the warm-up, {memory['end']:.0f} MB at the end, max {memory['max']:.0f} MB; first third → last third "
        f"{memory['first_third']:.1f} → {memory['last_third']:.1f} MB ({memory['growth']:+.1f} MB, bound "
        f"{MEMORY_GROWTH_LIMIT_MB:.0f} MB)",
        f"tenants_apitoken: {report.apitoken_writes_run} rows written by {report.apitoken_update_statements_run} "
        f"UPDATE statements during the load ({report.apitoken_writes_measured} rows in the measured window) for "
        f"{summary['requests_total']} authenticated requests; n_tup_upd over the server's life, seed included: "
        f"{report.apitoken_updates_lifetime}",
        f"rate limits: counted in Redis ({report.redis_keys} window keys under the run's prefix, deleted)"
        if options.redis_url
        else "rate limits: counted in the server's in-process cache",
    ]
    start = report.minirag.summary["measure_start"]
    series = " ".join(f"{mb:.0f}" for at, mb in report.minirag.rss[::5] if at >= start)
    lines.append(f"server memory every 5 s from the end of the warm-up (MB): {series}")
    if summary["error_samples"]:
        lines += ["first errors:", *(f"  {sample}" for sample in summary["error_samples"])]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=32, help="Concurrent virtual users (default 32).")
    parser.add_argument("--duration", type=float, default=30, help="Measured seconds (default 30).")
    parser.add_argument("--warmup", type=float, default=5, help="Warm-up seconds before measuring (default 5).")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("MINIRAG_LOAD_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/minirag_load"),
        help="PostgreSQL superuser URL; its database name is the prefix of the throwaway database.",
    )
    parser.add_argument(
        "--redis-url", default="redis://127.0.0.1:6379/5", help="Redis for the rate limits ('' = in-process cache)."
    )
    parser.add_argument("--no-baseline", action="store_true", help="Skip the bare-ASGI baseline.")
    parser.add_argument("--seed", type=int, default=1, help="Seed of the request mix.")
    parser.add_argument(
        "--only",
        action="append",
        choices=list(MIX),
        help="Load with only this kind of request (repeatable): the CPU per request of one kind. "
        "A user's first request is a chat, and `messages` needs one.",
    )
    args = parser.parse_args()
    report = run(
        LoadOptions(
            database_url=args.database_url,
            redis_url=args.redis_url,
            users=args.users,
            duration=args.duration,
            warmup=args.warmup,
            baseline=not args.no_baseline,
            seed=args.seed,
            kinds=tuple(args.only or MIX),
        )
    )
    print(format_report(report))
    print(
        f"targets (zero errors, every stream done, memory flat, no token write per request): "
        f"{'met' if report.passed else 'MISSED'}"
    )
    return 0 if report.passed else 1


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "generate":
        generator_main(sys.argv[2], sys.argv[3])
    else:
        sys.exit(main())
