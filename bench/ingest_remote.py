#!/usr/bin/env python
"""Ingestion with an embedding model on the network, onto an empty store.

    .venv/bin/python bench/ingest_remote.py                    # 50 documents of 2,000 words (about a minute)
    .venv/bin/python bench/ingest_remote.py --documents 10     # quick

An OpenAI-compatible stand-in (providers/tests/fake_provider.py) answers embeddings on loopback
with a fixed latency per request plus a little per input, like a hosted provider. Each document is
a text source of its own, ingested through the whole pipeline (chunk, embed, index) into an empty
collection. The baseline, run in the same process on the same documents, is how MiniRAG embedded
before issue 19: batches of 32 texts, one request at a time (`MINIRAG_REMOTE_EMBEDDING_BATCH_SIZE=32`,
`MINIRAG_EMBEDDING_CONCURRENCY=1`). Reported: both wall times, the requests each made, and the
speed-up. Target (issue 19): at least 1.5x.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import embedded_environment  # noqa: E402

WORDS = (
    "order delivery parcel refund warehouse invoice customer account password shipping tracking return "
    "exchange payment card address postcode opening hours support ticket manager contract subscription "
    "plan upgrade cancel discount voucher stock product size colour fabric warranty repair battery screen"
).split()


def document(rng: random.Random, words: int) -> str:
    paragraphs, written = [], 0
    while written < words:
        sentences = []
        for _ in range(rng.randint(3, 7)):
            sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20)))
            sentences.append(sentence.capitalize() + ".")
        paragraph = " ".join(sentences)
        written += len(paragraph.split())
        paragraphs.append(paragraph)
    return "\n\n".join(paragraphs)


def ingest(tenant: object, source_id: object) -> object:
    """One source's ingestion, as a task of the embedded pool runs it (its own database connection)."""
    from django.db import close_old_connections, connections

    from sources.lifecycle import run_ingestion
    from tenants.tenancy import tenant_scope

    close_old_connections()
    try:
        with tenant_scope(tenant):
            return run_ingestion(tenant=tenant, source_id=source_id)
    finally:
        connections.close_all()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=50)
    parser.add_argument("--words", type=int, default=2_000)
    parser.add_argument("--latency", type=float, default=0.15, help="Seconds per embeddings request.")
    parser.add_argument("--per-input", type=float, default=0.002, help="Seconds per input in a request.")
    args = parser.parse_args()

    os.environ.update(embedded_environment(Path(tempfile.mkdtemp(prefix="minirag-bench-")), None))
    os.environ["MINIRAG_MODEL_ALLOWED_NETWORKS"] = "127.0.0.1/32"
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from bots.services import bot_profile_create
    from minirag.vectorstore import collection_name, get_vector_store
    from providers.tests.fake_provider import FakeProvider
    from sources.models import Source
    from sources.services import source_create
    from tenants.services import tenant_bootstrap
    from tenants.tenancy import tenant_scope

    rng = random.Random(19)  # noqa: S311 - a reproducible corpus, not a secret
    documents = [document(rng, args.words) for _ in range(args.documents)]
    model = "openai/fake-embed"
    setup = tenant_bootstrap(
        name="Bench", slug=f"bench-{secrets.token_hex(4)}", owner_email="b@example.com", owner_password="bench-pass"
    )
    tenant = setup.tenant
    results: dict[str, tuple[float, int, int]] = {}
    with FakeProvider() as fake, tenant_scope(tenant):
        fake.embedding_latency, fake.embedding_latency_per_input = args.latency, args.per_input
        bot = bot_profile_create(
            tenant=tenant,
            name="Bench bot",
            model="openai/fake-chat",  # the bot's endpoint and key go with its chat model's provider
            embedding_model=model,
            api_base=f"{fake.url}/v1",
            credentials={"api_key": "sk-bench"},
        )
        runs = {
            "before (32 per request, 1 at a time, one source at a time)": (32, 1, 1),
            "now, one source at a time": (None, None, 1),
            f"now, {settings.IN_PROCESS_WORKERS} sources at a time (the embedded task pool)": (
                None,
                None,
                settings.IN_PROCESS_WORKERS,
            ),
        }
        for label, (batch, concurrency, sources_at_once) in runs.items():
            settings.REMOTE_EMBEDDING_BATCH_SIZE = batch or 128
            settings.EMBEDDING_CONCURRENCY = concurrency or 4
            get_vector_store().drop_collection(collection_name(model))  # an empty store each time
            sources = [
                source_create(tenant=tenant, bot_profile=bot, name=f"{label} {n}", source_type="text", content=text)
                for n, text in enumerate(documents)
            ]
            Source.objects.filter(pk__in=[source.pk for source in sources]).update(status="queued")
            fake.reset()
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=sources_at_once) as pool:
                outcomes = list(pool.map(lambda source: ingest(tenant, source.pk), sources))
            seconds = time.perf_counter() - started
            failed = [outcome.detail for outcome in outcomes if outcome.status != "ready"]
            if failed:
                raise SystemExit(f"ingestion failed: {failed[0]}")
            chunks = sum(Source.objects.filter(pk__in=[s.pk for s in sources]).values_list("chunk_count", flat=True))
            requests = sum(1 for call in fake.requests if call.path.endswith("/embeddings"))
            results[label] = (seconds, requests, chunks)
            print(f"{label}: {seconds:.1f} s for {chunks} chunks of {len(sources)} documents, {requests} requests")
    before = results["before (32 per request, 1 at a time, one source at a time)"][0]
    now = min(seconds for seconds, _, _ in list(results.values())[1:])
    print(
        f"speed-up: {before / now:.2f}x  (target >= 1.5x; provider latency {args.latency}s + {args.per_input}s/input)"
    )
    return 0 if before / now >= 1.5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
