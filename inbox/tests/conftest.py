"""Hand-off test helpers: a bot with hand-off on, a visitor's widget client, a visitor's chat."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.test import APIClient

from chat.tests.conftest import model_spy  # noqa: F401 - the chat tests' spy on model calls
from conftest import TenantWorld, api_client
from tenants.tenancy import tenant_scope


@pytest.fixture(autouse=True)
def _nobody_online() -> Any:
    """Presence lives in the cache, shared by every test in the process: each starts offline."""
    clear_this_process_cache()
    yield
    clear_this_process_cache()


def clear_this_process_cache() -> None:
    """`cache.clear()` for this process's keys only. On Redis, `clear()` is FLUSHDB: it would also
    wipe the keys of the other pytest-xdist workers' tests sharing the database mid-test. Every
    key this process writes carries its cache KEY_PREFIX (minirag-test-<pid>, settings_test.py)."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache) or not backend.key_prefix:
        backend.clear()
        return
    client = backend._cache.get_client(write=True)
    keys = list(client.scan_iter(match=f"{backend.key_prefix}:*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])


def set_handoff(world: TenantWorld, mode: str = "on_request", **fields: Any) -> None:
    response = world.client("admin").patch(
        f"/v1/bot-profiles/{world.bot.pk}", {"handoff": mode, **fields}, format="json"
    )
    assert response.status_code == 200, response.content
    with tenant_scope(world.tenant):
        world.bot.refresh_from_db()


def visitor(world: TenantWorld, visitor_id: str = "visitor-1") -> APIClient:
    return api_client(world.tokens["bot"], HTTP_X_MINIRAG_VISITOR=visitor_id)


def visitor_chat(world: TenantWorld, visitor_id: str = "visitor-1", message: str = "") -> str:
    """A chat the visitor started (answered by the bot); its id."""
    response = visitor(world, visitor_id).post(
        "/v1/chat",
        {
            "bot_profile_id": str(world.bot.pk),
            "message": message or f"How long do refunds at {world.tenant.slug} take?",
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    return response.json()["chat_id"]
