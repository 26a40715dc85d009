#!/usr/bin/env python
"""Chat turn overhead and streaming concurrency.

    .venv/bin/python bench/chat_overhead.py                      # both parts (about 2 minutes)
    .venv/bin/python bench/chat_overhead.py --turns 300 --concurrency 300

Part 1, overhead. With a zero-latency model (`bench/instant`) and the offline embedder, N
streamed turns go through the Django ASGI application in this process. For each: the time from
the request entering the application to the first `delta` event leaving it, minus the embedding
of the question and minus the model's own time to its first token — what is left is MiniRAG's
own work (authentication, storing the question, reading history, vector search, the prompt, SSE
framing). It is reported as p50/p99, next to the vector search the turn makes (the same hybrid
search, measured alone in the same run on the same store: in the embedded mode, the NumPy index of
minirag/vector_index.py); the difference is MiniRAG's own work per turn.

Part 2, concurrency. A real uvicorn server (one process) answers with `bench/slow` (60 words,
one every 0.5 s: a 30-second answer, like a long model reply). Chats arrive at a steady rate
(default 10 per second) until C of them have started, so open streams pile up to about C at
once; this runs three times. Reported: the peak number of streams open at the same time, completed
streams, errors, time to first delta under that load, and the server's memory before, at peak
and after each wave. The first wave warms caches (SQLite's page cache, the allocator's arenas),
so flat memory means the waves after the second leave it where the second left it (allowing
allocator noise: < 5 MB per wave); a leak of even 20 KB per chat would add 5 MB a wave. Target:
≥ 200 concurrent streams with flat memory.

Part 1 also reports how many turns per second one process can *start* when they all arrive at
once (a burst), which is a different limit: CPU, not connections.

A thousand streams open at once, and the memory one open stream costs: bench/streams.py.

Embedded mode (SQLite, local Qdrant in a temporary directory), or PostgreSQL with --database-url.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import embedded_environment  # noqa: E402

CORPUS_PARAGRAPHS = 600


def environment(data_dir: Path, database_url: str | None) -> dict[str, str]:
    # The uvicorn process of part 2 is reached as 127.0.0.1 and prices no model online.
    return {
        **embedded_environment(data_dir, database_url),
        "MINIRAG_ALLOWED_HOSTS": "*",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


# --- Setup --------------------------------------------------------------------------------------


def setup() -> dict[str, str]:
    """A tenant, a bot on `bench/instant`, a token, and a corpus indexed for it."""
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from bench.ingest_throughput import make_corpus
    from bench.providers import register
    from bots.services import bot_profile_create
    from sources.lifecycle import run_ingestion
    from sources.services import source_create
    from tenants.services import tenant_bootstrap
    from tenants.tenancy import tenant_scope

    register()
    created = tenant_bootstrap(
        name="Bench",
        slug=f"bench-{secrets.token_hex(4)}",
        owner_email="bench@example.com",
        owner_password="bench-password",
    )
    tenant = created.tenant
    with tenant_scope(tenant):
        bot = bot_profile_create(tenant=tenant, name="Bench bot", model="bench/instant", similarity_threshold=0.0)
        for number, text in enumerate(make_corpus(CORPUS_PARAGRAPHS)):
            source = source_create(
                tenant=tenant, bot_profile=bot, name=f"doc {number}", source_type="text", content=text
            )
            source.status = "queued"
            source.save(update_fields=["status"])
            run_ingestion(tenant=tenant, source_id=source.pk)
    return {"token": created.raw_token, "bot": str(bot.pk), "tenant": str(tenant.pk)}


# --- Part 1: overhead ---------------------------------------------------------------------------


class Timings:
    """Per-turn embedding and model times, recorded around the real functions."""

    def __init__(self) -> None:
        self.embed_ms = 0.0
        self.model_call_at: float | None = None
        self.model_first_token_ms: float | None = None

    def install(self) -> None:
        from chat import retrieval, turns

        real_embed, real_astream = retrieval.embed_texts, turns.astream
        timings = self

        def embed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return real_embed(*args, **kwargs)
            finally:
                timings.embed_ms += (time.perf_counter() - started) * 1000

        async def astream(**kwargs: Any) -> Any:
            timings.model_call_at = time.perf_counter()
            stream = await real_astream(**kwargs)
            original = stream._deltas

            async def deltas() -> Any:
                async for delta in original():
                    if timings.model_first_token_ms is None:
                        timings.model_first_token_ms = (time.perf_counter() - timings.model_call_at) * 1000
                    yield delta

            stream._deltas = deltas
            return stream

        retrieval.embed_texts, turns.astream = embed, astream

    def reset(self) -> None:
        self.embed_ms, self.model_call_at, self.model_first_token_ms = 0.0, None, None


async def one_turn(application: Any, token: str, bot: str, question: str) -> float:
    """Milliseconds from the request entering the application to the first delta leaving it."""
    body = json.dumps({"bot_profile_id": bot, "message": question, "stream": True}).encode()
    first_delta: float | None = None
    done = asyncio.Event()

    sent_body = False

    async def receive() -> dict:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()  # the client stays connected until the response has ended
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        nonlocal first_delta
        if message["type"] == "http.response.body":
            if first_delta is None and b"event: delta" in message.get("body", b""):
                first_delta = time.perf_counter()
            if not message.get("more_body"):
                done.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat",
        "raw_path": b"/v1/chat",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"localhost"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("localhost", 80),
    }
    started = time.perf_counter()
    await application(scope, receive, send)
    if first_delta is None:
        raise SystemExit("a turn produced no delta")
    return (first_delta - started) * 1000


def measure_overhead(ids: dict[str, str], turns: int) -> dict[str, float]:
    from django.core.asgi import get_asgi_application

    from minirag.lexical import query_vector
    from minirag.local_models.embedder import get_local_embedder
    from minirag.vectorstore import collection_name, get_vector_store
    from sources.selectors import bot_term_statistics

    timings = Timings()
    timings.install()
    application = get_asgi_application()
    questions = [f"How long does shipping take for order {n}?" for n in range(turns)]

    async def run() -> list[float]:
        for question in questions[:10]:  # warm-up: imports, first model calls, caches
            await one_turn(application, ids["token"], ids["bot"], question)
        overheads = []
        for question in questions:
            timings.reset()
            total = await one_turn(application, ids["token"], ids["bot"], question)
            overheads.append(total - timings.embed_ms - (timings.model_first_token_ms or 0.0))
        return overheads

    overheads = asyncio.run(run())

    async def burst(count: int) -> float:
        started = time.perf_counter()
        await asyncio.gather(
            *(one_turn(application, ids["token"], ids["bot"], f"Burst question {n}?") for n in range(count))
        )
        return time.perf_counter() - started

    burst_count = 100
    burst_seconds = asyncio.run(burst(burst_count))
    store = get_vector_store()
    question = "How long does shipping take?"
    term_statistics = bot_term_statistics(
        tenant_id=uuid.UUID(ids["tenant"]), bot_profile_id=uuid.UUID(ids["bot"]), version="bench"
    )
    vector = get_local_embedder().embed([question])[0]
    searches = []
    for _ in range(turns):
        started = time.perf_counter()
        store.search(
            collection_name("local/minilm"),
            vector,
            tenant_id=ids["tenant"],
            bot_profile_id=ids["bot"],
            lexical_query=query_vector(question, term_statistics),
            limit=5,
        )
        searches.append((time.perf_counter() - started) * 1000)
    return {
        "overhead_p50": percentile(overheads, 0.5),
        "overhead_p99": percentile(overheads, 0.99),
        "search_p50": statistics.median(searches),
        "burst": burst_count,
        "burst_seconds": burst_seconds,
    }


# --- Part 2: concurrency ------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def stream_wave(
    url: str, token: str, bot: str, count: int, rate: float | None = None
) -> tuple[int, int, list[float], int]:
    """`count` streamed chats, all at once or `rate` new ones per second. Returns (completed,
    errors, first-delta times in ms, peak streams open at the same time)."""
    import httpx

    ok = errors = open_now = peak_open = 0
    first_delta: list[float] = []

    async def one(client: httpx.AsyncClient, number: int) -> None:
        nonlocal ok, errors, open_now, peak_open
        if rate:
            await asyncio.sleep(number / rate)
        body = {"bot_profile_id": bot, "message": f"How long does shipping take? ({number})", "stream": True}
        started = time.perf_counter()
        seen_delta = False
        open_now += 1
        peak_open = max(peak_open, open_now)
        try:
            async with client.stream(
                "POST", f"{url}/v1/chat", json=body, headers={"Authorization": f"Bearer {token}"}
            ) as response:
                text = ""
                async for chunk in response.aiter_text():
                    if not seen_delta and "event: delta" in chunk:
                        seen_delta = True
                        first_delta.append((time.perf_counter() - started) * 1000)
                    text += chunk
            if response.status_code == 200 and "event: done" in text:
                ok += 1
            else:
                errors += 1
        except httpx.HTTPError:
            errors += 1
        finally:
            open_now -= 1

    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(limits=limits, timeout=300) as client:
        await asyncio.gather(*(one(client, number) for number in range(count)))
    return ok, errors, first_delta, peak_open


async def _sampled_wave(
    url: str, ids: dict[str, str], concurrency: int, rate: float, pid: int, peak: list[float]
) -> tuple[int, int, list[float], int]:
    """One wave of streams, sampling the server's memory every 0.2 s into `peak`."""
    sampling = True

    async def sample() -> None:
        while sampling:
            peak.append(rss_mb(pid))
            await asyncio.sleep(0.2)

    sampler = asyncio.create_task(sample())
    result = await stream_wave(url, ids["token"], ids["bot"], concurrency, rate)
    sampling = False
    await sampler
    return result


def measure_concurrency(
    ids: dict[str, str], env: dict[str, str], concurrency: int, rate: float, waves_count: int
) -> dict[str, Any]:
    from bots.models import BotProfile

    BotProfile.all_tenants.filter(pk=ids["bot"]).update(model="bench/slow")  # long answers keep streams open
    port = 8700 + secrets.randbelow(200)
    server = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.bench_asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "off",
            "--no-access-log",
            "--log-level",
            "warning",
            "--limit-concurrency",
            "2000",
            "--backlog",
            "4096",
        ],
        cwd=ROOT,
        env={**os.environ, **env, "MINIRAG_TASKS_RUN_INLINE": "false", "BENCH_WORDS": "60", "BENCH_WORD_DELAY": "0.5"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        for _ in range(300):
            try:
                httpx.get(f"{url}/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        asyncio.run(stream_wave(url, ids["token"], ids["bot"], 10))  # warm-up (10 at once)
        baseline = rss_mb(server.pid)
        waves = []
        for _ in range(waves_count):
            peak: list[float] = [rss_mb(server.pid)]
            started = time.perf_counter()
            ok, errors, first, peak_open = asyncio.run(_sampled_wave(url, ids, concurrency, rate, server.pid, peak))
            waves.append(
                {
                    "ok": ok,
                    "peak_open": peak_open,
                    "errors": errors,
                    "seconds": time.perf_counter() - started,
                    "first_delta_p50": percentile(first, 0.5) if first else None,
                    "first_delta_p99": percentile(first, 0.99) if first else None,
                    "peak_mb": max(peak),
                    "after_mb": rss_mb(server.pid),
                }
            )
        return {"baseline_mb": baseline, "waves": waves}
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=200, help="Sequential turns for the overhead (default 200).")
    parser.add_argument("--concurrency", type=int, default=250, help="Chats started per wave (default 250).")
    parser.add_argument("--rate", type=float, default=10.0, help="New chats per second in a wave (default 10).")
    parser.add_argument("--waves", type=int, default=3, help="Waves in part 2, at least 3 (default 3).")
    parser.add_argument("--database-url", help="Use this database instead of a temporary SQLite file.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="minirag-chat-bench-") as data_dir:
        env = environment(Path(data_dir), args.database_url)
        os.environ.update(env)
        ids = setup()
        overhead = measure_overhead(ids, args.turns)
        from minirag.vectorstore import close_vector_store

        close_vector_store()  # the server process opens the local Qdrant directory next
        concurrency = (
            measure_concurrency(ids, env, args.concurrency, args.rate, max(3, args.waves)) if args.concurrency else None
        )
    own_work = overhead["overhead_p50"] - overhead["search_p50"]
    print(
        f"turn overhead (request in → first delta, minus embedding and model): "
        f"p50 {overhead['overhead_p50']:.1f} ms, p99 {overhead['overhead_p99']:.1f} ms"
    )
    print(f"the turn's hybrid vector search alone (same store, same filter):   p50 {overhead['search_p50']:.1f} ms")
    print(f"MiniRAG's own work per turn (overhead minus search), p50:           {own_work:.1f} ms (target ≤ 15 ms)")
    print(
        f"burst: {overhead['burst']} turns arriving at once started in {overhead['burst_seconds']:.1f} s "
        f"= {overhead['burst'] / overhead['burst_seconds']:.1f} turn starts/s for one process"
    )
    passed = overhead["overhead_p50"] < 100
    print(f"target: overhead p50 < 100 ms — {'met' if passed else 'MISSED'}")
    if concurrency:
        print(f"server memory before the waves: {concurrency['baseline_mb']:.0f} MB")
        for number, wave in enumerate(concurrency["waves"], start=1):
            print(
                f"wave {number}: {wave['peak_open']} streams open at once at the peak; "
                f"{wave['ok']}/{args.concurrency} completed, {wave['errors']} errors, "
                f"{wave['seconds']:.1f} s; first delta p50 {wave['first_delta_p50']:.0f} ms, "
                f"p99 {wave['first_delta_p99']:.0f} ms; memory peak {wave['peak_mb']:.0f} MB, "
                f"after {wave['after_mb']:.0f} MB"
            )
        waves = concurrency["waves"]
        steps = ", ".join(
            f"{later['after_mb'] - earlier['after_mb']:+.1f}" for earlier, later in itertools.pairwise(waves)
        )
        growth = (waves[-1]["after_mb"] - waves[1]["after_mb"]) / (len(waves) - 2)
        print(f"memory after each wave, change from the previous one: {steps} MB")
        print(f"memory growth per wave after the second: {growth:+.1f} MB (flat: < 5 MB)")
        passed = passed and growth < 5 and all(w["ok"] == args.concurrency and w["peak_open"] >= 200 for w in waves)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
