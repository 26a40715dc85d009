"""The process's own limits, raised where the defaults are too low for a streaming server.

Every open answer stream is a socket, so a web process holds as many open files as streams, plus
its database connections, index files and logs. The usual soft limit on open files is 1,024
(systemd's default, and containers started by recent Docker/containerd), with a hard limit far
above (524,288 or more): a thousand streams would fail with "Too many open files" while the
kernel would allow many more. Raising the soft limit to the hard one is what any process may do for
itself (Go does it at start-up, nginx has `worker_rlimit_nofile`); this does it once, when the
ASGI application is loaded (minirag/asgi.py). The hard limit itself is the operator's
(`ulimit -Hn`, systemd `LimitNOFILE=`, `docker run --ulimit nofile=`).
"""

from __future__ import annotations

import resource

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
