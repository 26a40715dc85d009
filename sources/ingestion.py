"""Steps 3 to 6 of ingestion: chunk, diff against what is indexed, embed only what changed, index.

Chunk ids are UUIDv5 of (source id, content hash, occurrence): the same document always yields
the same ids, so a re-ingest is a diff — unchanged chunks keep their stored vectors (no embedding
call, no Qdrant write), new or changed ones are embedded, vanished ones are deleted. Nothing is
deleted before the new state is safely written, and a stale run (one whose source was taken over
by a newer run) can never overwrite the newer run's results.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import transaction
from django.utils import timezone

from bots.services import bot_model_endpoint, bot_model_price
from minirag.lexical import document_vector
from minirag.model_gateway import ModelError, embed_texts, embedding_group_size
from minirag.vectorstore import VectorPoint, collection_name, get_vector_store
from providers import budgets
from sources.chunking import chunk_text
from sources.loaders import LoadedDocument
from sources.models import Chunk, Document, Source
from sources.sections import sections

# Fixed forever: changing it would change every chunk id.
CHUNK_ID_NAMESPACE = uuid.UUID("6f1d2c1e-3b7a-5c55-9a51-2b8f6b0d7e41")

ProgressCallback = Callable[[int, int], None]  # (chunks done, chunks total)


class StaleRunError(Exception):
    """Another ingestion run took the source over; this one must stop without writing."""


def chunk_point_id(source_id: uuid.UUID, content_hash: str, occurrence: int) -> uuid.UUID:
    return uuid.uuid5(CHUNK_ID_NAMESPACE, f"{source_id}:{content_hash}:{occurrence}")


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PlannedChunk:
    id: uuid.UUID
    document_index: int
    chunk_index: int
    content: str
    content_hash: str


@dataclass(frozen=True)
class IngestReport:
    documents: int
    chunks: int
    embedded: int
    reused: int
    removed: int
    prompt_tokens: int
    seconds: float


def plan_chunks(
    source_id: uuid.UUID, documents: Sequence[LoadedDocument], *, size: int, overlap: int
) -> list[PlannedChunk]:
    """Deterministic chunk ids for the source's documents; duplicates get distinct occurrences.
    Each section of a document (sources/sections.py) is chunked on its own, every chunk starting
    with the section's heading trail, and still at most `size` characters."""
    occurrences: Counter[str] = Counter()
    planned: list[PlannedChunk] = []
    for document_index, document in enumerate(documents):
        for text in _section_chunks(document.text, size=size, overlap=overlap):
            digest = content_hash(text)
            planned.append(
                PlannedChunk(
                    id=chunk_point_id(source_id, digest, occurrences[digest]),
                    document_index=document_index,
                    chunk_index=len(planned),
                    content=text,
                    content_hash=digest,
                )
            )
            occurrences[digest] += 1
    return planned


def _section_chunks(text: str, *, size: int, overlap: int) -> list[str]:
    chunks = []
    for section in sections(text):
        header = section.header
        if header and len(header) > size // 4:  # a trail must leave the chunk room for its text
            header = header[: size // 4].rstrip()
        room = size - len(header) - 1 if header else size
        for piece in chunk_text(section.body, size=room, overlap=min(overlap, room - 1)):
            chunks.append(f"{header}\n{piece}" if header else piece)
    return chunks


def vector_to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def vector_from_bytes(data: bytes | memoryview) -> np.ndarray:
    return np.frombuffer(bytes(data), dtype="<f4")


def _payload(source: Source, document: Document, chunk: PlannedChunk) -> dict[str, object]:
    return {
        "tenant_id": str(source.tenant_id),
        "bot_profile_id": str(source.bot_profile_id),
        "source_id": str(source.id),
        "document_id": str(document.id),
        "chunk_index": chunk.chunk_index,
        "content": chunk.content,
        "source_name": source.name,
        "title": document.title,
        "url": document.url,
        "authority": source.authority,
    }


def _point(source: Source, document: Document, chunk: PlannedChunk, vector: np.ndarray) -> VectorPoint:
    """A chunk as the vector store keeps it: its embedding, its terms, and its payload."""
    return VectorPoint(chunk.id, vector, _payload(source, document, chunk), lexical=document_vector(chunk.content))


def _sync_documents(source: Source, documents: Sequence[LoadedDocument]) -> list[Document]:
    """One Document row per loaded document, reusing the existing rows (ids stay stable)."""
    existing = list(Document.objects.filter(source=source).order_by("created_at"))
    rows: list[Document] = []
    for index, loaded in enumerate(documents):
        row = existing[index] if index < len(existing) else Document(source=source)
        row.title = loaded.title[:500]
        row.url = loaded.url[:2048]
        row.mime_type = loaded.mime_type[:100]
        row.content_hash = content_hash(loaded.text)
        row.char_count = len(loaded.text)
        row.metadata = loaded.metadata
        rows.append(row)
    return rows


def index_documents(
    source: Source,
    documents: Sequence[LoadedDocument],
    *,
    run_id: uuid.UUID,
    on_progress: ProgressCallback,
) -> IngestReport:
    """Bring the source's chunks and vectors in line with `documents`. Returns what it did."""
    started = time.perf_counter()
    bot = source.bot_profile
    model = bot.embedding_model
    planned = plan_chunks(source.id, documents, size=bot.chunk_size, overlap=bot.chunk_overlap)
    planned_ids = {chunk.id for chunk in planned}
    existing = {
        row["id"]: row
        for row in Chunk.objects.filter(source=source).values("id", "chunk_index", "document_id", "embedding_model")
    }
    reusable = {chunk_id for chunk_id, row in existing.items() if row["embedding_model"] == model}
    to_embed = [chunk for chunk in planned if chunk.id not in reusable]
    reused = [chunk for chunk in planned if chunk.id in reusable]
    total = len(planned)
    on_progress(len(reused), total)

    document_rows = _sync_documents(source, documents)
    with transaction.atomic():
        for row in document_rows:
            row.save()  # new documents need ids before their chunks' payloads are built

    store = get_vector_store()
    collection = collection_name(model)
    # A run that wrote vectors and then died leaves points the database does not know about;
    # the flag, set before any write and cleared after cleanup, says the next run must look.
    leftovers_possible = Source.objects.filter(pk=source.pk).values_list("index_dirty", flat=True).get()
    price = bot_model_price(bot, model)
    if to_embed and price.prompt_per_1m > 0:
        # Embedding with a paid model spends the budget: a spent one pauses ingestion, readably.
        exhausted = budgets.exhausted_budget(source.tenant, bot)
        if exhausted:
            raise ModelError(exhausted, transient=False)
    if to_embed:
        _mark_index_dirty(source, run_id, dirty=True)
    done = len(reused)
    embedded_vectors: dict[uuid.UUID, np.ndarray] = {}
    prompt_tokens = 0
    endpoint = bot_model_endpoint(bot, model)
    # Similar lengths in one batch pad less; the order of embedding does not matter. Each group is
    # written to the vector store in the background while the next one is embedded.
    by_length = sorted(to_embed, key=lambda chunk: len(chunk.content))
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="minirag-upsert") as writer:
        pending: Future[None] | None = None
        group_size = embedding_group_size(model)
        for start in range(0, len(by_length), group_size):
            group = by_length[start : start + group_size]
            embeddings = embed_texts([chunk.content for chunk in group], model=model, endpoint=endpoint)
            prompt_tokens += embeddings.prompt_tokens
            store.ensure_collection(collection, embeddings.dimensions)
            points = [
                _point(source, document_rows[chunk.document_index], chunk, vector)
                for chunk, vector in zip(group, embeddings.vectors, strict=True)
            ]
            embedded_vectors.update(zip((chunk.id for chunk in group), embeddings.vectors, strict=True))
            if pending is not None:
                pending.result()  # one write in flight at a time; its errors surface here
                on_progress(done, total)
            pending = writer.submit(store.upsert, collection, points)
            done += len(group)
        if pending is not None:
            pending.result()
            on_progress(done, total)
    if prompt_tokens and price.prompt_per_1m > 0:
        with transaction.atomic():
            budgets.record_spend(tenant=source.tenant, bot=bot, cost_usd=price.cost(prompt_tokens, 0))

    moved = [
        chunk
        for chunk in reused
        if existing[chunk.id]["chunk_index"] != chunk.chunk_index
        or existing[chunk.id]["document_id"] != document_rows[chunk.document_index].id
    ]
    # Writes only points the database already knows: no leftovers possible if it is interrupted.
    _repair_and_move(source, collection, document_rows, reused, moved)

    vanished = [chunk_id for chunk_id in existing if chunk_id not in planned_ids]
    replaced = [chunk.id for chunk in to_embed if chunk.id in existing]  # embedded again under a new model
    _commit_chunks(source, run_id, document_rows, to_embed, moved, [*vanished, *replaced], embedded_vectors, model)
    # Only after the new state is committed: drop what is no longer part of the source.
    if leftovers_possible:
        _delete_unplanned_points(source, collection, planned_ids)
    else:
        store.delete_points(collection, [str(chunk_id) for chunk_id in vanished], tenant_id=source.tenant_id)
        for old_model in {row["embedding_model"] for row in existing.values()} - {model}:
            old_ids = [str(chunk_id) for chunk_id, row in existing.items() if row["embedding_model"] == old_model]
            store.delete_points(collection_name(old_model), old_ids, tenant_id=source.tenant_id)
    _mark_index_dirty(source, run_id, dirty=False)
    return IngestReport(
        documents=len(document_rows),
        chunks=total,
        embedded=len(to_embed),
        reused=len(reused),
        removed=len(vanished),
        prompt_tokens=prompt_tokens,
        seconds=time.perf_counter() - started,
    )


def _mark_index_dirty(source: Source, run_id: uuid.UUID, *, dirty: bool) -> None:
    Source.objects.filter(pk=source.pk, ingest_run_id=run_id).update(index_dirty=dirty)


def _delete_unplanned_points(source: Source, collection: str, planned_ids: set[uuid.UUID]) -> None:
    """Every point of the source, in every collection, that is not a planned chunk of this one
    (a full scan: used after an interrupted run, whose leftovers the database cannot list)."""
    store = get_vector_store()
    keep = {str(chunk_id) for chunk_id in planned_ids}
    for name in store.collections():
        found = store.point_ids(name, tenant_id=source.tenant_id, source_ids=[source.id])
        store.delete_points(name, sorted(found - keep if name == collection else found), tenant_id=source.tenant_id)


def _repair_and_move(
    source: Source,
    collection: str,
    document_rows: Sequence[Document],
    reused: Sequence[PlannedChunk],
    moved: Sequence[PlannedChunk],
) -> None:
    """Re-upsert reused chunks from their stored vectors when their position changed, or when
    the vector store has lost them (looked up by id). No embedding call either way."""
    if not reused:
        return
    store = get_vector_store()
    present = store.present_ids(collection, [chunk.id for chunk in reused], tenant_id=source.tenant_id)
    moved_ids = {chunk.id for chunk in moved}
    rewrite = [chunk for chunk in reused if chunk.id in moved_ids or str(chunk.id) not in present]
    if not rewrite:
        return
    wanted = {chunk.id for chunk in rewrite}
    rows = Chunk.objects.filter(source=source) if len(wanted) > 500 else Chunk.objects.filter(pk__in=wanted)
    vectors = {
        row["id"]: vector_from_bytes(row["embedding"]) for row in rows.values("id", "embedding") if row["id"] in wanted
    }
    store.ensure_collection(collection, len(next(iter(vectors.values()))))
    store.upsert(
        collection, [_point(source, document_rows[chunk.document_index], chunk, vectors[chunk.id]) for chunk in rewrite]
    )


@transaction.atomic
def _commit_chunks(
    source: Source,
    run_id: uuid.UUID,
    document_rows: Sequence[Document],
    embedded: Sequence[PlannedChunk],
    moved: Sequence[PlannedChunk],
    obsolete_ids: Sequence[uuid.UUID],
    vectors: dict[uuid.UUID, np.ndarray],
    model: str,
) -> None:
    locked = Source.objects.select_for_update().filter(pk=source.pk, ingest_run_id=run_id).first()
    if locked is None:
        raise StaleRunError(f"Source {source.pk} was taken over by another ingestion run.")
    Document.objects.filter(source=source).exclude(pk__in=[row.id for row in document_rows]).delete()
    for start in range(0, len(obsolete_ids), 500):
        Chunk.objects.filter(source=source, pk__in=obsolete_ids[start : start + 500]).delete()
    now = timezone.now()
    Chunk.objects.bulk_create(
        [
            Chunk(
                id=chunk.id,
                tenant_id=source.tenant_id,
                source=source,
                document=document_rows[chunk.document_index],
                chunk_index=chunk.chunk_index,
                content=chunk.content,
                content_hash=chunk.content_hash,
                embedding_model=model,
                embedding=vector_to_bytes(vectors[chunk.id]),
                created_at=now,
            )
            for chunk in embedded
        ],
        batch_size=500,
    )
    Chunk.objects.bulk_update(
        [
            Chunk(
                id=chunk.id,
                tenant_id=source.tenant_id,
                chunk_index=chunk.chunk_index,
                document=document_rows[chunk.document_index],
            )
            for chunk in moved
        ],
        ["chunk_index", "document"],
        batch_size=500,
    )


# --- Rebuilding the vector collections from the database ------------------------------------------

REBUILD_BATCH = 500


@dataclass(frozen=True)
class RebuiltCollection:
    name: str
    points: int


def rebuild_index(*, only_legacy: bool = False) -> list[RebuiltCollection]:
    """Rebuild the vector collections from the chunks the database keeps (their text and their
    stored embeddings): nothing is embedded again. Used by `manage.py reindex`, after which every
    collection has the dense and lexical vectors of hybrid retrieval. `only_legacy` rebuilds only
    collections made before hybrid retrieval (what `migrate` does on an upgrade). Each collection is
    dropped and written again, so its searches find less while it runs: run it when upgrading."""
    from tenants.tenancy import tenant_scope_disabled

    store = get_vector_store()
    rebuilt = []
    existing = set(store.collections())  # the vector store first: unreachable, nothing is read
    with tenant_scope_disabled("reindex: the collections hold every tenant's chunks"):
        indexed = Chunk.objects.filter(source__is_active=True, source__bot_profile__is_active=True)
        models = sorted(set(indexed.values_list("embedding_model", flat=True)))
        for model in models:
            name = collection_name(model)
            if only_legacy and (name not in existing or store.is_hybrid(name)):
                continue
            store.drop_collection(name)
            rebuilt.append(RebuiltCollection(name, _refill(name, indexed.filter(embedding_model=model))))
        if not only_legacy:
            # Collections no chunk points to any more (a model no bot uses): nothing to keep.
            for name in existing - {collection_name(model) for model in models}:
                store.drop_collection(name)
    return rebuilt


def _refill(collection: str, chunks: Any) -> int:
    store = get_vector_store()
    written = 0
    batch: list[VectorPoint] = []
    rows = chunks.select_related("source", "document").order_by("source_id", "chunk_index")
    for row in rows.iterator(chunk_size=REBUILD_BATCH):
        vector = vector_from_bytes(row.embedding)
        if not written and not batch:
            store.ensure_collection(collection, len(vector))
        planned = PlannedChunk(row.id, 0, row.chunk_index, row.content, row.content_hash)
        batch.append(_point(row.source, row.document, planned, vector))
        if len(batch) >= REBUILD_BATCH:
            store.upsert(collection, batch)
            written, batch = written + len(batch), []
    if batch:
        store.upsert(collection, batch)
        written += len(batch)
    return written
