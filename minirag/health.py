"""Health of the three backing services, in the v1 shape.

The keys stay `postgres`, `qdrant` and `redis` whatever is actually in use; in the embedded mode
they report SQLite, local-mode Qdrant and the in-process queue. Versions and error details are
for admins only (the views decide); the checks themselves always gather them.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
from django.conf import settings
from django.db import connection

from minirag.vectorstore import get_qdrant_client, qdrant_mode, qdrant_server_version

PROCESS_STARTED_AT = time.time()
CHECK_TIMEOUT_SECONDS = 2


@dataclass
class ComponentHealth:
    status: str
    detail: str | None = None
    version: str | None = None
    latency_ms: int | None = None

    def public(self) -> dict[str, Any]:
        """What anyone may see: whether it works and how fast, not what runs or why it failed."""
        return {"status": self.status, "detail": None, "version": None, "latency_ms": self.latency_ms}

    def full(self) -> dict[str, Any]:
        return asdict(self)


def _timed(check: Callable[[], tuple[str | None, str | None]]) -> ComponentHealth:
    started = time.perf_counter()
    try:
        detail, version = check()
    except Exception as exc:  # noqa: BLE001 - a health check reports every failure, it never raises
        return ComponentHealth(
            status="error",
            detail=f"{type(exc).__name__}: {exc}"[:500],
            latency_ms=round((time.perf_counter() - started) * 1000),
        )
    return ComponentHealth(
        status="ok", detail=detail, version=version, latency_ms=round((time.perf_counter() - started) * 1000)
    )


def _check_database() -> tuple[str | None, str | None]:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SHOW server_version")
            return "postgresql", str(cursor.fetchone()[0])
        cursor.execute("SELECT 1")
        cursor.fetchone()
    if connection.vendor == "sqlite":
        return "sqlite (embedded)", sqlite3.sqlite_version
    return connection.vendor, None


def _check_qdrant() -> tuple[str | None, str | None]:
    client = get_qdrant_client()
    client.get_collections()
    mode = qdrant_mode()
    detail = {"server": "qdrant server", "local": "qdrant local mode (embedded)", "memory": "qdrant in-memory"}[mode]
    return detail, qdrant_server_version(client)


def _check_redis() -> tuple[str | None, str | None]:
    if not settings.REDIS_URL:
        return "in-process queue and local-memory cache (no Redis configured)", None
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=CHECK_TIMEOUT_SECONDS, socket_connect_timeout=CHECK_TIMEOUT_SECONDS
    )
    try:
        client.ping()
        return "redis", str(client.info("server").get("redis_version"))
    finally:
        client.close()


def check_components() -> dict[str, ComponentHealth]:
    return {
        "postgres": _timed(_check_database),
        "qdrant": _timed(_check_qdrant),
        "redis": _timed(_check_redis),
    }


# --- Labels for the dashboard (the v1 JSON keeps its keys: postgres, qdrant, redis) -------------

_COMPONENT_ROLES = {"postgres": "Database", "qdrant": "Vector store", "redis": "Queue and cache"}

# What a tenant's staff are told each component does for them, in their words (no vendor names).
COMPONENT_PURPOSES = {
    "postgres": "Saving and reading your bots, sources, chats and settings",
    "qdrant": "Searching your knowledge to answer questions",
    "redis": "Background work: reading new sources, sending webhooks",
}


def component_label(name: str) -> str:
    """What actually runs behind a component key, for the operator's health page:
    `postgres` → "Database: SQLite (embedded)" in the embedded mode, "Database: PostgreSQL" in production."""
    role = _COMPONENT_ROLES.get(name, name)
    if name == "postgres":
        vendor = connection.vendor
        what = {"postgresql": "PostgreSQL", "sqlite": "SQLite (embedded)"}.get(vendor, vendor)
    elif name == "qdrant":
        what = {
            "server": "Qdrant server",
            "local": "Qdrant local mode (embedded)",
            "memory": "Qdrant in memory (embedded)",
        }.get(qdrant_mode(), "Qdrant")
    elif name == "redis":
        what = "Redis" if settings.REDIS_URL else "in-process tasks and local-memory cache (no Redis)"
    else:
        return role
    return f"{role}: {what}"


def overall_status(components: dict[str, ComponentHealth]) -> str:
    return "ok" if all(c.status == "ok" for c in components.values()) else "degraded"


def uptime_seconds() -> int:
    return int(time.time() - PROCESS_STARTED_AT)


# --- Detailed view: per-tenant counts and configuration ---------------------------------------

TenantCounter = Callable[[Any], dict[str, Any]]
_tenant_counters: list[TenantCounter] = []


def register_tenant_counter(counter: TenantCounter) -> TenantCounter:
    """Apps contribute to the detailed health's `counts` (from their AppConfig.ready)."""
    if counter not in _tenant_counters:
        _tenant_counters.append(counter)
    return counter


def tenant_counts(tenant: Any) -> dict[str, Any]:
    counts: dict[str, Any] = {}
    for counter in _tenant_counters:
        counts.update(counter(tenant))
    return counts


def mask_url(url: str) -> str | None:
    """`scheme://user:secret@host/db` → `scheme://user:***@host/db`."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


PROVIDER_KEY_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "OLLAMA_API_BASE")


def config_summary() -> dict[str, Any]:
    database = settings.DATABASES["default"]
    return {
        "mode": "embedded" if not settings.REDIS_URL else "production",
        "debug": settings.DEBUG,
        "database": {
            "engine": database["ENGINE"].rsplit(".", 1)[-1],
            "name": str(database.get("NAME")),
            "host": database.get("HOST") or None,
        },
        "redis_url": mask_url(settings.REDIS_URL),
        "celery_broker_url": mask_url(settings.CELERY_BROKER_URL),
        "tasks_in_process": settings.TASKS_IN_PROCESS,
        "qdrant": {
            "mode": qdrant_mode(),
            "url": mask_url(settings.QDRANT_URL),
            "path": settings.QDRANT_PATH if qdrant_mode() != "server" else None,
            "api_key": "***" if settings.QDRANT_API_KEY else None,
        },
        "default_chat_model": settings.DEFAULT_CHAT_MODEL,
        "default_embedding_model": settings.DEFAULT_EMBEDDING_MODEL,
        "provider_keys": {name: ("***" if os.environ.get(name) else None) for name in PROVIDER_KEY_VARIABLES},
        "allow_signup": settings.ALLOW_SIGNUP,
        "jwt_ttl_seconds": settings.JWT_TTL_SECONDS,
        "encryption_keys": len(settings.ENCRYPTION_KEYS),
        "max_json_body_bytes": settings.MAX_JSON_BODY_BYTES,
        "throttle_rates": dict(settings.THROTTLE_RATES),
    }
