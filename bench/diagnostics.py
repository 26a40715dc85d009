"""Where a benchmark server's memory goes: helpers for the server (bench/bench_asgi.py) and for the
benchmark reading what it wrote (bench/streams.py).

In the server, with `MINIRAG_BENCH_DIAGNOSE=<dir>`, SIGUSR1 writes `<dir>/<n>.json`: the threads
by name (a pool's numbered threads counted together) and the 40 most common object types (by
`gc.get_objects()`); with `MINIRAG_BENCH_TRACEMALLOC=<frames>` as well, tracemalloc traces from
the first signal on and each signal also writes `<dir>/<n>.tracemalloc` (a snapshot: compare two
with `top_growth` or `growth_by_owner`: what was allocated after the first and is still alive at
the second). Tracing costs memory and CPU: the resident memory of a traced run means nothing.
"""

from __future__ import annotations

import collections
import gc
import json
import os
import re
import signal
import sys
import threading
import tracemalloc
from pathlib import Path
from typing import Any

from minirag.process_limits import raise_open_files_limit

__all__ = [
    "growth_by_owner",
    "install_diagnostics",
    "open_files_limit",
    "raise_open_files_limit",
    "request_dump",
    "top_growth",
]

ROOT = Path(__file__).resolve().parent.parent
DIAGNOSE_ENV = "MINIRAG_BENCH_DIAGNOSE"
TRACEMALLOC_ENV = "MINIRAG_BENCH_TRACEMALLOC"


def open_files_limit(pid: int) -> int | None:
    """The soft "Max open files" of another process (from /proc), None if unreadable."""
    try:
        for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                value = line.split()[3]
                return None if value == "unlimited" else int(value)
    except OSError:
        return None
    return None


def _thread_kind(name: str) -> str:
    """A thread's name without its number: ThreadPoolExecutor-12_0 → ThreadPoolExecutor-N_N."""
    return re.sub(r"\d+", "N", name)


def _dump(directory: Path) -> None:
    number = len(list(directory.glob("*.json")))
    threads = collections.Counter(_thread_kind(thread.name) for thread in threading.enumerate())
    objects = collections.Counter(type(item).__qualname__ for item in gc.get_objects())
    if tracemalloc.is_tracing():
        tracemalloc.take_snapshot().dump(str(directory / f"{number}.tracemalloc"))
    payload = {"threads": dict(threads.most_common()), "objects": dict(objects.most_common(40))}
    (directory / f"{number}.json.part").write_text(json.dumps(payload))
    (directory / f"{number}.json.part").rename(directory / f"{number}.json")  # complete when it appears


def install_diagnostics() -> None:
    """In a benchmark server: the SIGUSR1 dump described above, if `MINIRAG_BENCH_DIAGNOSE` is set."""
    target = os.environ.get(DIAGNOSE_ENV)
    if not target:
        return
    frames = int(os.environ.get(TRACEMALLOC_ENV) or 0)
    directory = Path(target)
    directory.mkdir(parents=True, exist_ok=True)

    def on_signal(signum: int, frame: Any) -> None:
        try:
            # Tracing starts at the first dump (tracing the imports would take minutes): what the
            # snapshots compare is what was allocated after it and is still alive.
            if frames > 0 and not tracemalloc.is_tracing():
                tracemalloc.start(frames)
            _dump(directory)
        except Exception as exc:  # noqa: BLE001 - a diagnostic must never take the server down
            print(f"bench diagnostics: {type(exc).__name__}: {exc}", file=sys.stderr)

    signal.signal(signal.SIGUSR1, on_signal)


# --- The benchmark's side ------------------------------------------------------------------------


def request_dump(pid: int, directory: Path, timeout: float = 120.0) -> dict[str, Any]:
    """Signal the server, wait for its dump, return it (with `number` added)."""
    import time

    number = len(list(directory.glob("*.json")))
    os.kill(pid, signal.SIGUSR1)
    path = directory / f"{number}.json"
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server wrote no diagnostics to {path} within {timeout:.0f} s")
        time.sleep(0.1)
    return {**json.loads(path.read_text()), "number": number}


def _snapshots(directory: Path, before: int, after: int) -> tuple[Any, Any] | None:
    first, second = directory / f"{before}.tracemalloc", directory / f"{after}.tracemalloc"
    if not first.exists() or not second.exists():
        return None
    ignore = [
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
    ]
    return (
        tracemalloc.Snapshot.load(str(first)).filter_traces(ignore),
        tracemalloc.Snapshot.load(str(second)).filter_traces(ignore),
    )


def top_growth(directory: Path, before: int, after: int, limit: int = 25) -> list[str]:
    """The allocations that grew most between two tracemalloc snapshots, by traceback, as lines
    (`+KB, +count, the innermost frames`); empty when the server did not trace."""
    snapshots = _snapshots(directory, before, after)
    if snapshots is None:
        return []
    old, new = snapshots
    lines = []
    for stat in new.compare_to(old, "traceback")[:limit]:
        innermost = list(stat.traceback)[::-1][:6]  # a Traceback runs from the oldest frame to the newest
        frames = " ← ".join(f"{_short(frame.filename)}:{frame.lineno}" for frame in innermost)
        lines.append(f"{stat.size_diff / 1024:+10.0f} KB {stat.count_diff:+7d}  {frames}")
    return lines


# Frames that allocate on behalf of their caller: the owner of an allocation is further out.
_GENERIC = ("pydantic/", "/asyncio/", "/typing.py", "/copy.py", "/json/", "/functools.py", "/abc.py", "/enum.py")


def _owner(traceback: Any, *, line: bool = False) -> str:
    """Whose allocation this is: the package or project app of its innermost frame that is not a
    generic helper (pydantic, asyncio, json ...); with `line`, that frame as `file:line`."""
    frames = list(traceback)[::-1]
    frame = next((f for f in frames if not any(part in f.filename for part in _GENERIC)), frames[0])
    name = _short(frame.filename)
    if line:
        return f"{name}:{frame.lineno}"
    if "/" not in name or name.startswith(".") or name.startswith("/"):
        return "python"
    return name.split("/", 1)[0]


def growth_by_owner(directory: Path, before: int, after: int, *, lines: bool = False) -> dict[str, int]:
    """The bytes still allocated at the second snapshot that were not at the first, by owner
    (`_owner`; with `lines`, the owner's frame itself, `file:line`), largest first, with the total
    under "total"."""
    snapshots = _snapshots(directory, before, after)
    if snapshots is None:
        return {}
    old, new = snapshots
    owners: dict[str, int] = collections.Counter()
    for stat in new.compare_to(old, "traceback"):
        owners[_owner(stat.traceback, line=lines)] += stat.size_diff
    ordered = dict(sorted(owners.items(), key=lambda item: -item[1]))
    return {"total": sum(owners.values()), **ordered}


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename.removeprefix(f"{ROOT}/")
