#!/usr/bin/env python3
"""Container healthchecks for the MiniRAG image: standard library only (the slim image has no curl).

    python deploy/healthcheck.py web             GET http://127.0.0.1:$PORT/health answers 200 {"status": "ok"}
    python deploy/healthcheck.py beat PATH [AGE] the beat schedule file PATH (or PATH.db, ...) was written
                                                 in the last AGE seconds (default 600; beat syncs every 3 min)

Exit status 0 means healthy; otherwise one line on stderr says why. The Celery worker's check is
`celery -A minirag inspect ping` (see docker-compose.yml). /health is exempt from the https redirect,
and the request carries a Host from MINIRAG_ALLOWED_HOSTS so host validation accepts it.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import time
from pathlib import Path

TIMEOUT_SECONDS = 5.0


def _host_header() -> str:
    for candidate in os.environ.get("MINIRAG_ALLOWED_HOSTS", "").split(","):
        candidate = candidate.strip()
        if candidate and candidate != "*":
            return candidate.lstrip(".")
    return "localhost"


def check_web() -> str | None:
    port = int(os.environ.get("PORT", "8000"))
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_SECONDS)
    try:
        connection.request("GET", "/health", headers={"Host": _host_header(), "Accept": "application/json"})
        response = connection.getresponse()
        body = response.read(4096)
    except OSError as exc:
        return f"GET /health failed: {exc}"
    finally:
        connection.close()
    if response.status != 200:
        return f"GET /health answered {response.status}"
    try:
        status = json.loads(body).get("status")
    except ValueError:
        status = None
    return None if status == "ok" else f"GET /health answered {body[:200]!r}"


def check_beat(schedule: str, max_age: float) -> str | None:
    path = Path(schedule)
    # Depending on the dbm module, the shelve file is PATH, PATH.db or PATH.dat/.dir/.bak.
    files = [p for p in path.parent.glob(f"{path.name}*") if p.is_file()]
    if not files:
        return f"no beat schedule file at {path}"
    age = time.time() - max(p.stat().st_mtime for p in files)
    return None if age <= max_age else f"the beat schedule was last written {age:.0f} s ago (limit {max_age:.0f} s)"


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[1] == "web":
        problem = check_web()
    elif len(argv) >= 3 and argv[1] == "beat":
        problem = check_beat(argv[2], float(argv[3]) if len(argv) > 3 else 600.0)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
