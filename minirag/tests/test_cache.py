"""The Redis cache shares one connection pool per process across requests (minirag/redis_cache.py):
under ASGI every request gets its own cache object, which used to open its own connections."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import caches


def test_cache_objects_of_different_requests_share_one_pool() -> None:
    assert settings.CACHES["default"]["BACKEND"] == "minirag.redis_cache.SharedPoolRedisCache"  # the suite's Redis
    # What Django's context-local cache handler does for each new request under ASGI.
    first, second = caches.create_connection("default"), caches.create_connection("default")
    assert first is not second and first._cache is not second._cache
    first.set("test:shared-pool", 1)
    assert second.get("test:shared-pool") == 1
    # One client (and behind it one pool) per server for the whole process: building a redis-py
    # client costs more CPU than the command it sends.
    assert first._cache.get_client(write=True) is second._cache.get_client(write=True)
    assert first._cache.get_client(write=False) is second._cache.get_client(write=False)
    assert first._cache.get_client().connection_pool is second._cache.get_client().connection_pool
