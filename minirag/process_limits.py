"""The process's own limits, raised where the defaults are too low for a streaming server.

Every open answer stream is a socket, so a web process holds as many open files as streams, plus
its database connections, index files and logs. The usual soft limit on open files is 1,024
(systemd's default, and containers started by recent Docker/containerd), with a hard limit far
above (524,288 or more): a thousand streams would fail with "Too many open files" while the
kernel would allow many more. Raising the soft limit to the hard one is what any process may do for
itself (Go does it at start-up, nginx has `worker_rlimit_nofile`); this does it once, when the
ASGI application is loaded (minirag/asgi.py). The hard limit itself is the operator's
(`ulimit -Hn`, systemd `LimitNOFILE=`, `docker run --ulimit nofile=`).

The cyclic garbage collector's defaults are set for short scripts. In a server they cost twice:

* a full collection walks every object the process holds, and half a million of them are its
  code (Django, DRF, LiteLLM's tables of models and prices), loaded at start-up and never freed.
  One took 240 to 340 ms, holding the interpreter, so every request and open stream of the process
  stopped for that long about every 20 seconds under load. `gc.freeze()` once start-up is done
  moves them out of the collector's sight for good;
* a young collection every 700 new objects (a chat turn makes tens of thousands) promoted every
  object alive at that instant, the turn's short-lived ones included, to the older generations,
  whose collections then walked them again: 20,000 lets most of a request's objects die young.

In one run of bench/load.py's mixed load (start-up, seeding, 35 s of 32 users) the collector's time
fell from 1.5 s to 0.6 s, and its longest pause from 307 ms to 48 ms (docs/benchmarks.md).
"""

from __future__ import annotations

import gc
import resource

# Young collections every 20,000 new objects instead of 700, the middle generation's every 20 of
# them instead of 10, the oldest's as Python's own: the best of the settings measured (benchmarks.md).
COLLECTOR_THRESHOLDS = (20_000, 20, 10)
# A hard limit of "unlimited" cannot be the soft limit: the kernel caps open files at nr_open.
_NR_OPEN_DEFAULT = 1_048_576


def raise_open_files_limit() -> tuple[int, int]:
    """The soft limit on open files raised to the hard limit; returns (soft, hard) afterwards. A
    soft limit already there (or unlimited) is left alone, and so is one the system refuses to
    raise (the caller sees it in the result)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard
    if hard == resource.RLIM_INFINITY:
        try:
            with open("/proc/sys/fs/nr_open") as nr_open:
                wanted = int(nr_open.read())
        except (OSError, ValueError):
            wanted = _NR_OPEN_DEFAULT
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return soft, hard
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError):
        pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def tune_garbage_collector() -> None:
    """Once start-up is done (every module of the process imported): what exists now is never
    collected again, and young collections run at `COLLECTOR_THRESHOLDS`. Called by the ASGI entry
    point and by a Celery worker before it starts its pool (whose processes inherit both)."""
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)
