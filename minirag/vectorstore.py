"""The Qdrant client, one code path for all three modes:

* server (`QDRANT_URL`, production),
* local path mode (`QDRANT_PATH` directory, the embedded default; one process at a time),
* in-memory (`QDRANT_PATH=:memory:`, tests).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from qdrant_client import QdrantClient

SERVER_TIMEOUT_SECONDS = 10


def qdrant_mode() -> str:
    if settings.QDRANT_URL:
        return "server"
    return "memory" if settings.QDRANT_PATH == ":memory:" else "local"


@lru_cache(maxsize=1)
def get_qdrant_client() -> QdrantClient:
    mode = qdrant_mode()
    if mode == "server":
        return QdrantClient(
            url=settings.QDRANT_URL, api_key=settings.QDRANT_API_KEY or None, timeout=SERVER_TIMEOUT_SECONDS
        )
    if mode == "memory":
        return QdrantClient(location=":memory:")
    return QdrantClient(path=settings.QDRANT_PATH)


@receiver(setting_changed)
def _drop_client_on_settings_change(*, setting: str, **kwargs: Any) -> None:
    if setting in ("QDRANT_URL", "QDRANT_PATH", "QDRANT_API_KEY"):
        get_qdrant_client.cache_clear()


def qdrant_server_version(client: QdrantClient) -> str | None:
    """The server's version, or None in local/in-memory mode (there is no server)."""
    if qdrant_mode() != "server":
        return None
    return client.info().version
