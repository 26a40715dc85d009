"""Django's Redis cache with one connection pool per process.

Under ASGI, Django gives every request its own cache object (the `caches` handler is context-local,
Django ticket #35651), and each object builds its own redis-py connection pool: every request
opened a new TCP connection to Redis, and an open event stream (which renews an operator's presence
in the cache) kept one for as long as it stayed open — 200 open widgets, 200 Redis clients, plus
those of finished requests until garbage collection. This backend hands every cache object of the
process the same pool per server, so connections are reused across requests; redis-py pools are
thread-safe and start afresh in a forked child (a Celery prefork worker). The client object in
front of a pool is shared too: redis-py builds a client's response-callback tables on every
construction (≈ 0.3 ms of CPU), and Django made one per cache call — a rate-limited chat message
made eighteen.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient

# (server, pool options) -> the process's client of that server; the client owns its pool.
_clients: dict[tuple[str, str], Any] = {}
_clients_lock = threading.Lock()


class SharedPoolRedisCacheClient(RedisCacheClient):
    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        server = self._servers[self._get_connection_pool_index(write)]
        identity = (server, repr(sorted(self._pool_options.items(), key=lambda item: item[0])))
        client = _clients.get(identity)
        if client is None:
            with _clients_lock:
                client = _clients.get(identity)
                if client is None:
                    pool = self._pool_class.from_url(server, **self._pool_options)
                    client = _clients[identity] = self._client(connection_pool=pool)
        return client


class SharedPoolRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = SharedPoolRedisCacheClient
