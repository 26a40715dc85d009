"""Qdrant, one code path for all three modes:

* server (`QDRANT_URL`, production),
* local path mode (`QDRANT_PATH` directory, the embedded default; one process at a time),
* in-memory (`QDRANT_PATH=:memory:`, tests).

There is one collection per embedding space: `QDRANT_COLLECTION` (default `minirag_chunks`) for
the offline `local/minilm` model, a suffixed one for any other model. Every search, count and
delete takes the tenant explicitly and filters on it: a caller cannot forget it.

Each point has two named vectors: `dense` (the embedding, cosine) and `lexical` (its terms' BM25
weights, minirag/lexical.py; the question's lexical vector carries the IDF over the searching
bot's own chunks, so the sparse dot product is BM25).
A search fuses both rankings in one `query_points` call (reciprocal rank fusion). Collections
made before hybrid retrieval hold one unnamed dense vector: they keep working, dense only, until
`manage.py reindex` rebuilds them from the database (`migrate` does it when it finds one).

In the embedded modes, searches are answered by an exact NumPy index kept in step with the local
storage (minirag/vector_index.py): the same results as Qdrant, without qdrant-client's per-point
walk in Python. The storage stays the record; the server mode is unchanged.
"""

from __future__ import annotations

import atexit
import logging
import re
import threading
import uuid
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from qdrant_client import QdrantClient
from qdrant_client import models as qm
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from minirag.lexical import SparseVector
from minirag.vector_index import CollectionIndex, IndexedPoint

logger = logging.getLogger(__name__)
# qdrant-client warns on every write past 20,000 points that its local mode searches slowly: the
# embedded modes search with their own index instead (minirag/vector_index.py).
warnings.filterwarnings("ignore", message="Local mode is not recommended for collections with more than")

SERVER_TIMEOUT_SECONDS = 10
UPSERT_BATCH_SIZE = 256
ID_BATCH_SIZE = 1000
DEFAULT_SPACE_MODEL = "local/minilm"
INDEXED_PAYLOAD_FIELDS = ("bot_profile_id", "source_id")
DENSE = "dense"
LEXICAL = "lexical"
# Each half of a hybrid search hands this many candidates (at least) to the fusion.
FUSION_CANDIDATES = 40


def qdrant_mode() -> str:
    if settings.QDRANT_URL:
        return "server"
    return "memory" if settings.QDRANT_PATH == ":memory:" else "local"


_client_lock = threading.Lock()


def get_qdrant_client() -> QdrantClient:
    """The process-wide client. Created under a lock: concurrent first requests must not each
    open the local-mode directory (the second would fail on its lock)."""
    with _client_lock:
        return _create_client()


@lru_cache(maxsize=1)
def _create_client() -> QdrantClient:
    mode = qdrant_mode()
    if mode == "server":
        # No version probe on creation: it warns on stderr when the server is down (the caller gets
        # a readable outage error instead), and /health/ready reports the server's version.
        return QdrantClient(
            url=settings.QDRANT_URL,
            api_key=settings.QDRANT_API_KEY or None,
            timeout=SERVER_TIMEOUT_SECONDS,
            check_compatibility=False,
        )
    if mode == "memory":
        return QdrantClient(location=":memory:")
    return QdrantClient(path=settings.QDRANT_PATH)


@receiver(setting_changed)
def _drop_client_on_settings_change(*, setting: str, **kwargs: Any) -> None:
    if setting in ("QDRANT_URL", "QDRANT_PATH", "QDRANT_API_KEY", "QDRANT_COLLECTION"):
        close_vector_store()


@atexit.register
def close_vector_store() -> None:
    """Release the client (local mode holds a lock on its directory until closed). Also runs at
    interpreter exit, while closing still works."""
    with _client_lock:
        if _create_client.cache_info().currsize:
            _create_client().close()
        _create_client.cache_clear()
    with _store_lock:
        _create_store.cache_clear()


def is_vector_store_outage(exc: BaseException) -> bool:
    """Whether `exc` is what a Qdrant server that is down, restarting or overloaded raises: no
    connection, a timeout (both wrapped in ResponseHandlingException), or a 5xx/429 answer. Such a
    failure may pass; a 4xx answer (a bad request) will not."""
    if isinstance(exc, ResponseHandlingException):
        return True
    if isinstance(exc, UnexpectedResponse):
        return exc.status_code is None or exc.status_code == 429 or exc.status_code >= 500
    return False


def vector_store_error_message(exc: BaseException) -> str:
    """One readable sentence for an outage (`is_vector_store_outage`), for logs and the tenant."""
    if isinstance(exc, UnexpectedResponse):
        return f"The vector store answered {exc.status_code} {exc.reason_phrase}.".replace(" .", ".")
    cause = getattr(exc, "source", None) or exc.__cause__ or exc
    return f"The vector store could not be reached: {str(cause) or type(cause).__name__}."


def qdrant_server_version(client: QdrantClient) -> str | None:
    """The server's version, or None in local/in-memory mode (there is no server)."""
    if qdrant_mode() != "server":
        return None
    return client.info().version


def collection_name(embedding_model: str) -> str:
    base = settings.QDRANT_COLLECTION
    if embedding_model == DEFAULT_SPACE_MODEL:
        return base
    return f"{base}__{re.sub(r'[^a-z0-9]+', '_', embedding_model.lower()).strip('_')}"


@dataclass(frozen=True)
class VectorPoint:
    id: uuid.UUID | str
    vector: Sequence[float] | np.ndarray
    payload: dict[str, Any]
    lexical: SparseVector | None = None


@dataclass(frozen=True)
class VectorHit:
    """A search result, best first. `score` is the cosine similarity of its dense vector to the
    question's (what `score` has always meant in the API), whatever ranked it; `fused` is its
    reciprocal-rank-fusion score when the search was hybrid."""

    id: str
    score: float
    payload: dict[str, Any]
    fused: float | None = None


def tenant_filter(
    tenant_id: uuid.UUID | str,
    *,
    bot_profile_id: uuid.UUID | str | None = None,
    source_ids: Sequence[uuid.UUID | str] | None = None,
    exclude_source_ids: Sequence[uuid.UUID | str] | None = None,
    only_ids: Sequence[uuid.UUID | str] | None = None,
) -> qm.Filter:
    must: list[Any] = [qm.FieldCondition(key="tenant_id", match=qm.MatchValue(value=str(tenant_id)))]
    if bot_profile_id is not None:
        must.append(qm.FieldCondition(key="bot_profile_id", match=qm.MatchValue(value=str(bot_profile_id))))
    if source_ids is not None:
        must.append(qm.FieldCondition(key="source_id", match=qm.MatchAny(any=[str(s) for s in source_ids])))
    if only_ids is not None:
        must.append(qm.HasIdCondition(has_id=[str(i) for i in only_ids]))
    must_not: list[Any] = []
    if exclude_source_ids:
        must_not.append(qm.FieldCondition(key="source_id", match=qm.MatchAny(any=[str(s) for s in exclude_source_ids])))
    return qm.Filter(must=must, must_not=must_not or None)


class VectorStore:
    """Tenant-filtered operations on the chunk collections."""

    def __init__(self, client: QdrantClient, *, embedded: bool) -> None:
        self.client = client
        # qdrant-client's local mode is not safe for concurrent use; the server is.
        self._lock = threading.RLock() if embedded else None
        self._embedded = embedded
        self._ready_collections: set[str] = set()
        self._hybrid: dict[str, bool] = {}
        # Embedded modes: the search index of each collection used so far (loaded on first search).
        self._indexes: dict[str, CollectionIndex] = {}

    @contextmanager
    def _access(self) -> Iterator[QdrantClient]:
        if self._lock is None:
            yield self.client
            return
        with self._lock:
            yield self.client

    def ensure_collection(self, name: str, dimensions: int) -> None:
        if name in self._ready_collections:
            return
        with self._access() as client:
            if not client.collection_exists(name):
                client.create_collection(
                    name,
                    vectors_config={DENSE: qm.VectorParams(size=dimensions, distance=qm.Distance.COSINE)},
                    sparse_vectors_config={LEXICAL: qm.SparseVectorParams()},
                )
                if qdrant_mode() == "server":  # local mode has no payload indexes
                    client.create_payload_index(
                        name,
                        "tenant_id",
                        field_schema=qm.KeywordIndexParams(type=qm.KeywordIndexType.KEYWORD, is_tenant=True),
                    )
                    for field in INDEXED_PAYLOAD_FIELDS:
                        client.create_payload_index(name, field, field_schema=qm.PayloadSchemaType.KEYWORD)
            if qdrant_mode() == "local":
                _tune_local_storage(client, name)
        self._ready_collections.add(name)

    def drop_collection(self, collection: str) -> None:
        """Delete a whole collection (every tenant's points in it): for rebuilding it from the database."""
        with self._access() as client:
            if client.collection_exists(collection):
                client.delete_collection(collection)
        self._ready_collections.discard(collection)
        self._hybrid.pop(collection, None)
        self._indexes.pop(collection, None)

    def is_hybrid(self, collection: str) -> bool:
        """Whether the collection has the named dense and lexical vectors (not a legacy one)."""
        if collection not in self._hybrid:
            with self._access() as client:
                vectors = client.get_collection(collection).config.params.vectors
            self._hybrid[collection] = isinstance(vectors, dict) and DENSE in vectors
        return self._hybrid[collection]

    def upsert(self, collection: str, points: Sequence[VectorPoint]) -> None:
        hybrid = self.is_hybrid(collection)
        for start in range(0, len(points), UPSERT_BATCH_SIZE):
            batch = points[start : start + UPSERT_BATCH_SIZE]
            structs = [qm.PointStruct(id=str(p.id), vector=_vectors(p, hybrid), payload=p.payload) for p in batch]
            with self._access() as client:
                client.upsert(collection, points=structs, wait=True)
                index = self._indexes.get(collection)
                if index is not None:
                    index.upsert([_indexed(point) for point in batch])

    def set_payload(
        self,
        collection: str,
        payload: dict[str, Any],
        *,
        tenant_id: uuid.UUID | str,
        source_ids: Sequence[uuid.UUID | str] | None = None,
        point_ids: Sequence[uuid.UUID | str] | None = None,
    ) -> None:
        if not self._exists(collection):
            return
        with self._access() as client:
            client.set_payload(
                collection,
                payload=payload,
                points=tenant_filter(tenant_id, source_ids=source_ids, only_ids=point_ids),
                wait=True,
            )
            index = self._indexes.get(collection)
            if index is not None:
                index.set_payload(
                    payload,
                    tenant_id=str(tenant_id),
                    source_ids=_texts(source_ids),
                    ids=_texts(point_ids),
                )

    def search(
        self,
        collection: str,
        vector: Sequence[float] | np.ndarray,
        *,
        tenant_id: uuid.UUID | str,
        bot_profile_id: uuid.UUID | str,
        lexical_query: SparseVector | None = None,
        source_ids: Sequence[uuid.UUID | str] | None = None,
        exclude_source_ids: Sequence[uuid.UUID | str] | None = None,
        limit: int = 5,
    ) -> list[VectorHit]:
        """The bot's best chunks for a question: its embedding `vector` and, for the lexical half,
        its `lexical_query` (minirag.lexical.query_vector). Without words worth searching (or in a
        legacy collection) dense only."""
        if not self._exists(collection):
            return []
        dense = np.asarray(vector, dtype=np.float32)
        hybrid = self.is_hybrid(collection)
        lexical = lexical_query if hybrid and lexical_query else None
        candidates = max(FUSION_CANDIDATES, limit * 4)
        with self._access():
            index = self._index(collection) if hybrid else None
            if index is not None:
                found = index.search(
                    dense,
                    tenant_id=str(tenant_id),
                    bot_profile_id=str(bot_profile_id),
                    lexical=lexical,
                    include_sources=_texts(source_ids),
                    exclude_sources=_texts(exclude_source_ids),
                    limit=limit,
                    candidates=candidates,
                )
                return [VectorHit(hit.id, hit.cosine, dict(hit.payload), hit.fused) for hit in found]
        points_filter = tenant_filter(
            tenant_id, bot_profile_id=bot_profile_id, source_ids=source_ids, exclude_source_ids=exclude_source_ids
        )
        return self.qdrant_search(collection, dense, points_filter, lexical=lexical, limit=limit, candidates=candidates)

    def qdrant_search(
        self,
        collection: str,
        dense: np.ndarray,
        points_filter: qm.Filter,
        *,
        lexical: SparseVector | None,
        limit: int,
        candidates: int,
    ) -> list[VectorHit]:
        """The search as Qdrant runs it: the server's, a legacy collection's, and the reference the
        embedded index is tested against."""
        hybrid = self.is_hybrid(collection)
        with self._access() as client:
            if not lexical:
                result = client.query_points(
                    collection,
                    query=dense.tolist(),
                    using=DENSE if hybrid else None,
                    query_filter=points_filter,
                    limit=limit,
                    with_payload=True,
                )
                return [VectorHit(str(p.id), float(p.score), dict(p.payload or {})) for p in result.points]
            result = client.query_points(
                collection,
                prefetch=[
                    qm.Prefetch(query=dense.tolist(), using=DENSE, limit=candidates),
                    qm.Prefetch(
                        query=qm.SparseVector(indices=lexical.indices, values=lexical.values),
                        using=LEXICAL,
                        limit=candidates,
                    ),
                ],
                query=qm.FusionQuery(fusion=qm.Fusion.RRF),
                # Qdrant applies the top-level filter inside every prefetch (before their limits).
                query_filter=points_filter,
                limit=limit,
                with_payload=True,
                with_vectors=[DENSE],
            )
        hits = []
        unit = dense / (np.linalg.norm(dense) or 1.0)  # stored vectors are normalised (cosine distance)
        for point in result.points:
            stored = (point.vector or {}).get(DENSE) if isinstance(point.vector, dict) else None
            cosine = float(np.dot(unit, np.asarray(stored, dtype=np.float32))) if stored is not None else 0.0
            hits.append(VectorHit(id=str(point.id), score=cosine, payload=dict(point.payload or {}), fused=point.score))
        return hits

    def count(
        self,
        collection: str,
        *,
        tenant_id: uuid.UUID | str,
        bot_profile_id: uuid.UUID | str | None = None,
        source_ids: Sequence[uuid.UUID | str] | None = None,
    ) -> int:
        if not self._exists(collection):
            return 0
        with self._access() as client:
            return client.count(
                collection,
                count_filter=tenant_filter(tenant_id, bot_profile_id=bot_profile_id, source_ids=source_ids),
                exact=True,
            ).count

    def delete(
        self,
        *,
        tenant_id: uuid.UUID | str,
        collections: Sequence[str] | None = None,
        bot_profile_id: uuid.UUID | str | None = None,
        source_ids: Sequence[uuid.UUID | str] | None = None,
    ) -> None:
        """Delete the tenant's points of a bot or of sources (in every collection unless given).
        With neither it would delete the tenant's whole index, which is refused."""
        if bot_profile_id is None and source_ids is None:
            raise ValueError("VectorStore.delete needs bot_profile_id or source_ids.")
        points_filter = tenant_filter(tenant_id, bot_profile_id=bot_profile_id, source_ids=source_ids)
        for collection in collections if collections is not None else self.collections():
            if self._exists(collection):
                with self._access() as client:
                    client.delete(collection, points_selector=points_filter, wait=True)
                    index = self._indexes.get(collection)
                    if index is not None:
                        index.delete(
                            tenant_id=str(tenant_id),
                            bot_profile_id=None if bot_profile_id is None else str(bot_profile_id),
                            source_ids=_texts(source_ids),
                        )

    def delete_points(
        self, collection: str, point_ids: Sequence[uuid.UUID | str], *, tenant_id: uuid.UUID | str
    ) -> None:
        """Delete these points, if they belong to the tenant."""
        if not point_ids or not self._exists(collection):
            return
        for start in range(0, len(point_ids), ID_BATCH_SIZE):
            batch = point_ids[start : start + ID_BATCH_SIZE]
            with self._access() as client:
                client.delete(collection, points_selector=tenant_filter(tenant_id, only_ids=batch), wait=True)
                index = self._indexes.get(collection)
                if index is not None:
                    index.delete_ids([str(point_id) for point_id in batch], tenant_id=str(tenant_id))

    def present_ids(
        self, collection: str, point_ids: Sequence[uuid.UUID | str], *, tenant_id: uuid.UUID | str
    ) -> set[str]:
        """Which of these points the collection holds for the tenant: lookups by id, so the cost
        follows the number of ids asked about, not the size of the collection."""
        if not point_ids or not self._exists(collection):
            return set()
        present: set[str] = set()
        for start in range(0, len(point_ids), ID_BATCH_SIZE):
            batch = [str(point_id) for point_id in point_ids[start : start + ID_BATCH_SIZE]]
            with self._access() as client:
                records = client.retrieve(collection, ids=batch, with_payload=["tenant_id"], with_vectors=False)
            present.update(str(r.id) for r in records if (r.payload or {}).get("tenant_id") == str(tenant_id))
        return present

    def point_ids(
        self, collection: str, *, tenant_id: uuid.UUID | str, source_ids: Sequence[uuid.UUID | str]
    ) -> set[str]:
        """Ids of every point of these sources (paged scroll, no payloads or vectors)."""
        if not self._exists(collection):
            return set()
        ids: set[str] = set()
        offset = None
        while True:
            with self._access() as client:
                points, offset = client.scroll(
                    collection,
                    scroll_filter=tenant_filter(tenant_id, source_ids=source_ids),
                    limit=ID_BATCH_SIZE,
                    offset=offset,
                    with_payload=False,
                    with_vectors=False,
                )
            ids.update(str(point.id) for point in points)
            if offset is None:
                return ids

    def collections(self) -> list[str]:
        base = settings.QDRANT_COLLECTION
        with self._access() as client:
            names = [c.name for c in client.get_collections().collections]
        return [name for name in names if name == base or name.startswith(f"{base}__")]

    def _exists(self, collection: str) -> bool:
        if collection in self._ready_collections:
            return True
        with self._access() as client:
            return client.collection_exists(collection)

    def _index(self, collection: str) -> CollectionIndex | None:
        """The embedded modes' search index of a (hybrid) collection, read from the storage the
        first time it is needed; None in server mode. Call it holding the lock."""
        if not self._embedded:
            return None
        index = self._indexes.get(collection)
        if index is None:
            index = self._indexes[collection] = _load_index(self.client, collection)
        return index


def _texts(values: Sequence[uuid.UUID | str] | None) -> set[str] | None:
    return None if values is None else {str(value) for value in values}


def _indexed(point: VectorPoint) -> IndexedPoint:
    return IndexedPoint(
        id=str(point.id),
        vector=np.asarray(point.vector, dtype=np.float32),
        payload=point.payload,
        lexical=point.lexical,
    )


def _load_index(client: QdrantClient, collection: str) -> CollectionIndex:
    """Every point of an embedded collection, read back into a search index. From qdrant-client's
    local arrays when they look as expected (a second for 200,000 points), else by scrolling."""
    dimensions = client.get_collection(collection).config.params.vectors[DENSE].size  # type: ignore[index]
    index = CollectionIndex(dimensions)
    try:
        points = list(_stored_points(client._client.collections[collection]))  # type: ignore[attr-defined]
    except (AttributeError, KeyError, IndexError, TypeError):
        logger.info("Reading %s through the client: its local storage looks unfamiliar.", collection)
        points = list(_scrolled_points(client, collection))
    index.upsert(points)
    return index


def _stored_points(local: Any) -> Iterator[IndexedPoint]:
    dense, sparse = local.vectors[DENSE], local.sparse_vectors[LEXICAL]
    no_sparse = local.deleted_per_vector[LEXICAL]
    for row, point_id in enumerate(local.ids_inv):
        if local.deleted[row]:
            continue
        stored = sparse[row]
        lexical = None if no_sparse[row] else SparseVector(indices=list(stored.indices), values=list(stored.values))
        yield IndexedPoint(str(point_id), dense[row], dict(local.payload[row]), lexical)


def _scrolled_points(client: QdrantClient, collection: str) -> Iterator[IndexedPoint]:
    offset = None
    while True:
        points, offset = client.scroll(
            collection, limit=ID_BATCH_SIZE, offset=offset, with_payload=True, with_vectors=True
        )
        for point in points:
            vectors = point.vector if isinstance(point.vector, dict) else {}
            stored = vectors.get(LEXICAL)
            lexical = SparseVector(indices=list(stored.indices), values=list(stored.values)) if stored else None
            yield IndexedPoint(
                str(point.id), np.asarray(vectors[DENSE], dtype=np.float32), dict(point.payload or {}), lexical
            )
        if offset is None:
            return


def _vectors(point: VectorPoint, hybrid: bool) -> Any:
    dense = np.asarray(point.vector, dtype=np.float32).tolist()
    if not hybrid:
        return dense
    vectors: dict[str, Any] = {DENSE: dense}
    if point.lexical:
        vectors[LEXICAL] = qm.SparseVector(indices=point.lexical.indices, values=point.lexical.values)
    return vectors


def _tune_local_storage(client: QdrantClient, collection: str) -> None:
    """Local mode persists every point in its own SQLite transaction, with a full fsync each time
    by default (about 1.3 ms a point). WAL with synchronous=NORMAL — what MiniRAG's own embedded
    SQLite database uses — stays consistent through a crash of the process and is several times
    faster. This reaches into qdrant-client's local internals, so any surprise leaves the defaults."""
    try:
        connection = client._client.collections[collection].storage.storage  # type: ignore[attr-defined]
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
    except Exception:  # noqa: BLE001 - an optimisation only
        logger.info("Could not tune local Qdrant storage for %s; keeping its defaults.", collection)


_store_lock = threading.Lock()


def get_vector_store() -> VectorStore:
    with _store_lock:
        return _create_store()


@lru_cache(maxsize=1)
def _create_store() -> VectorStore:
    return VectorStore(get_qdrant_client(), embedded=qdrant_mode() != "server")
