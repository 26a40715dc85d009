"""The live-channels benchmark keeps working (20 channels, 1 round; the real numbers are in
docs/benchmarks.md, "Inbox: live channels").

It runs as production does — its own uvicorn process, a throwaway PostgreSQL database, Redis
pub/sub — with a database pool of 5 for 20 open channels: an open stream that kept its pooled
connection (as they did before) would starve the replies and fail this run.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings

from minirag.tests.benches import run_bench


def _summary(stdout: str) -> dict[str, str]:
    lines = [line for line in stdout.splitlines() if line.startswith("summary: ")]
    assert lines, stdout
    return dict(pair.split("=", 1) for pair in lines[-1].removeprefix("summary: ").split())


@pytest.mark.timeout(300)
def test_the_live_channels_benchmark_runs_end_to_end() -> None:
    superuser = urlsplit(settings.DATABASE_OWNER_URL)
    database = superuser.path.lstrip("/") or "minirag"
    result = run_bench(
        "inbox_channels.py",
        "--quick",
        "--db-pool",
        "5",
        "--database-url",
        urlunsplit(superuser._replace(path=f"/{database}_inbox_bench")),
        "--redis-url",
        settings.REDIS_URL,
        timeout=240,
    )
    print(result.stdout)
    assert "Traceback" not in result.stderr, result.stderr
    summary = _summary(result.stdout)
    assert summary["errors"] == "0", result.stdout
    assert summary["channels"] == "20" and summary["rounds"] == "1"
    assert summary["delivered"] == summary["expected"] == "20", result.stdout
    for key in ("p50_ms", "p95_ms", "max_ms", "baseline_p95_ms", "ratio_p95", "post_p50_ms", "kb_per_channel"):
        float(summary[key])  # every figure printed, and a number
    assert float(summary["p95_ms"]) > 0
    # A sanity bound only (machines vary, and other tests share this one): the target is 1 s.
    assert float(summary["p95_ms"]) < 5000, result.stdout
    assert result.returncode in (0, 1), result.stdout + result.stderr  # 1: the 1 s target missed on a busy machine
