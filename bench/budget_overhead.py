#!/usr/bin/env python
"""What spend caps cost a chat turn (providers/budgets.py).

    .venv/bin/python bench/budget_overhead.py                 # 300 turns each way (about a minute)
    .venv/bin/python bench/budget_overhead.py --turns 1000 --database-url postgres://postgres@127.0.0.1:5432/minirag_bench

Two tenants with the same bot on the zero-latency `bench/instant` model and the same small indexed
corpus: one without any budget, one with a workspace budget and a bot budget (and a price for the
model, so that every turn is admitted against the caps and adds to the ledger). Whole turns (the
code behind `POST /v1/chat`: admission, storing the question, retrieval, the answer, recording its
usage and spend) alternate between the two, so both see the same machine. Reported: the p50 and
p95 of each, and the ratio capped / uncapped. Target: a p50 ratio below 1.05.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import embedded_environment  # noqa: E402

CORPUS_CHUNKS = 60
TARGET_RATIO = 1.05


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def bench_tenant(name: str, corpus: list[str], *, budget: str | None) -> Any:
    """A tenant with a bot on `bench/instant` and the corpus; returns a function that runs one turn."""
    from asgiref.sync import async_to_sync

    from bots.services import bot_profile_create
    from chat import turns
    from chat.services import prepare_turn
    from sources.lifecycle import run_ingestion
    from sources.services import source_create
    from tenants.authentication import Principal
    from tenants.models import ApiToken, Tenant
    from tenants.services import tenant_bootstrap
    from tenants.tenancy import tenant_scope

    created = tenant_bootstrap(
        name=name,
        slug=f"{name}-{secrets.token_hex(4)}",
        owner_email=f"{name}@example.com",
        owner_password="bench-password",
    )
    tenant = created.tenant
    if budget is not None:
        Tenant.objects.filter(pk=tenant.pk).update(monthly_budget_usd=budget)
        tenant.refresh_from_db()
    with tenant_scope(tenant):
        bot = bot_profile_create(
            tenant=tenant,
            name="Bench bot",
            model="bench/instant",
            similarity_threshold=0.0,
            monthly_budget_usd=budget,
        )
        for number, text in enumerate(corpus):
            source = source_create(
                tenant=tenant, bot_profile=bot, name=f"doc {number}", source_type="text", content=text
            )
            source.status = "queued"
            source.save(update_fields=["status"])
            run_ingestion(tenant=tenant, source_id=source.pk)
        token = ApiToken.objects.get(pk=created.api_token.pk)
    principal = Principal(tenant=tenant, user=created.owner, method="api_token", api_token=token)

    def one_turn(question: str) -> float:
        started = time.perf_counter()
        with tenant_scope(tenant):
            turn = prepare_turn(principal=principal, bot_profile_id=bot.pk, message=question)
        async_to_sync(turns.answer)(turn)
        return (time.perf_counter() - started) * 1000

    return one_turn


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=300, help="Turns per tenant (default 300).")
    parser.add_argument("--database-url", help="Use this database instead of a temporary SQLite file.")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="minirag-bench-budget-"))
    os.environ.update({**embedded_environment(data_dir, args.database_url), "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    # A price for the bench model: every capped turn is admitted, reserved and added to the ledger.
    os.environ["MINIRAG_MODEL_PRICES"] = '{"bench/instant": [0.15, 0.6]}'
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from bench.ingest_throughput import make_corpus
    from bench.providers import register

    register()
    corpus = make_corpus(CORPUS_CHUNKS)
    uncapped = bench_tenant("uncapped", corpus, budget=None)
    capped = bench_tenant("capped", corpus, budget="100000.00")
    questions = ["How long does delivery take?", "What does the warranty cover?", "Where is the office?"]
    for question in questions:  # warm both: imports, caches, the first collection scan
        uncapped(question)
        capped(question)
    plain: list[float] = []
    budgeted: list[float] = []
    for number in range(args.turns):
        question = questions[number % len(questions)]
        plain.append(uncapped(question))
        budgeted.append(capped(question))
    ratio = statistics.median(budgeted) / statistics.median(plain)
    print(f"turns: {args.turns} per tenant, {'PostgreSQL' if args.database_url else 'SQLite'}, alternating")
    print(f"without budgets: p50 {statistics.median(plain):.1f} ms, p95 {percentile(plain, 0.95):.1f} ms")
    p50, p95 = statistics.median(budgeted), percentile(budgeted, 0.95)
    print(f"with a workspace and a bot budget: p50 {p50:.1f} ms, p95 {p95:.1f} ms")
    print(f"ratio (p50): {ratio:.3f}  (target < {TARGET_RATIO})")
    return 0 if ratio < TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
