"""Database connection handling for long-lived requests."""

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
