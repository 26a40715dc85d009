"""Running a bench/ script from a test: a small run that proves it still works end to end (the real
numbers are in docs/benchmarks.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_bench(script: str, *arguments: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """`python bench/<script> <arguments>` from the repository root; its output as text."""
    return subprocess.run(
        [sys.executable, f"bench/{script}", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def json_summary(stdout: str, prefix: str) -> dict[str, Any]:
    """The summary a bench prints last as `<prefix> {json}`."""
    lines = [line for line in stdout.splitlines() if line.startswith(f"{prefix} ")]
    assert lines, stdout
    return json.loads(lines[-1].removeprefix(f"{prefix} "))
