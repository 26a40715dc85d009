"""Operator presence: a short-lived cache key per operator (Redis in production, so every web
process sees it). An operator is online while their inbox event stream is open (the stream
refreshes the key each time it sends something, a keep-alive at least every 20 seconds) or for
PRESENCE_SECONDS after they pinged `POST /v1/inbox/presence`. Keys carry the tenant id.

A cache that fails answers "nobody online": the visitor is then asked for an email address,
which is the safe side."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

from django.core.cache import cache

logger = logging.getLogger(__name__)

PRESENCE_SECONDS = 60


def _key(tenant_id: uuid.UUID | str, user_id: uuid.UUID | str) -> str:
    return f"inbox:presence:{tenant_id}:{user_id}"


def presence_mark(*, tenant_id: uuid.UUID | str, user_id: uuid.UUID | str) -> None:
    try:
        cache.set(_key(tenant_id, user_id), 1, timeout=PRESENCE_SECONDS)
    except Exception:
        logger.warning("Could not record an operator's presence.", exc_info=True)


async def apresence_mark(*, tenant_id: uuid.UUID | str, user_id: uuid.UUID | str) -> None:
    try:
        await cache.aset(_key(tenant_id, user_id), 1, timeout=PRESENCE_SECONDS)
    except Exception:
        logger.warning("Could not record an operator's presence.", exc_info=True)


def presence_clear(*, tenant_id: uuid.UUID | str, user_id: uuid.UUID | str) -> None:
    try:
        cache.delete(_key(tenant_id, user_id))
    except Exception:
        logger.warning("Could not clear an operator's presence.", exc_info=True)


def online_among(*, tenant_id: uuid.UUID | str, user_ids: Iterable[uuid.UUID]) -> list[uuid.UUID]:
    ids = list(user_ids)
    if not ids:
        return []
    try:
        found = cache.get_many([_key(tenant_id, user_id) for user_id in ids])
    except Exception:
        logger.warning("Could not read operators' presence.", exc_info=True)
        return []
    return [user_id for user_id in ids if _key(tenant_id, user_id) in found]
