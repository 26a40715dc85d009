"""Sliding-window rate limits counted in the shared cache (Redis in production, so every process
and every worker counts together; the per-process memory cache in embedded mode).

Each limit keeps one counter per fixed window plus the previous window's, and estimates the
events of the last `window` seconds as `previous * (share of it still inside the window) +
current`. That smooths the double burst a plain fixed window allows at its edges, at the cost of
two cache keys per limit. An event is counted against every limit at once or against none: it is
counted first (atomic INCR) and taken back if any limit is exceeded, so concurrent requests can
never all slip under the same limit.

When the shared cache cannot be reached, limits **fail open**: the event is let through and a
warning is logged (at most once a minute per process). The limits protect a tenant's budget
against abuse; failing closed would turn a cache outage into a refusal of every widget visitor of
every tenant, which is worse than a few minutes without counting.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis
from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.core.cache.backends.redis import RedisCache
from rest_framework import status
from rest_framework.exceptions import APIException

logger = logging.getLogger(__name__)

MINUTE = 60
DAY = 24 * 60 * 60
# What a cache backend raises when its server is down, unreachable or too slow to answer.
CACHE_OUTAGES: tuple[type[Exception], ...] = (redis.exceptions.RedisError, OSError)
OUTAGE_WARNING_INTERVAL_SECONDS = 60.0
_last_outage_warnings: dict[str, float] = {}
_outage_warning_lock = threading.Lock()


def warn_cache_outage(what: str, exc: Exception) -> None:
    """Log that `what` is not enforced because the cache failed, at most once a minute for each
    `what` (an outage would otherwise log once per request)."""
    now = time.monotonic()
    with _outage_warning_lock:
        if now - _last_outage_warnings.get(what, -OUTAGE_WARNING_INTERVAL_SECONDS) < OUTAGE_WARNING_INTERVAL_SECONDS:
            return
        _last_outage_warnings[what] = now
    logger.warning("%s not enforced: the shared cache is unavailable (%s: %s).", what, type(exc).__name__, exc)


@dataclass(frozen=True)
class Limit:
    """At most `limit` events per `window_seconds` for whoever `key` names (0 = unlimited).
    `description` completes "Too many messages …" in the refusal, e.g. "from this visitor"."""

    key: str
    limit: int
    window_seconds: int
    description: str

    def per(self) -> str:
        return "minute" if self.window_seconds == MINUTE else "day" if self.window_seconds == DAY else "window"


class RateLimited(APIException):
    """429 with `Retry-After` (DRF's handler adds the header from `wait`) and one sentence that
    says which limit was hit and when to try again."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "throttled"

    def __init__(self, limit: Limit, wait_seconds: int) -> None:
        unit = "second" if wait_seconds == 1 else "seconds"
        super().__init__(
            f"Too many messages {limit.description}: at most {limit.limit} per {limit.per()}. "
            f"Try again in {wait_seconds} {unit}."
        )
        self.wait = wait_seconds
        self.limit = limit


def _window_keys(limit: Limit, now: float) -> tuple[str, str, float]:
    index, offset = divmod(now, limit.window_seconds)
    base = f"rl:{limit.key}:{limit.window_seconds}"
    return f"{base}:{int(index)}", f"{base}:{int(index) - 1}", offset / limit.window_seconds


# For each window (KEYS: its current and previous keys; ARGV: its timeout): create the current key with
# its timeout if it is new, count one more event in it, and read the previous window's count. A
# script runs atomically, like the MULTI/EXEC it replaces, and is one command to send and one reply
# to parse: less than half the client's CPU of a pipeline of three commands per window.
_COUNT_SCRIPT = """
local counts = {}
for window = 1, #ARGV do
  local current = KEYS[2 * window - 1]
  redis.call('SET', current, 0, 'EX', ARGV[window], 'NX')
  counts[2 * window - 1] = redis.call('INCR', current)
  counts[2 * window] = tonumber(redis.call('GET', KEYS[2 * window]) or 0)
end
return counts
"""
_count_script: redis.commands.core.Script | None = None


def _count(windows: Sequence[tuple[str, str, int]]) -> list[tuple[int, int]]:
    """For each (current key, previous key, timeout): count one more event in the current window
    (the key created with its timeout if new) and read the previous window's count. Against Redis
    that is one script call for all limits instead of three commands per limit."""
    global _count_script
    backend = caches[DEFAULT_CACHE_ALIAS]
    if isinstance(backend, RedisCache):
        client = backend._cache.get_client(write=True)
        if _count_script is None:
            _count_script = client.register_script(_COUNT_SCRIPT)
        keys = [backend.make_and_validate_key(key) for current, previous, _ in windows for key in (current, previous)]
        replies = _count_script(keys=keys, args=[timeout for _, _, timeout in windows], client=client)
        return [(int(replies[2 * n]), int(replies[2 * n + 1])) for n in range(len(windows))]
    counts = []
    for current_key, previous_key, timeout in windows:
        cache.add(current_key, 0, timeout=timeout)
        try:
            current = cache.incr(current_key)
        except ValueError:  # the key expired between add and incr
            cache.set(current_key, 1, timeout=timeout)
            current = 1
        counts.append((current, cache.get(previous_key) or 0))
    return counts


def seconds_until_allowed(*, previous: int, current: int, limit: int, elapsed: float, window: int) -> int:
    """How long until one more event fits, `current` not counting the refused one; `elapsed` is
    the share (0..1) of the current window already gone."""
    if current + 1 <= limit and previous > 0:
        # Still in this window, once enough of the previous window has slid out.
        needed = 1 - (limit - current - 1) / previous
        if needed <= 1:
            return max(1, math.ceil((needed - elapsed) * window))
    # In the next window this window's count becomes the one sliding out.
    needed_next = max(0.0, 1 - (limit - 1) / current) if current else 0.0
    return max(1, math.ceil((1 - elapsed + needed_next) * window))


def hit(limits: Sequence[Limit], *, now: float | None = None) -> None:
    """Count one event against every limit, or raise `RateLimited` (counting it against none).
    Lets the event through, with a logged warning, when the cache is down (see the module's doc)."""
    try:
        _hit(limits, now=now)
    except CACHE_OUTAGES as exc:
        warn_cache_outage("Rate limits", exc)


def _hit(limits: Sequence[Limit], *, now: float | None = None) -> None:
    now = time.time() if now is None else now
    active = [limit for limit in limits if limit.limit > 0]
    windows = [_window_keys(limit, now) for limit in active]
    counts = _count(
        [
            (current, previous, 2 * limit.window_seconds + 60)
            for limit, (current, previous, _) in zip(active, windows, strict=True)
        ]
    )
    refusals: list[tuple[int, Limit]] = []
    for limit, (_, _, elapsed), (current, previous) in zip(active, windows, counts, strict=True):
        if previous * (1 - elapsed) + current > limit.limit:
            wait = seconds_until_allowed(
                previous=previous,
                current=current - 1,
                limit=limit.limit,
                elapsed=elapsed,
                window=limit.window_seconds,
            )
            refusals.append((wait, limit))
    if refusals:
        for current_key, _, _ in windows:
            try:
                cache.decr(current_key)
            except ValueError:  # expired meanwhile: nothing left to take back
                pass
        wait, limit = max(refusals, key=lambda refusal: refusal[0])
        raise RateLimited(limit, wait)
