"""Database connection handling: long-lived requests, and pooled connections that must survive a
database restart."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.db import connection

T = TypeVar("T")


def release_connection() -> None:
    """Give this thread's connection back (to the pool, or closed) between the bursts of queries
    of a long request: a streamed answer holds no connection while the model writes. Never
    inside a transaction (which includes a test's)."""
    if not connection.in_atomic_block:
        connection.close()


def releasing_connection(function: Callable[..., T]) -> Callable[..., T]:
    """`function`, then `release_connection()`."""

    @wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return function(*args, **kwargs)
        finally:
            release_connection()

    return wrapper


# --- Pooled connections across a database restart ----------------------------------------------
#
# psycopg's pool keeps idle connections; a restart, a failover or `pg_terminate_backend` closes
# them on the server's side and the pool cannot know. Without a check it hands them out and each
# fails one request. `CONN_HEALTH_CHECKS` makes Django give the pool psycopg's own check, which
# finds a dead connection before the request does, but tries the idle connections one by one,
# pausing 1, 2, 4... seconds between failures: after a restart the first request can wait for
# seconds, or run out of the pool timeout. `check_pooled_connection` adds one thing: a dead
# connection means the server restarted, so the pool is drained at once and the request gets a
# fresh connection without the pauses.


def check_pooled_connection(conn: Any) -> None:
    """psycopg's connection check; when it fails, the pool is drained (replaced in the background)."""
    from psycopg_pool import ConnectionPool

    try:
        ConnectionPool.check_connection(conn)
    except Exception:
        pool = getattr(conn, "_pool", None)  # set by the pool while it hands the connection out
        if pool is not None:
            pool.drain()
        raise


def upgrade_pool_check(sender: Any, connection: Any, **kwargs: Any) -> None:
    """`connection_created` receiver: once the pool exists, swap psycopg's plain check (which Django
    installed for CONN_HEALTH_CHECKS) for `check_pooled_connection`. Django offers no way to pass
    the pool another check; should psycopg rename the attribute, the plain check stays (slower
    recovery, same correctness)."""
    if connection.vendor != "postgresql" or connection.pool is None:
        return
    from psycopg_pool import ConnectionPool

    pool = connection.pool
    if getattr(pool, "_check", None) is ConnectionPool.check_connection:
        pool._check = check_pooled_connection
