"""Reads for sources. The explicit tenant filter lives here.

Sources come annotated with their active children's aggregates, so a parent (a batch group, a
sitemap or a crawl) shows `children_count` and the status and counts of the pages under it.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from minirag.lookups import get_by_id_or_404
from sources.models import IN_FLIGHT_STATUSES, Source, SourceStatus
from tenants.models import Tenant


def _with_children_aggregates(sources: QuerySet[Source]) -> QuerySet[Source]:
    active = Q(children__is_active=True)
    return sources.annotate(
        children_count=Count("children", filter=active),
        children_chunk_count=Coalesce(Sum("children__chunk_count", filter=active), 0),
        children_document_count=Coalesce(Sum("children__document_count", filter=active), 0),
        children_in_flight=Count("children", filter=active & Q(children__status__in=IN_FLIGHT_STATUSES)),
        children_ready=Count("children", filter=active & Q(children__status=SourceStatus.READY)),
        children_error=Count("children", filter=active & Q(children__status=SourceStatus.ERROR)),
    )


def source_list(
    *,
    tenant: Tenant,
    bot_profile_id: Any = None,
    parent_id: Any = None,
    include_children: bool = False,
) -> QuerySet[Source]:
    """Active sources, newest first: top-level ones by default, a parent's children with
    `parent_id`, or every level with `include_children`."""
    sources = Source.objects.filter(tenant=tenant, is_active=True).select_related("bot_profile")
    if bot_profile_id is not None:
        sources = sources.filter(bot_profile_id=bot_profile_id)
    if parent_id is not None:
        sources = sources.filter(parent_id=parent_id)
    elif not include_children:
        sources = sources.filter(parent__isnull=True)
    return _with_children_aggregates(sources).order_by("-created_at")


def source_get(*, tenant: Tenant, source_id: Any) -> Source:
    """One source, active or not (a deleted source can still be read and reactivated)."""
    sources = _with_children_aggregates(Source.objects.filter(tenant=tenant).select_related("bot_profile"))
    return get_by_id_or_404(sources, source_id, label="Source")


def source_children(*, tenant: Tenant, parent: Source) -> QuerySet[Source]:
    return source_list(tenant=tenant, parent_id=parent.pk)


def aggregate_status(source: Source) -> str:
    """A parent's status is its children's: in flight while any is, ready once any is ready,
    error if all failed. A leaf's status is its own."""
    children = getattr(source, "children_count", 0)
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
