"""Django's Redis cache with one connection pool per process.

Under ASGI, Django gives every request its own cache object (the `caches` handler is context-local,
Django ticket #35651), and each object builds its own redis-py connection pool: every request
opened a new TCP connection to Redis, and an open event stream (which renews an operator's presence
in the cache) kept one for as long as it stayed open — 200 open widgets, 200 Redis clients, plus
those of finished requests until garbage collection. This backend hands every cache object of the
process the same pool per server, so connections are reused across requests; redis-py pools are
thread-safe and start afresh in a forked child (a Celery prefork worker).
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient

_pools: dict[tuple[str, str], Any] = {}
_pools_lock = threading.Lock()


class SharedPoolRedisCacheClient(RedisCacheClient):
    def _get_connection_pool(self, write: bool) -> Any:
        server = self._servers[self._get_connection_pool_index(write)]
        key = (server, repr(sorted(self._pool_options.items(), key=lambda item: item[0])))
        pool = _pools.get(key)
        if pool is None:
            with _pools_lock:
                pool = _pools.get(key)
                if pool is None:
                    pool = _pools[key] = self._pool_class.from_url(server, **self._pool_options)
        return pool


class SharedPoolRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = SharedPoolRedisCacheClient
