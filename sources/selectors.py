"""Reads for sources. The explicit tenant filter lives here.

A parent (a batch group, a sitemap, a crawl) shows `children_count` and the status and counts of
the pages under it: `with_children_totals` reads them for a whole page of sources in one grouped
statement. (Six filtered aggregates annotated on the list itself cost more CPU to build and compile
than the rest of a `GET /v1/sources`, on every page, parents or not.)
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import Coalesce

from minirag.lexical import TermStatistics
from minirag.lookups import get_by_id_or_404
from sources.models import IN_FLIGHT_STATUSES, Chunk, Source, SourceStatus
from tenants.models import Tenant
from tenants.tenancy import tenant_scope

# What `with_children_totals` sets on each source: totals over its active children.
CHILDREN_TOTALS = (
    "children_count",
    "children_chunk_count",
    "children_document_count",
    "children_in_flight",
    "children_ready",
    "children_error",
)
_TOTAL_BY_STATUS = {
    **dict.fromkeys(IN_FLIGHT_STATUSES, "children_in_flight"),
    SourceStatus.READY: "children_ready",
    SourceStatus.ERROR: "children_error",
}


def with_children_totals(sources: Sequence[Source]) -> Sequence[Source]:
    """Sets `CHILDREN_TOTALS` on every source that does not have them yet (0 for a leaf), from one
    statement over all their active children, grouped by parent and status. Returns `sources`."""
    missing = [source for source in sources if not hasattr(source, "children_count")]
    if not missing:
        return sources
    totals: dict[uuid.UUID, dict[str, int]] = {source.pk: dict.fromkeys(CHILDREN_TOTALS, 0) for source in missing}
    rows = (
        Source.objects.filter(
            tenant_id__in={source.tenant_id for source in missing}, parent_id__in=list(totals), is_active=True
        )
        .order_by()
        .values_list("parent_id", "status")
        .annotate(count=Count("id"), chunks=Sum("chunk_count"), documents=Sum("document_count"))
    )
    for parent_id, status, count, chunks, documents in rows:
        parent = totals[parent_id]
        parent["children_count"] += count
        parent["children_chunk_count"] += chunks or 0
        parent["children_document_count"] += documents or 0
        if status in _TOTAL_BY_STATUS:
            parent[_TOTAL_BY_STATUS[status]] += count
    for source in missing:
        for name, value in totals[source.pk].items():
            setattr(source, name, value)
    return sources


def source_list(
    *,
    tenant: Tenant,
    bot_profile_id: Any = None,
    parent_id: Any = None,
    include_children: bool = False,
) -> QuerySet[Source]:
    """Active sources, newest first: top-level ones by default, a parent's children with
    `parent_id`, or every level with `include_children`."""
    sources = Source.objects.filter(tenant=tenant, is_active=True)  # a list shows no more of the bot than its id
    if bot_profile_id is not None:
        sources = sources.filter(bot_profile_id=bot_profile_id)
    if parent_id is not None:
        sources = sources.filter(parent_id=parent_id)
    elif not include_children:
        sources = sources.filter(parent__isnull=True)
    return sources.order_by("-created_at")


def source_get(*, tenant: Tenant, source_id: Any) -> Source:
    """One source, active or not (a deleted source can still be read and reactivated)."""
    sources = Source.objects.filter(tenant=tenant).select_related("bot_profile")
    return get_by_id_or_404(sources, source_id, label="Source")


def source_children(*, tenant: Tenant, parent: Source) -> QuerySet[Source]:
    return source_list(tenant=tenant, parent_id=parent.pk)


def aggregate_status(source: Source) -> str:
    """A parent's status is its children's: in flight while any is, ready once any is ready,
    error if all failed. A leaf's status is its own. (`with_children_totals` first.)"""
    children = source.children_count
    if not children or source.status in (SourceStatus.QUEUED, SourceStatus.PROCESSING):
        return source.status
    if source.children_in_flight:
        return SourceStatus.PROCESSING
    if source.children_ready:
        return SourceStatus.READY
    if source.children_error == children:
        return SourceStatus.ERROR
    return SourceStatus.PENDING


def source_counts(tenant: Tenant) -> dict[str, Any]:
    """Sources by status and chunk totals, for the detailed health view."""
    sources = Source.objects.filter(tenant=tenant, is_active=True)
    by_status = {row["status"]: row["n"] for row in sources.values("status").annotate(n=Count("id"))}
    return {
        "sources": {"total": sum(by_status.values()), "by_status": by_status},
        "chunks": sources.aggregate(total=Coalesce(Sum("chunk_count"), 0))["total"],
    }


# --- The lexical statistics of a bot's knowledge ---------------------------------------------------

_TERM_STATISTICS_CACHE_SIZE = 64
_term_statistics: OrderedDict[tuple[str, str], TermStatistics] = OrderedDict()
_term_statistics_lock = threading.Lock()


def bot_term_statistics(*, tenant_id: uuid.UUID, bot_profile_id: uuid.UUID, version: str) -> TermStatistics:
    """How many of the bot's searchable chunks (those of its active sources) hold each term.

    Counted from the chunks in the database once per `version` (a digest of the bot's sources as
    they stand: any ingestion, deletion or (de)activation changes it) and kept in this process for
    the bot's next questions: computing it reads every chunk of the bot."""
    key = (str(bot_profile_id), version)
    with _term_statistics_lock:
        if key in _term_statistics:
            _term_statistics.move_to_end(key)
            return _term_statistics[key]
    with tenant_scope(tenant_id):
        contents = (
            Chunk.objects.filter(tenant_id=tenant_id, source__bot_profile_id=bot_profile_id, source__is_active=True)
            .values_list("content", flat=True)
            .iterator(chunk_size=2000)
        )
        statistics = TermStatistics.of(contents)
    with _term_statistics_lock:
        for stale in [k for k in _term_statistics if k[0] == key[0]]:
            del _term_statistics[stale]
        _term_statistics[key] = statistics
        while len(_term_statistics) > _TERM_STATISTICS_CACHE_SIZE:
            _term_statistics.popitem(last=False)
    return statistics
