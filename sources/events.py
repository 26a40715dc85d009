"""Live source events over django-eventstream, on tenant-scoped channels.

Every status or progress change of a source is published as an event named `source` whose data is
the source's progress snapshot, on two channels: the source's own and its tenant's (for a page that
shows every source's progress). Channel names carry the tenant id and the channel manager lets a
user read only their own tenant's channels. Publishing is best effort: a failure to publish never
breaks ingestion. Across processes (Celery worker → web server) events travel through Redis
pub/sub (`EVENTSTREAM_REDIS`); in the embedded mode they stay in the process.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django_eventstream import send_event
from django_eventstream.channelmanager import DefaultChannelManager

logger = logging.getLogger(__name__)

SOURCE_EVENT = "source"


def source_channel(tenant_id: uuid.UUID | str, source_id: uuid.UUID | str) -> str:
    return f"tenant-{tenant_id}-source-{source_id}"


def tenant_sources_channel(tenant_id: uuid.UUID | str) -> str:
    return f"tenant-{tenant_id}-sources"


def progress_snapshot(source: Any) -> dict[str, Any]:
    return {
        "id": str(source.id),
        "parent_id": str(source.parent_id) if source.parent_id else None,
        "status": source.status,
        "chunks_done": source.chunks_done,
        "chunks_total": source.chunks_total,
        "document_count": source.document_count,
        "chunk_count": source.chunk_count,
        "ocr_pages_done": source.ocr_pages_done,
        "ocr_pages_total": source.ocr_pages_total,
        "error_message": source.error_message,
        "updated_at": source.updated_at.isoformat() if source.updated_at else None,
    }


def publish_source_event(source: Any) -> None:
    data = progress_snapshot(source)
    for channel in (source_channel(source.tenant_id, source.id), tenant_sources_channel(source.tenant_id)):
        try:
            send_event(channel, SOURCE_EVENT, data)
        except Exception:
            logger.warning("Could not publish a source event on %s.", channel, exc_info=True)


class TenantChannelManager(DefaultChannelManager):
    """Channels are named `tenant-<tenant id>-...`: a user reads only their own tenant's."""

    def can_read_channel(self, user: Any, channel: str) -> bool:
        tenant_id = getattr(user, "tenant_id", None)
        return tenant_id is not None and channel.startswith(f"tenant-{tenant_id}-")

    def is_channel_reliable(self, channel: str) -> bool:
        # Progress is a snapshot: a client that (re)connects is sent the current state first, so
        # nothing needs to be stored for replay.
        return False
