#!/usr/bin/env python
"""A burst of simultaneous streamed chats: are they served in arrival order, and how far from an
ideal first-come-first-served schedule?

    .venv/bin/python bench/burst.py                      # 200 turns at once, embedded mode (≈ 1 min)
    .venv/bin/python bench/burst.py --quick              # 20 turns: a smoke run (≈ 18 s)
    .venv/bin/python bench/burst.py --slots 0            # the same with the admission gate off
    .venv/bin/python bench/burst.py --queue-limit 50     # over the limit: 503 + Retry-After
    .venv/bin/python bench/burst.py --database-url postgres://postgres@127.0.0.1:5432/minirag_burst

What runs where:

* **the server**: the real application (`minirag.asgi:application` with the benchmark models of
  bench/providers.py) in ONE uvicorn process on loopback, flags as `make run`. Embedded mode by
  default, as the outside team measured it: SQLite and local-mode Qdrant in a temporary
  directory, the offline `local/minilm` embedder. With --database-url, PostgreSQL instead: a
  throwaway database named after the URL's (created and dropped here).
* **the model**: `bench/fixed`, a fixed-latency stand-in registered as a LiteLLM custom provider
  (no network): its first token after --first-token-delay seconds, then --words - 1 more, one
  every --word-delay seconds, however loaded the server is — a provider on the network.
* **the seed**, through the HTTP API: a tenant, a bot on `bench/fixed`, a few text documents
  ingested by the server, and a widget (bot) token.
* **the client**: this process: plain HTTP/1.1 over asyncio streams for the turns (as light as a
  client can be, so that its own CPU and connection pool do not decide the order in which requests
  reach the server), httpx for the seed and the reads. Each turn is a widget visitor of its own.

What is measured, in order, all in the same run:

1. **Reads at rest**: GET /v1/sources and GET /v1/chat/{id}/messages, one after the other.
2. **The cost of one turn alone**: --sequential streamed turns one after the other (after a
   warm-up). The CPU-bound phase of a turn is its time to the first delta minus the model's
   fixed delay before its first token (authentication, storing the question, embedding it, the
   search, the prompt); the tail is the time from the first delta to `done`; and the server's
   CPU time per turn (all its threads, from /proc) is measured over the same turns.
3. **The burst**: --turns streamed turns sent --stagger-ms apart, each on a connection opened
   beforehand (so the arrival order is the send order; --cold-connections connects each turn as
   it is sent), all open at once; per turn the time to the response headers, to the first delta,
   to `done`, and any error (a non-200 answer, a transport error, a stream without `done`). 503s
   are counted apart with their Retry-After. While the burst runs, the reads of step 1 repeat
   every --read-every seconds: their latency under the burst against at rest.

Then: the Spearman correlation between arrival rank and first-delta rank, and the ideal
first-come-first-served schedule computed from the measured CPU cost: in arrival order, each turn
takes one of the machine's cores for the server's CPU time per turn (the smaller of alone and in
the burst), then waits the model's first token and the rest of its stream, with no other cost:
what a perfect scheduler on these cores could do. Reported: p95 time to done measured / p95 of that
ideal. Also printed, for reference, a stricter ideal that no Python process reaches: the gate's
slots each held only for the CPU-bound phase measured alone (wall clock), as if streaming and
storing the answer cost nothing and the GIL did not hold the process to about one core. Targets
(issue 19): Spearman ≥ 0.9, the ratio ≤ 1.5, zero errors. Exit status 1 when one is missed (with
--quick: only on errors). The last line is the summary as JSON (`BURST {...}`).
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import embedded_environment  # noqa: E402
from bench.load import (  # noqa: E402
    RAISED_RATE_LIMITS,
    Server,
    ThrowawayDatabase,
    clean_environment,
    cpu_seconds,
    percentile,
    seed_knowledge_and_widget_token,
)

DOCUMENTS = {
    "Shipping": (
        "Orders placed before two in the afternoon ship the same working day. Delivery inside the country "
        "takes one to three working days; express delivery arrives the next day. We ship to every country "
        "of the European Union and to Switzerland, Norway and the United Kingdom; delivery abroad takes "
        "three to seven working days. The delivery address can be changed until the parcel has been handed "
        "to the carrier."
    ),
    "Returns and refunds": (
        "Any item can be returned within thirty days of delivery, unused and in its original packaging. "
        "The return label is free inside the country. Refunds take five working days from the day the "
        "returned parcel arrives at our warehouse; the money goes back to the payment method of the order."
    ),
    "Opening hours": (
        "The office opens at nine in the morning and closes at five in the afternoon, Monday to Friday. "
        "On public holidays the office is closed. The phone line answers from ten to four."
    ),
    "Payment": (
        "We accept credit cards, debit cards, bank transfer and invoices for business customers. Invoices "
        "are payable within fourteen days. Gift cards are valid for three years and can be combined with "
        "any payment method; they cannot be exchanged for cash."
    ),
    "Warranty and accounts": (
        "Every product carries a two-year warranty from the date of delivery. Defects are repaired or the "
        "product is replaced; shipping for warranty claims is free. A forgotten password is reset from the "
        "login page: enter the account's email address and follow the link, valid for one hour."
    ),
}
QUESTIONS = [
    "How long does shipping take",
    "How do refunds work",
    "When is the office open",
    "Can I change my delivery address",
    "Do you ship abroad",
    "How do I reset my password",
    "What payment methods do you accept",
    "How long is the warranty",
]
TIMEOUT_SECONDS = 300.0


# --- Seed ----------------------------------------------------------------------------------------


@dataclass
class Target:
    url: str
    bot_id: str
    tenant_token: str
    bot_token: str
    chat_id: str = ""  # a chat of the reader visitor, for GET /v1/chat/{id}/messages


def seed(url: str, model: str = "bench/fixed", name: str = "Burst") -> Target:
    """A tenant, a bot on `model`, the documents ingested, a widget token — through the API."""
    import httpx

    with httpx.Client(base_url=url, timeout=120) as client:
        response = client.post(
            "/v1/tenants",
            json={
                "tenant_name": name,
                "tenant_slug": f"{name.lower()}-{secrets.token_hex(4)}",
                "owner_email": "burst@example.com",
                "owner_password": secrets.token_urlsafe(16),
            },
        )
        response.raise_for_status()
        tenant_token = response.json()["api_token"]
        client.headers["Authorization"] = f"Bearer {tenant_token}"
        response = client.post(
            "/v1/bot-profiles",
            json={
                "name": f"{name} bot",
                "model": model,
                "embedding_model": "local/minilm",
                "similarity_threshold": 0,  # every question is answered by the model (none refused)
            },
        )
        response.raise_for_status()
        bot_id = response.json()["id"]
        bot_token = seed_knowledge_and_widget_token(client, bot_id, DOCUMENTS, token_name=f"{name} widget")
        return Target(url=url, bot_id=bot_id, tenant_token=tenant_token, bot_token=bot_token)


# --- One streamed turn ---------------------------------------------------------------------------


@dataclass
class Turn:
    number: int
    sent: float = 0.0  # monotonic, right before the request is sent
    status: int = 0
    headers: float | None = None  # the response started: the view's synchronous part is over
    first_delta: float | None = None
    done: float | None = None
    error: str = ""
    retry_after: str = ""  # the Retry-After of a 503
    chat_id: str = ""

    @property
    def refused(self) -> bool:
        return self.status == 503


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def open_connection(target: Target) -> Connection:
    parts = urlsplit(target.url)
    return await asyncio.open_connection(parts.hostname, parts.port)


async def stream_turn(
    target: Target,
    turn: Turn,
    question: str,
    visitor: str,
    connection: Connection | None = None,
    timeout: float = TIMEOUT_SECONDS,
) -> Turn:
    """One streamed turn over plain HTTP/1.1 (a client as light as can be: its own CPU time and
    connection pool must not decide the order in which requests reach the server). `turn.sent` is
    the moment the request is written, on `connection` if given (opened beforehand)."""
    try:
        return await asyncio.wait_for(_stream_turn(target, turn, question, visitor, connection), timeout)
    except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
        turn.error = turn.error or f"{type(exc).__name__}: {exc}"
        return turn


async def _stream_turn(target: Target, turn: Turn, question: str, visitor: str, connection: Connection | None) -> Turn:
    reader, writer = connection or await open_connection(target)
    try:
        body = json.dumps({"bot_profile_id": target.bot_id, "message": question, "stream": True}).encode()
        head = (
            f"POST /v1/chat HTTP/1.1\r\nHost: {urlsplit(target.url).netloc}\r\n"
            f"Authorization: Bearer {target.bot_token}\r\nX-MiniRAG-Visitor: {visitor}\r\n"
            f"Accept: text/event-stream\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        turn.sent = time.monotonic()
        writer.write(head + body)
        await writer.drain()
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection without an answer")
        turn.status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        turn.headers = time.monotonic()
        if turn.status != 200:
            text = (await reader.read()).decode(errors="replace")
            turn.retry_after = headers.get("retry-after", "")
            turn.error = f"HTTP {turn.status} {headers.get('content-type')} {text[:200]}"
            return turn
        buffer = b""
        async for data in _chunks(reader):
            buffer += data
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                name, payload = "", ""
                for line in block.decode().split("\n"):
                    if line.startswith("event: "):
                        name = line[7:]
                    elif line.startswith("data: "):
                        payload = line[6:]
                if name == "delta" and turn.first_delta is None:
                    turn.first_delta = time.monotonic()
                elif name == "done":
                    turn.done = time.monotonic()
                    turn.chat_id = json.loads(payload)["chat_id"]
                elif name == "error":
                    turn.error = f"error event: {payload}"
    finally:
        writer.close()
    if turn.done is None and not turn.error:
        turn.error = "the stream ended without done"
    return turn


async def _chunks(reader: asyncio.StreamReader) -> Any:
    """The body of a chunked response, chunk by chunk."""
    while True:
        size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            return
        yield await reader.readexactly(size)
        await reader.readexactly(2)


# --- Reads ---------------------------------------------------------------------------------------


async def read_once(client: Any, target: Target, kind: str) -> float:
    """One read; milliseconds. A failed read raises."""
    if kind == "sources":
        url, headers = f"{target.url}/v1/sources", {"Authorization": f"Bearer {target.tenant_token}"}
    else:
        url = f"{target.url}/v1/chat/{target.chat_id}/messages"
        headers = {"Authorization": f"Bearer {target.bot_token}", "X-MiniRAG-Visitor": "burst-reader"}
    started = time.monotonic()
    response = await client.get(url, headers=headers)
    response.raise_for_status()
    return (time.monotonic() - started) * 1000


async def reads_until(client: Any, target: Target, stop: asyncio.Event, every: float, out: dict) -> None:
    """The two reads, alternately, every `every` seconds until `stop` (one at a time)."""
    kinds = ("sources", "messages")
    number = 0
    while not stop.is_set():
        kind = kinds[number % 2]
        number += 1
        try:
            out.setdefault(kind, []).append(await read_once(client, target, kind))
        except Exception as exc:  # noqa: BLE001 - a failed read is an error of the run, counted
            out.setdefault("errors", []).append(f"{kind}: {type(exc).__name__}: {exc}")
        with_timeout = asyncio.wait_for(stop.wait(), timeout=every)
        try:
            await with_timeout
        except TimeoutError:
            pass


# --- Statistics ----------------------------------------------------------------------------------


def ranks(values: list[float]) -> list[float]:
    """1-based ranks, ties sharing their average rank."""
    order = sorted(range(len(values)), key=values.__getitem__)
    result = [0.0] * len(values)
    position = 0
    while position < len(order):
        end = position
        while end + 1 < len(order) and values[order[end + 1]] == values[order[position]]:
            end += 1
        for index in order[position : end + 1]:
            result[index] = (position + end) / 2 + 1
        position = end + 1
    return result


def spearman(first: list[float], second: list[float]) -> float:
    """Spearman's rank correlation (the Pearson correlation of the ranks)."""
    if len(first) < 2:
        return float("nan")
    a, b = ranks(first), ranks(second)
    mean_a, mean_b = statistics.fmean(a), statistics.fmean(b)
    covariance = sum((x - mean_a) * (y - mean_b) for x, y in zip(a, b, strict=True))
    spread = (sum((x - mean_a) ** 2 for x in a) * sum((y - mean_b) ** 2 for y in b)) ** 0.5
    return covariance / spread if spread else float("nan")


def ideal_fcfs(arrivals: list[float], *, slots: int, service: float, after: float) -> list[tuple[float, float]]:
    """The ideal first-come-first-served schedule: each turn, in arrival order, takes the first free
    of `slots` slots for `service` seconds (its CPU-bound phase), then needs `after` seconds more
    (the model and the rest of its stream), with no other cost at all. Per turn: (time to the
    first delta, time to done), from its arrival."""
    free = [0.0] * max(1, slots)
    heapq.heapify(free)
    result = []
    for arrival in arrivals:
        start = max(arrival, heapq.heappop(free))
        heapq.heappush(free, start + service)
        result.append((start + service - arrival, start + service + after - arrival))
    return result


# --- The run -------------------------------------------------------------------------------------


@dataclass
class BurstOptions:
    turns: int = 200
    sequential: int = 20
    stagger_ms: float = 2.0
    first_token_delay: float = 0.5
    words: int = 20
    word_delay: float = 0.025
    read_every: float = 0.1
    slots: int | None = None  # None: the server's default
    queue_limit: int | None = None
    database_url: str | None = None
    quick: bool = False
    cold_connections: bool = False  # no connections opened before the burst
    profile: str | None = None  # py-spy's collapsed stacks of the server during the burst
    dump: str | None = None  # every turn of the burst as JSON (sent, headers, first delta, done, error)


@dataclass
class BurstReport:
    options: dict[str, Any]
    database: str
    slots: int  # the gate's slots (0: off)
    ideal_slots: int  # the machine's cores
    cost_ms: float  # median CPU-bound phase of one turn alone (wall clock)
    cost_p90_ms: float
    tail_ms: float  # median first delta → done of one turn alone
    alone_done_ms: float
    answered: int
    errors: int
    refused: int
    retry_after: list[str]
    error_samples: list[str]
    spearman: float
    headers_alone_ms: float  # time to the response's headers, alone: the view's synchronous part
    headers_p50_ms: float
    headers_p95_ms: float
    first_delta_p50_ms: float
    first_delta_p95_ms: float
    done_p50_ms: float
    done_p95_ms: float
    done_max_ms: float
    cpu_cost_ms: float  # the server's CPU time per turn that the ideal schedule uses
    phase_slots: int
    phase_ideal_done_p95_ms: float
    phase_ratio_p95: float
    ideal_first_delta_p50_ms: float
    ideal_done_p50_ms: float
    ideal_done_p95_ms: float
    ratio_p95: float  # the target's: p95 time to done / the ideal's (on the cores, from the CPU time)
    burst_seconds: float
    server_cpu_alone_ms: float  # the server's CPU time per turn alone (all its threads)
    server_cpu_burst_ms: float  # per turn of the burst (reads included: a few)
    client_cpu_burst_s: float  # this process's CPU time during the burst (it shares the machine)
    reads_at_rest: dict[str, dict[str, float]] = field(default_factory=dict)
    reads_under_burst: dict[str, dict[str, float]] = field(default_factory=dict)
    read_errors: list[str] = field(default_factory=list)

    @property
    def targets_met(self) -> bool:
        return self.errors == 0 and self.spearman >= 0.9 and self.ratio_p95 <= 1.5


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "count": len(values),
        "p50": percentile(values, 0.5),
        "p95": percentile(values, 0.95),
        "max": max(values),
    }


def default_slots() -> int:
    """The machine's cores, as the server's default MINIRAG_TURN_SLOTS counts them."""
    from chat.admission import default_turn_slots

    return default_turn_slots()


def _start_profiler(output: str | None, pid: int) -> subprocess.Popen | None:
    """py-spy (if --profile and py-spy is on PATH) sampling the server's threads during the burst,
    written as collapsed stacks to `output` (flamegraph.pl or speedscope read them)."""
    if not output:
        return None
    command = [
        "py-spy",
        "record",
        "--pid",
        str(pid),
        "--format",
        "raw",
        "--threads",
        "--nonblocking",
        "--output",
        output,
    ]
    # A profiler the operator asked for, found on PATH.
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    time.sleep(1.0)  # attaching takes a moment
    return process


async def measure(target: Target, options: BurstOptions, server_pid: int) -> dict[str, Any]:
    import httpx

    limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)  # the reads, one at a time
    async with httpx.AsyncClient(limits=limits, timeout=TIMEOUT_SECONDS) as client:
        # Warm-up: imports, the embedder's first runs, caches; and the reader's chat.
        warm = await stream_turn(target, Turn(-1), "How long does shipping take?", "burst-reader")
        if warm.error:
            raise RuntimeError(f"the warm-up turn failed: {warm.error}")
        target.chat_id = warm.chat_id
        for number in range(3):
            await stream_turn(target, Turn(-1), f"{QUESTIONS[number]}?", f"burst-warm-{number}")

        at_rest: dict[str, list[float]] = {}
        for _ in range(5 if options.quick else 30):
            for kind in ("sources", "messages"):
                at_rest.setdefault(kind, []).append(await read_once(client, target, kind))

        alone = []
        cpu_alone = cpu_seconds(server_pid)
        for number in range(options.sequential):
            turn = await stream_turn(
                target, Turn(number), f"{QUESTIONS[number % len(QUESTIONS)]}? (alone {number})", "burst-alone"
            )
            if turn.error or turn.first_delta is None or turn.done is None:
                raise RuntimeError(f"a turn alone failed: {turn.error}")
            alone.append(turn)
        cpu_alone = cpu_seconds(server_pid) - cpu_alone

        stop = asyncio.Event()
        under: dict[str, list] = {}
        reader = asyncio.create_task(reads_until(client, target, stop, options.read_every, under))
        burst = [Turn(number) for number in range(options.turns)]
        # One connection per turn, opened before the burst: a turn arrives when its request is
        # written, in send order — not when a server busy with the turns before it happens to
        # accept a new connection (--cold-connections measures that too).
        connections: list[Connection | None] = [None] * options.turns
        if not options.cold_connections:
            connections = list(await asyncio.gather(*(open_connection(target) for _ in range(options.turns))))
        profiler = _start_profiler(options.profile, server_pid)
        cpu_burst = cpu_seconds(server_pid), time.process_time()
        began = time.monotonic()

        async def one(turn: Turn) -> None:
            # Staggered sends: the arrival order is the send order.
            await asyncio.sleep(max(0.0, began + turn.number * options.stagger_ms / 1000 - time.monotonic()))
            question = f"{QUESTIONS[turn.number % len(QUESTIONS)]}? (visitor {turn.number})"
            await stream_turn(target, turn, question, f"burst-{turn.number}", connections[turn.number])

        await asyncio.gather(*(one(turn) for turn in burst))
        ended = time.monotonic()
        cpu_burst = cpu_seconds(server_pid) - cpu_burst[0], time.process_time() - cpu_burst[1]
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(timeout=60)
        stop.set()
        await reader
    return {
        "alone": alone,
        "burst": burst,
        "at_rest": at_rest,
        "under": under,
        "seconds": ended - began,
        "cpu_alone_ms": cpu_alone * 1000 / max(1, len(alone)),
        # Per turn answered (a turn refused at the door costs next to nothing).
        "cpu_burst_ms": cpu_burst[0] * 1000 / max(1, sum(1 for turn in burst if turn.done is not None)),
        "client_cpu_burst_s": cpu_burst[1],
    }


def analyse(measured: dict[str, Any], options: BurstOptions, slots: int, database: str) -> BurstReport:
    alone: list[Turn] = measured["alone"]
    burst: list[Turn] = measured["burst"]
    costs = [(t.first_delta - t.sent - options.first_token_delay) * 1000 for t in alone]  # type: ignore[operator]
    tails = [(t.done - t.first_delta) * 1000 for t in alone]  # type: ignore[operator]
    cost, tail = statistics.median(costs), statistics.median(tails)
    headers_alone = statistics.median((t.headers - t.sent) * 1000 for t in alone)  # type: ignore[operator]
    answered = [t for t in burst if not t.error and t.first_delta is not None and t.done is not None]
    refused = [t for t in burst if t.refused]
    failed = [t for t in burst if t.error and not t.refused]
    first_sent = min(t.sent for t in burst)

    # The ideal schedules of the turns that were served (a refused turn costs nothing), both FCFS:
    # - the target's: each turn needs its whole CPU time (the server's, all threads, per turn: the
    #   smaller of alone and in the burst) on one of the machine's cores, then the model's first
    #   token and the rest of its stream — what a perfect scheduler on these cores could do;
    # - the phase ideal: each turn holds one of the gate's slots for its CPU-bound phase as long as
    #   it takes alone (wall clock), as if nothing else of a turn (streaming, storing the answer)
    #   cost CPU and the process were not held to one core by Python's GIL: far below reach.
    cores = default_slots()
    arrivals = [t.sent - first_sent for t in answered]
    after = (options.first_token_delay * 1000 + tail) / 1000
    cpu_cost = min(measured["cpu_alone_ms"], measured["cpu_burst_ms"])
    ideal = ideal_fcfs(arrivals, slots=cores, service=cpu_cost / 1000, after=after)
    phase_slots = slots or cores
    phase_ideal = ideal_fcfs(arrivals, slots=phase_slots, service=cost / 1000, after=after)
    first_delta = [(t.first_delta - t.sent) * 1000 for t in answered]  # type: ignore[operator]
    headers = [(t.headers - t.sent) * 1000 for t in answered]  # type: ignore[operator]
    done = [(t.done - t.sent) * 1000 for t in answered]  # type: ignore[operator]
    ideal_first = [first * 1000 for first, _ in ideal]
    ideal_done = [whole * 1000 for _, whole in ideal]
    order = spearman([t.sent for t in answered], [t.first_delta for t in answered])  # type: ignore[misc]
    under = measured["under"]
    return BurstReport(
        options=asdict(options),
        database=database,
        slots=slots,
        ideal_slots=cores,
        cost_ms=cost,
        cost_p90_ms=percentile(costs, 0.9),
        tail_ms=tail,
        alone_done_ms=statistics.median((t.done - t.sent) * 1000 for t in alone),  # type: ignore[operator]
        answered=len(answered),
        errors=len(failed),
        refused=len(refused),
        retry_after=sorted({t.retry_after for t in refused}, key=lambda v: (len(v), v)),
        error_samples=[f"turn {t.number}: {t.error}" for t in failed[:5]]
        + [f"turn {t.number}: {t.error}" for t in refused[:2]],
        spearman=order,
        headers_alone_ms=headers_alone,
        headers_p50_ms=percentile(headers, 0.5) if answered else float("nan"),
        headers_p95_ms=percentile(headers, 0.95) if answered else float("nan"),
        first_delta_p50_ms=percentile(first_delta, 0.5) if answered else float("nan"),
        first_delta_p95_ms=percentile(first_delta, 0.95) if answered else float("nan"),
        done_p50_ms=percentile(done, 0.5) if answered else float("nan"),
        done_p95_ms=percentile(done, 0.95) if answered else float("nan"),
        done_max_ms=max(done, default=float("nan")),
        cpu_cost_ms=cpu_cost,
        phase_slots=phase_slots,
        phase_ideal_done_p95_ms=percentile([d * 1000 for _, d in phase_ideal], 0.95) if answered else float("nan"),
        phase_ratio_p95=(percentile(done, 0.95) / percentile([d * 1000 for _, d in phase_ideal], 0.95))
        if answered
        else float("nan"),
        ideal_first_delta_p50_ms=percentile(ideal_first, 0.5) if answered else float("nan"),
        ideal_done_p50_ms=percentile(ideal_done, 0.5) if answered else float("nan"),
        ideal_done_p95_ms=percentile(ideal_done, 0.95) if answered else float("nan"),
        ratio_p95=(percentile(done, 0.95) / percentile(ideal_done, 0.95)) if answered else float("nan"),
        burst_seconds=measured["seconds"],
        server_cpu_alone_ms=measured["cpu_alone_ms"],
        server_cpu_burst_ms=measured["cpu_burst_ms"],
        client_cpu_burst_s=measured["client_cpu_burst_s"],
        reads_at_rest={kind: _summary(values) for kind, values in measured["at_rest"].items()},
        reads_under_burst={kind: _summary(under.get(kind, [])) for kind in ("sources", "messages")},
        read_errors=list(under.get("errors", []))[:5],
    )


def server_environment(data_dir: Path, database_url: str | None, options: BurstOptions) -> dict[str, str]:
    env = {
        **clean_environment(),
        **embedded_environment(data_dir, database_url),
        "MINIRAG_ALLOWED_HOSTS": "*",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "MINIRAG_TASKS_IN_PROCESS": "true",
        "MINIRAG_TASKS_RUN_INLINE": "false",
        "MINIRAG_SIGNUP_RATE": "1000/minute",
        "MINIRAG_DEFAULT_EMBEDDING_MODEL": "local/minilm",
        "BENCH_FIRST_TOKEN_DELAY": str(options.first_token_delay),
        "BENCH_WORDS": str(options.words),
        "BENCH_WORD_DELAY": str(options.word_delay),
        **RAISED_RATE_LIMITS,
    }
    if options.slots is not None:
        env["MINIRAG_TURN_SLOTS"] = str(options.slots)
    if options.queue_limit is not None:
        env["MINIRAG_TURN_QUEUE_LIMIT"] = str(options.queue_limit)
    return env


def run(options: BurstOptions) -> BurstReport:
    database = None
    if options.database_url:
        database = ThrowawayDatabase(options.database_url, None)
        database.create()
    try:
        with tempfile.TemporaryDirectory(prefix="minirag-burst-") as data_dir:
            env = server_environment(Path(data_dir), database.superuser_url if database else None, options)
            subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
            server = Server(os.environ.get("BURST_APP", "bench.bench_asgi:application"), env)
            try:
                server.wait_ready()
                target = seed(server.url)
                measured = asyncio.run(measure(target, options, server.pid))
            finally:
                server.stop()
    finally:
        if database is not None:
            database.drop()
    if options.dump:
        began = min(turn.sent for turn in measured["burst"])
        rows = [
            {
                "number": turn.number,
                "status": turn.status,
                "error": turn.error,
                **{
                    name: (getattr(turn, name) - began) if getattr(turn, name) is not None else None
                    for name in ("sent", "headers", "first_delta", "done")
                },
            }
            for turn in measured["burst"]
        ]
        Path(options.dump).write_text(json.dumps(rows))
    slots = options.slots if options.slots is not None else default_slots()
    return analyse(measured, options, slots, "PostgreSQL" if options.database_url else "embedded (SQLite)")


def format_report(report: BurstReport) -> str:
    options = report.options
    gate = f"{report.slots} slots" if report.slots else "off"
    lines = [
        f"A burst of {options['turns']} streamed turns, sent {options['stagger_ms']:g} ms apart; one uvicorn process, "
        f"{report.database}, local/minilm embeddings; model bench/fixed: first token after "
        f"{options['first_token_delay']:g} s, {options['words']} tokens {options['word_delay'] * 1000:g} ms apart; "
        f"admission gate: {gate}",
        f"one turn alone (median of {options['sequential']}): CPU-bound phase {report.cost_ms:.1f} ms "
        f"(p90 {report.cost_p90_ms:.1f}), first delta → done {report.tail_ms:.0f} ms, whole turn "
        f"{report.alone_done_ms:.0f} ms",
        f"turns: {report.answered} answered, {report.errors} errors, {report.refused} refused with 503"
        + (f" (Retry-After: {', '.join(report.retry_after)} s)" if report.refused else "")
        + f"; the burst took {report.burst_seconds:.1f} s",
        f"server CPU time per turn: alone {report.server_cpu_alone_ms:.0f} ms, in the burst "
        f"{report.server_cpu_burst_ms:.0f} ms (this client used {report.client_cpu_burst_s:.1f} s of CPU meanwhile)",
        f"arrival order → first delta order: Spearman {report.spearman:.3f} (target ≥ 0.9)",
        f"time to the response headers (the view's synchronous part): alone {report.headers_alone_ms:.0f} ms; "
        f"in the burst p50 {report.headers_p50_ms:,.0f} ms, p95 {report.headers_p95_ms:,.0f} ms",
        f"time to first delta: p50 {report.first_delta_p50_ms:,.0f} ms, p95 {report.first_delta_p95_ms:,.0f} ms "
        f"(ideal FCFS p50 {report.ideal_first_delta_p50_ms:,.0f} ms)",
        f"time to done: p50 {report.done_p50_ms:,.0f} ms, p95 {report.done_p95_ms:,.0f} ms, max "
        f"{report.done_max_ms:,.0f} ms",
        f"ideal FCFS on {report.ideal_slots} cores, {report.cpu_cost_ms:.0f} ms of CPU per turn: time to done p50 "
        f"{report.ideal_done_p50_ms:,.0f} ms, p95 {report.ideal_done_p95_ms:,.0f} ms",
        f"p95 time to done / ideal FCFS p95: {report.ratio_p95:.2f} (target ≤ 1.5)",
        f"(against {report.phase_slots} slots each held {report.cost_ms:.0f} ms, the CPU-bound phase alone, as if "
        f"nothing else cost CPU: ideal p95 {report.phase_ideal_done_p95_ms:,.0f} ms, "
        f"ratio {report.phase_ratio_p95:.2f})",
    ]
    for kind, label in (("sources", "GET /v1/sources"), ("messages", "GET /v1/chat/{id}/messages")):
        rest, under = report.reads_at_rest.get(kind, {}), report.reads_under_burst.get(kind, {})
        if rest and under:
            lines.append(
                f"{label:28} at rest p50 {rest['p50']:.1f} ms, p95 {rest['p95']:.1f} ms; under the burst "
                f"({under['count']}) p50 {under['p50']:.1f} ms, p95 {under['p95']:.1f} ms, max {under['max']:.0f} ms "
                f"({under['p50'] / rest['p50']:.1f}x p50, {under['p95'] / rest['p95']:.1f}x p95)"
            )
    if report.read_errors:
        lines.append(f"read errors: {report.read_errors}")
    if report.error_samples:
        lines += ["first errors:", *(f"  {sample}" for sample in report.error_samples)]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=None, help="Turns in the burst (default 200; 20 with --quick).")
    parser.add_argument("--quick", action="store_true", help="A smoke run: 20 turns, 3 alone.")
    parser.add_argument("--sequential", type=int, default=None, help="Turns alone for the cost (default 20).")
    parser.add_argument("--stagger-ms", type=float, default=2.0, help="Between two sends of the burst (default 2).")
    parser.add_argument("--first-token-delay", type=float, default=0.5, help="The model's (default 0.5 s).")
    parser.add_argument("--words", type=int, default=20, help="Tokens the model streams (default 20).")
    parser.add_argument("--word-delay", type=float, default=0.025, help="Between two tokens (default 0.025 s).")
    parser.add_argument("--read-every", type=float, default=0.1, help="Reads under the burst (default every 0.1 s).")
    parser.add_argument("--slots", type=int, default=None, help="MINIRAG_TURN_SLOTS (0: the gate off).")
    parser.add_argument("--queue-limit", type=int, default=None, help="MINIRAG_TURN_QUEUE_LIMIT.")
    parser.add_argument(
        "--cold-connections", action="store_true", help="Open no connection before the burst (each turn connects)."
    )
    parser.add_argument("--dump", help="Write every turn of the burst (times in seconds from its start) to this file.")
    parser.add_argument("--profile", help="Record the server with py-spy (on PATH) during the burst, to this file.")
    parser.add_argument("--database-url", help="PostgreSQL superuser URL (a throwaway database) instead of SQLite.")
    args = parser.parse_args()
    options = BurstOptions(
        turns=args.turns or (20 if args.quick else 200),
        sequential=args.sequential or (3 if args.quick else 20),
        stagger_ms=args.stagger_ms,
        first_token_delay=args.first_token_delay,
        words=args.words,
        word_delay=args.word_delay,
        read_every=args.read_every,
        slots=args.slots,
        queue_limit=args.queue_limit,
        database_url=args.database_url,
        quick=args.quick,
        profile=args.profile,
        dump=args.dump,
        cold_connections=args.cold_connections,
    )
    report = run(options)
    print(format_report(report))
    summary = {key: value for key, value in asdict(report).items() if key != "options"}
    print("BURST " + json.dumps(summary))
    if report.errors:
        return 1
    return 0 if options.quick or report.targets_met else 1


if __name__ == "__main__":
    sys.exit(main())
