#!/usr/bin/env python
"""What the model egress guard costs: a model call through MiniRAG's gateway (every connection
checked, minirag/safe_http/egress.py) against the same LiteLLM call without the guard, and the
save-time probe of a model string.

    .venv/bin/python bench/model_egress.py                 # 300 calls of each kind
    .venv/bin/python bench/model_egress.py --calls 2000

An OpenAI-compatible stand-in answers on loopback (allowed with MINIRAG_MODEL_ALLOWED_NETWORKS, as
an on-premises model server would be), so both sides make real HTTP requests, with keep-alive, in
interleaved rounds. Reported: p50/p99 per call and the ratio guarded / unguarded for completions
(async) and embeddings (sync); and the time `check_model_destination` takes per model string.
No network beyond loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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

COMPLETION = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 1,
    "model": "bench",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Five days [1]."}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16},
}
EMBEDDING = {
    "object": "list",
    "model": "bench",
    "data": [{"object": "embedding", "index": 0, "embedding": [0.1] * 384}],
    "usage": {"prompt_tokens": 2, "total_tokens": 2},
}


class StandIn(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real endpoint
    connections: set[int] = set()  # client ports seen: how many connections the clients opened

    def do_POST(self) -> None:
        StandIn.connections.add(self.client_address[1])
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps(EMBEDDING if self.path.endswith("/embeddings") else COMPLETION).encode()
        # Head and body in one write: two small writes meet the client's delayed ACK (~40 ms each).
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        self.wfile.write(head.encode() + body)

    def log_message(self, *args: Any) -> None:
        pass


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def row(name: str, guarded: list[float], plain: list[float]) -> str:
    g50, g99, p50, p99 = (percentile(v, q) * 1000 for v in (guarded, plain) for q in (0.5, 0.99))
    return (
        f"| {name} | {len(guarded)} | {g50:.2f} / {g99:.2f} ms | {p50:.2f} / {p99:.2f} ms "
        f"| {g50 / p50:.2f} x / {g99 / p99:.2f} x |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300, help="calls of each kind and side (default 300)")
    args = parser.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/v1"
    data_dir = Path(tempfile.mkdtemp(prefix="minirag-bench-egress-"))
    os.environ.update(
        {
            **embedded_environment(data_dir, None),
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "MINIRAG_MODEL_ALLOWED_NETWORKS": "127.0.0.1/32",
            "OPENAI_API_BASE": base,
            "OPENAI_API_KEY": "sk-bench",
        }
    )
    import django

    django.setup()
    from minirag import model_gateway

    litellm = model_gateway._ready_litellm()
    messages = [{"role": "user", "content": "How long do refunds take?"}]
    arguments = {"model": "openai/bench", "messages": messages, "temperature": 0.0, "max_tokens": 16}
    bench_endpoint = model_gateway.Endpoint(api_key="sk-bench")

    async def completions() -> tuple[list[float], list[float]]:
        guarded: list[float] = []
        plain: list[float] = []
        for _ in range(5):  # warm both connection pools
            await model_gateway.acomplete(**arguments, endpoint=bench_endpoint)
            await litellm.acompletion(**arguments, api_key="sk-bench")
        for _ in range(args.calls):
            started = time.perf_counter()
            await model_gateway.acomplete(**arguments, endpoint=bench_endpoint)
            guarded.append(time.perf_counter() - started)
            started = time.perf_counter()
            await litellm.acompletion(**arguments, api_key="sk-bench")
            plain.append(time.perf_counter() - started)
        return guarded, plain

    def embeddings() -> tuple[list[float], list[float]]:
        guarded: list[float] = []
        plain: list[float] = []
        for _ in range(args.calls):
            started = time.perf_counter()
            model_gateway.embed_texts(["refunds"], model="openai/bench-embed", endpoint=bench_endpoint)
            guarded.append(time.perf_counter() - started)
            started = time.perf_counter()
            litellm.embedding(model="openai/bench-embed", input=["refunds"], api_key="sk-bench")
            plain.append(time.perf_counter() - started)
        return guarded, plain

    completion_times = asyncio.run(completions())
    completion_connections = len(StandIn.connections)
    StandIn.connections.clear()
    embedding_times = embeddings()
    embedding_connections = len(StandIn.connections)
    models = ["gpt-4o-mini", "anthropic/claude-3-5-sonnet", "ollama/llama3", "llamafile/x", "text-embedding-3-small"]
    probes: dict[str, float] = {}
    for model in models:
        started = time.perf_counter()
        try:
            model_gateway.check_model_destination(model, purpose="embedding" if "embedding" in model else "chat")
        except model_gateway.ModelError:
            pass
        probes[model] = time.perf_counter() - started
    server.shutdown()

    print("| call | calls | guarded p50 / p99 | unguarded p50 / p99 | ratio p50 / p99 |")
    print("| --- | --- | --- | --- | --- |")
    print(row(f"completion (async; {completion_connections} connections)", *completion_times))
    print(row(f"embedding (sync; {embedding_connections} connections)", *embedding_times))
    print()
    print("save-time probe per model string: " + ", ".join(f"{m} {s * 1000:.1f} ms" for m, s in probes.items()))
    print(f"probe median: {statistics.median(probes.values()) * 1000:.1f} ms (no connection made)")


if __name__ == "__main__":
    main()
