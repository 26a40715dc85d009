"""gunicorn settings for the production image: uvicorn workers serving `minirag.asgi:application`.

    gunicorn minirag.asgi:application --config deploy/gunicorn.conf.py

Tunable from the environment (see .env.example): WEB_CONCURRENCY (worker processes), MINIRAG_LOG_FORMAT,
MINIRAG_LOG_LEVEL; any other gunicorn flag through GUNICORN_CMD_ARGS (e.g. "--timeout 60").

Metrics: every worker records into one directory (PROMETHEUS_MULTIPROC_DIR, a fresh temporary directory per
server start unless set), so a scrape of /metrics, whichever worker answers it, adds up all of them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from uvicorn_worker import UvicornWorker

# Must happen before anything imports prometheus_client: the workers inherit it.
_owns_metrics_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _owns_metrics_dir:
    _metrics_dir = Path(tempfile.mkdtemp(prefix="minirag-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_metrics_dir)
else:
    _metrics_dir = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    _metrics_dir.mkdir(parents=True, exist_ok=True)


class ClientAddressWorker(UvicornWorker):
    """A uvicorn worker that never takes the client address from request headers (uvicorn trusts
    X-Forwarded-For from 127.0.0.1 by default, so anything on this host could pick a fresh address
    per request and reset every per-address limit). The address is the TCP peer; MiniRAG itself
    reads X-Forwarded-For for exactly MINIRAG_NUM_PROXIES hops (docs/security.md)."""

    CONFIG_KWARGS = {**UvicornWorker.CONFIG_KWARGS, "proxy_headers": False}


bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
worker_class = ClientAddressWorker
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Streamed answers stay open for as long as the model writes; workers are restarted gracefully.
graceful_timeout = 30
timeout = 60
keepalive = 5
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("MINIRAG_LOG_LEVEL", "info").lower()

if os.environ.get("MINIRAG_LOG_FORMAT", "plain").lower() == "json":
    _json = {"()": "minirag.logs.JsonFormatter"}
    logconfig_dict: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": _json},
        "handlers": {
            "stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
            "stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
        },
        "root": {"level": "INFO", "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": loglevel.upper(), "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["stdout"], "propagate": False},
        },
    }


def on_starting(server: Any) -> None:
    """A server start begins with empty metrics (a reused PROMETHEUS_MULTIPROC_DIR is emptied)."""
    for entry in _metrics_dir.iterdir():
        if entry.is_file() and entry.suffix == ".db":
            entry.unlink()
        elif entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)


def child_exit(server: Any, worker: Any) -> None:
    """Forget a dead worker's live gauges; its counters stay in the totals."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    if _owns_metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
