"""Retrieval for a chat turn: the bot's own indexed chunks (Qdrant, filtered by tenant and bot,
inactive sources excluded, above the bot's similarity floor) and its external `nyxcore` search
sources, merged and ordered by authority, then score."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async

from bots.models import BotProfile
from bots.services import bot_profile_credentials
from minirag.db import releasing_connection
from minirag.model_gateway import embed_texts
from minirag.vectorstore import collection_name, get_vector_store
from sources import nyxcore
from sources.models import Source, SourceStatus, SourceType
from sources.services import source_secrets
from tenants.tenancy import tenant_scope

logger = logging.getLogger(__name__)

# Lower ranks first: binding rules, then recommendations, then everything else. Local chunks of a
# source without an explicit authority come after an external service's informational results,
# as the v1 contract orders them.
AUTHORITY_RANK = {"mandatory": 0, "guideline": 1, "informational": 2}
LOCAL_PLAIN_RANK = 3


@dataclass(frozen=True)
class RetrievedChunk:
    chunk_id: str
    content: str
    score: float
    source_id: str | None
    source_name: str = ""
    title: str = ""
    url: str = ""
    authority: str | None = None  # mandatory | guideline | informational | None (plain local)
    origin: str = "local"  # local | nyxcore

    @property
    def rank(self) -> int:
        return AUTHORITY_RANK.get(self.authority or "", LOCAL_PLAIN_RANK)


@dataclass(frozen=True)
class Retrieval:
    chunks: list[RetrievedChunk]
    best_local_score: float | None = None
    search_ms: int = 0
    embed_ms: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _BotSearchPlan:
    tenant_id: uuid.UUID
    bot_profile_id: uuid.UUID
    embedding_model: str
    api_key: str | None
    top_k: int
    similarity_threshold: float
    has_local_sources: bool
    inactive_source_ids: list[str]
    external: list[nyxcore.SearchTarget]


def _search_plan(tenant_id: uuid.UUID, bot: BotProfile) -> _BotSearchPlan:
    with tenant_scope(tenant_id):
        sources = list(
            Source.objects.filter(tenant_id=tenant_id, bot_profile=bot, is_active=True).values(
                "id", "source_type", "status", "config", "authority", "config_secrets_ciphertext", "name"
            )
        )
        # Deactivating a source removes its vectors; excluding inactive sources here as well
        # covers the moment between the two (usually an empty list: no condition at all).
        inactive = [
            str(pk)
            for pk in Source.objects.filter(tenant_id=tenant_id, bot_profile=bot, is_active=False).values_list(
                "id", flat=True
            )
        ]
        external = [
            nyxcore.SearchTarget(
                source_id=str(row["id"]),
                name=row["name"],
                base_url=row["config"]["base_url"],
                api_token=source_secrets(Source(config_secrets_ciphertext=row["config_secrets_ciphertext"])).get(
                    "api_token", ""
                ),
                limit=row["config"].get("limit", 10),
                authority=row["config"].get("authority"),
            )
            for row in sources
            if row["source_type"] == SourceType.NYXCORE and row["status"] == SourceStatus.READY
        ]
    return _BotSearchPlan(
        tenant_id=tenant_id,
        bot_profile_id=bot.pk,
        embedding_model=bot.embedding_model,
        api_key=bot_profile_credentials(bot).get("api_key"),
        top_k=bot.top_k,
        similarity_threshold=bot.similarity_threshold,
        has_local_sources=any(row["source_type"] != SourceType.NYXCORE for row in sources),
        inactive_source_ids=inactive,
        external=external,
    )


def _local_search(plan: _BotSearchPlan, question: str) -> tuple[list[RetrievedChunk], float | None, int, int]:
    """(chunks above the floor, best score of all, embed ms, search ms)."""
    if not plan.has_local_sources:
        return [], None, 0, 0
    began = time.perf_counter()
    vector = embed_texts([question], model=plan.embedding_model, api_key=plan.api_key).vectors[0]
    embedded = time.perf_counter()
    hits = get_vector_store().search(
        collection_name(plan.embedding_model),
        vector,
        tenant_id=plan.tenant_id,
        bot_profile_id=plan.bot_profile_id,
        exclude_source_ids=plan.inactive_source_ids,
        limit=plan.top_k,
    )
    searched = time.perf_counter()
    best = hits[0].score if hits else None
    chunks = [
        RetrievedChunk(
            chunk_id=hit.id,
            content=str(hit.payload.get("content", "")),
            score=hit.score,
            source_id=hit.payload.get("source_id"),
            source_name=str(hit.payload.get("source_name", "")),
            title=str(hit.payload.get("title", "")),
            url=str(hit.payload.get("url", "")),
            authority=_local_authority(hit.payload.get("authority")),
        )
        for hit in hits
        if hit.score >= plan.similarity_threshold
    ]
    return chunks, best, round((embedded - began) * 1000), round((searched - embedded) * 1000)


def _local_authority(value: object) -> str | None:
    # A local source left at the default (informational) is a plain local chunk for ordering.
    return value if value in ("mandatory", "guideline") else None


async def retrieve(*, tenant_id: uuid.UUID, bot: BotProfile, question: str) -> Retrieval:
    plan = await sync_to_async(releasing_connection(_search_plan))(tenant_id, bot)
    # Embedding and the vector search are CPU and I/O bound: off the event loop, in parallel
    # with the external searches.
    local = sync_to_async(_local_search, thread_sensitive=False)(plan, question)
    externals = [nyxcore.search(target, question) for target in plan.external]
    results = await asyncio.gather(local, *externals, return_exceptions=True)
    local_result, *external_results = results
    if isinstance(local_result, BaseException):
        raise local_result
    chunks, best, embed_ms, search_ms = local_result
    warnings: list[str] = []
    for target, result in zip(plan.external, external_results, strict=True):
        if isinstance(result, BaseException):
            # A failing external service is skipped: the turn goes on with what the others found.
            logger.warning("External search %s failed: %s", target.source_id, result)
            warnings.append(f"{target.name}: {getattr(result, 'message', result)}")
            continue
        chunks.extend(
            RetrievedChunk(
                chunk_id=hit.chunk_id,
                content=hit.content,
                score=hit.score,
                source_id=target.source_id,
                source_name=hit.filename or target.name,
                title=hit.heading,
                authority=hit.authority,
                origin="nyxcore",
            )
            for hit in result
        )
    chunks.sort(key=lambda chunk: (chunk.rank, -chunk.score))
    return Retrieval(chunks=chunks, best_local_score=best, search_ms=search_ms, embed_ms=embed_ms, warnings=warnings)
