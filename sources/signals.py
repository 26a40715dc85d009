"""Keeping the index in line with bot changes."""

from __future__ import annotations

import logging
from typing import Any

from bots.models import BotProfile
from sources.models import IN_FLIGHT_STATUSES, Source
from sources.services import source_ingest_request
from tenants.models import Tenant
from tenants.tenancy import tenant_scope

logger = logging.getLogger(__name__)

# Settings that change what the index must contain: the vectors' space, or how text is cut.
REINDEX_FIELDS = frozenset({"embedding_model", "chunk_size", "chunk_overlap"})


def reindex_after_bot_change(sender: Any, *, tenant: Tenant, bot: BotProfile, changed: set[str], **kwargs: Any) -> None:
    """A deactivated bot's vectors are removed (it can no longer answer, and nothing of it stays
    searchable); a reactivated bot, or one whose embedding model or chunking changed, has its
    sources re-ingested — cheaply: unchanged chunks under the same model reuse stored vectors."""
    with tenant_scope(tenant):
        if "is_active" in changed and not bot.is_active:
            from minirag.vectorstore import get_vector_store

            get_vector_store().delete(tenant_id=tenant.pk, bot_profile_id=bot.pk)
            Source.objects.filter(tenant=tenant, bot_profile=bot).update(chunk_count=0, status="pending")
            return
        if not bot.is_active or not ({"is_active"} | REINDEX_FIELDS) & changed:
            return
        for source in Source.objects.filter(
            tenant=tenant, bot_profile=bot, is_active=True, parent__isnull=True
        ).exclude(status__in=IN_FLIGHT_STATUSES):
            try:
                source_ingest_request(tenant=tenant, source=source)
            except Exception:
                logger.warning("Could not queue re-ingestion of source %s.", source.pk, exc_info=True)
