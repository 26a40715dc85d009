"""API tokens recently resolved, kept for a few seconds: a request need not read its token, the
token's tenant and its user from the database every time (one joined read and its row-level-
security round trip, ≈ 10% of a read request's CPU).

Safe by construction:

* what is cached is the **rows**, not a verdict: every request still checks them — revoked,
  expired (against the clock of that request), tenant or user disabled, the bot token's origin;
* an entry is used only while the **credential epoch** it was read under is still current. Any
  change to a token, tenant or user — a save, a delete, a queryset update or delete through the
  ORM — moves the epoch, in this process at once and in Redis for every other process (web
  processes and workers alike), after the transaction commits and right away: the next request
  anywhere reads the rows afresh;
* the epoch is read **before** the rows, so a change that lands while they are being read moves
  it past them;
* when Redis cannot be read the cache is not used (each request reads the database, as without
  a cache); when the epoch cannot be moved in Redis, other processes still drop their entries
  after `MINIRAG_TOKEN_CACHE_SECONDS` (default 10 s), the bound that also covers a change made
  outside the ORM (SQL typed into psql);
* each request gets its own copies of the model instances: nothing one request sets on its
  `request.user` is seen by another.

`MINIRAG_TOKEN_CACHE_SECONDS=0` turns the cache off.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from minirag.rate_limits import CACHE_OUTAGES, warn_cache_outage

EPOCH_KEY = "credentials:epoch"
# Tokens are few per tenant; the bound only stops a flood of distinct valid tokens from growing the
# process without limit (past it the cache starts over).
MAX_ENTRIES = 10_000

_local_epoch = 0
_lock = threading.Lock()


@dataclass(frozen=True)
class _Entry:
    token: Any  # ApiToken with its tenant and user
    epoch: tuple[int, int]
    loaded_at: float


_entries: dict[str, _Entry] = {}


def current_epoch() -> tuple[int, int] | None:
    """This process's epoch and the shared one; None when the shared one cannot be read."""
    try:
        shared = cache.get(EPOCH_KEY, 0)
    except CACHE_OUTAGES as exc:
        warn_cache_outage("The API token cache", exc)
        return None
    return _local_epoch, int(shared)


def cached_token(token_hash: str, epoch: tuple[int, int] | None) -> Any | None:
    """A private copy of the token row read under `epoch` (with its tenant and user), if any."""
    if epoch is None or settings.TOKEN_CACHE_SECONDS <= 0:
        return None
    entry = _entries.get(token_hash)
    if entry is None or entry.epoch != epoch or time.monotonic() - entry.loaded_at >= settings.TOKEN_CACHE_SECONDS:
        return None
    return _copied(entry.token)


def remember(token_hash: str, token: Any, epoch: tuple[int, int] | None) -> None:
    """Keep `token` (just read from the database, after `epoch` was read) for later requests."""
    if epoch is None or settings.TOKEN_CACHE_SECONDS <= 0:
        return
    with _lock:
        if len(_entries) >= MAX_ENTRIES:
            _entries.clear()
        # A copy: the request that read `token` may change its objects (its request.user).
        _entries[token_hash] = _Entry(_copied(token), epoch, time.monotonic())


def _copied(token: Any) -> Any:
    """The token, its tenant and its user, each a copy of its own."""
    copied = copy.copy(token)
    copied.tenant = copy.copy(token.tenant)
    copied.user = copy.copy(token.user)
    return copied


def used(token_hash: str, when: Any) -> None:
    """The token's `last_used_at` was just written: later requests must not write it again."""
    entry = _entries.get(token_hash)
    if entry is not None:
        entry.token.last_used_at = when


def credentials_changed() -> None:
    """A token, tenant or user changed: every cached token is stale, here and in every process.
    Moved now and again once the surrounding transaction commits (a process that read the old
    rows in between must not keep them)."""
    _move_epoch()
    transaction.on_commit(_move_epoch)


def _move_epoch() -> None:
    global _local_epoch
    with _lock:
        _local_epoch += 1
        _entries.clear()
    try:
        if not cache.add(EPOCH_KEY, 1, timeout=None):
            cache.incr(EPOCH_KEY)
    except CACHE_OUTAGES as exc:
        warn_cache_outage("Moving the API token cache's epoch", exc)
    except ValueError:  # evicted between add and incr: start it again
        cache.set(EPOCH_KEY, int(time.time()), timeout=None)


# Written on use, never read to decide anything: a change to them stales nothing.
IGNORED_FIELDS = frozenset({"last_used_at", "last_login"})


def on_credential_write(sender: type, **kwargs: Any) -> None:
    """post_save / post_delete receiver for the models a credential is read from."""
    update_fields = kwargs.get("update_fields")
    if update_fields is None or set(update_fields) - IGNORED_FIELDS:
        credentials_changed()


def after_queryset_update(model: type, fields: Any) -> None:
    """A queryset's `update()` sends no signal: the querysets of the models a credential is read
    from (their `reads_credentials`) call this instead."""
    if getattr(model, "reads_credentials", False) and set(fields) - IGNORED_FIELDS:
        credentials_changed()
