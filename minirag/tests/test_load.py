"""Sustained load from a second process, bounded: bench/load.py's machinery with small numbers.

The real application (uvicorn, one process) runs against a throwaway PostgreSQL database of its
own (created, migrated as the owner with row-level security, and dropped by bench/load.py — not
the suite's test database, which pytest-django owns) with Redis-counted rate limits, the offline
embedder and a zero-latency model. A separate load-generator process keeps USERS widget visitors
busy for WARMUP + DURATION seconds with streamed chats and API reads. Asserted: no error at all,
every stream ended with `done`, the server's memory flat between the first and the last third of
the run, and token authentication writing `tenants_apitoken` at most once per token (not once
per request). Latencies are printed (run with -s), not asserted, beyond a generous sanity bound:
CI machines vary.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from bench.load import MEMORY_GROWTH_LIMIT_MB, LoadOptions, format_report, run, with_database

USERS = 8
WARMUP_SECONDS = 2.0
DURATION_SECONDS = 10.0
SANITY_P99_MS = 5000.0


@pytest.mark.timeout(120)
def test_streaming_chats_and_reads_under_sustained_load_from_another_process() -> None:
    superuser_url = settings.DATABASE_OWNER_URL or os.environ.get(
        "MINIRAG_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/minirag"
    )
    database = urlsplit(superuser_url).path.lstrip("/") or "minirag"
    report = run(
        LoadOptions(
            database_url=with_database(superuser_url, f"{database}_loadtest"),
            redis_url=settings.REDIS_URL,
            users=USERS,
            warmup=WARMUP_SECONDS,
            duration=DURATION_SECONDS,
            baseline=False,  # ratios are the benchmark's business; this test guards correctness
        )
    )
    print("\n" + format_report(report))
    summary = report.minirag.summary

    assert report.errors == 0, summary["error_samples"]
    assert summary["streams_started"] == summary["streams_done"] > USERS, "every stream must end with `done`"
    for kind in ("chat_first_delta", "chat_total", "messages", "sources", "bot_profiles"):
        row = report.minirag.kind(kind)
        assert row.get("count", 0) > 0, f"no {kind} request completed in the measured window"
        assert row["p99"] < SANITY_P99_MS, f"{kind}: p99 {row['p99']:.0f} ms"

    memory = report.minirag.memory
    assert memory["growth"] < MEMORY_GROWTH_LIMIT_MB, memory

    # Two tokens in play (the widget's bot token, the owner's tenant token), hundreds of requests:
    # last_used_at is written at most once a minute per token, never per request.
    assert summary["requests_total"] > 100
    assert report.apitoken_writes_run <= 2, report.apitoken_writes_run
    assert report.apitoken_update_statements_run <= 2 * 2, "UPDATEs are attempted only when a write is due"
    assert report.apitoken_writes_measured <= 2
    if settings.REDIS_URL:
        assert report.redis_keys > 0, "the widget rate limits should have been counted in Redis"
