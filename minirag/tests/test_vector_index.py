"""The embedded modes' NumPy search index (minirag/vector_index.py) answers exactly as Qdrant does:
same points, same order, same scores, for dense and hybrid searches with every filter, after every
kind of change, and after a restart that reads the index back from the local storage."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from minirag.lexical import SparseVector
from minirag.tests.benches import run_bench
from minirag.vectorstore import (
    FUSION_CANDIDATES,
    VectorHit,
    VectorPoint,
    VectorStore,
    close_vector_store,
    get_vector_store,
    tenant_filter,
)

COLLECTION = "index_equivalence"
DIMENSIONS = 24
VOCABULARY = 400
TENANTS = [str(uuid.UUID(int=n)) for n in (1, 2, 3)]
BOTS = {tenant: [str(uuid.uuid5(uuid.UUID(tenant), f"bot{n}")) for n in range(2)] for tenant in TENANTS}


def sparse(rng: random.Random, terms: int) -> SparseVector:
    indices = sorted(rng.sample(range(VOCABULARY), terms))
    return SparseVector(indices=indices, values=[round(rng.uniform(0.1, 3.0), 4) for _ in indices])


def make_points(rng: random.Random, count: int, *, sources_per_bot: int = 4) -> list[VectorPoint]:
    points = []
    for _ in range(count):
        tenant = rng.choice(TENANTS)
        bot = rng.choice(BOTS[tenant])
        source = str(uuid.uuid5(uuid.UUID(bot), f"source{rng.randrange(sources_per_bot)}"))
        payload = {"tenant_id": tenant, "bot_profile_id": bot, "source_id": source, "content": f"c{rng.random()}"}
        vector = np.asarray([rng.gauss(0, 1) for _ in range(DIMENSIONS)], dtype=np.float32)
        # Some points nearly share a direction: near-ties are where a sloppy ranking would show.
        # (Exact ties may come in either order, in Qdrant as here: equally exact.)
        if rng.random() < 0.1 and points:
            vector = np.asarray(points[-1].vector, dtype=np.float32) + np.float32(1e-3) * vector
        lexical = sparse(rng, rng.randrange(3, 15)) if rng.random() > 0.05 else None
        points.append(
            VectorPoint(id=str(uuid.UUID(int=rng.getrandbits(128))), vector=vector, payload=payload, lexical=lexical)
        )
    return points


def sources_of(points: list[VectorPoint], tenant: str, bot: str) -> list[str]:
    return sorted({p.payload["source_id"] for p in points if p.payload["bot_profile_id"] == bot})


def compare(store: VectorStore, points: list[VectorPoint], rng: random.Random, queries: int = 40) -> None:
    for _ in range(queries):
        tenant = rng.choice(TENANTS)
        bot = rng.choice(BOTS[tenant])
        sources = sources_of(points, tenant, bot)
        include = rng.sample(sources, k=min(len(sources), 2)) if sources and rng.random() < 0.3 else None
        exclude = rng.sample(sources, k=1) if sources and rng.random() < 0.3 else None
        vector = np.asarray([rng.gauss(0, 1) for _ in range(DIMENSIONS)], dtype=np.float32)
        lexical = sparse(rng, rng.randrange(1, 8)) if rng.random() < 0.7 else None
        limit = rng.choice([1, 5, 10, 20])
        ours = store.search(
            COLLECTION,
            vector,
            tenant_id=tenant,
            bot_profile_id=bot,
            lexical_query=lexical,
            source_ids=include,
            exclude_source_ids=exclude,
            limit=limit,
        )
        theirs = store.qdrant_search(
            COLLECTION,
            vector,
            tenant_filter(tenant, bot_profile_id=bot, source_ids=include, exclude_source_ids=exclude),
            lexical=lexical,
            limit=limit,
            candidates=max(FUSION_CANDIDATES, limit * 4),
        )
        assert_same(ours, theirs)
        assert all(hit.payload["tenant_id"] == tenant and hit.payload["bot_profile_id"] == bot for hit in ours)


def assert_same(ours: list[VectorHit], theirs: list[VectorHit]) -> None:
    """Same points in the same order with the same scores — except that points of equal score (to
    float precision) may come in either order, as they may in Qdrant, whose own sort is not stable."""
    assert len(ours) == len(theirs)
    fused = bool(ours) and ours[0].fused is not None

    def key(hit: VectorHit) -> float:
        return float(hit.fused if fused else hit.score)

    tolerance = 1e-9 if fused else 1e-5
    for mine, reference in zip(ours, theirs, strict=True):
        assert mine.score == pytest.approx(reference.score, abs=1e-5) or mine.id != reference.id
        assert key(mine) == pytest.approx(key(reference), abs=tolerance)
        if mine.id == reference.id:
            assert mine.payload == reference.payload
    if theirs:
        boundary = key(theirs[-1])
        differing = {hit.id for hit in ours} ^ {hit.id for hit in theirs}
        tied = {hit.id for hit in ours + theirs if abs(key(hit) - boundary) <= tolerance}
        assert differing <= tied  # only a tie cut by the limit may keep a different point


@pytest.fixture
def store() -> Iterator[VectorStore]:
    vector_store = get_vector_store()
    vector_store.ensure_collection(COLLECTION, DIMENSIONS)
    yield vector_store
    vector_store.drop_collection(COLLECTION)


def test_searches_match_qdrant_exactly_through_every_change(store: VectorStore) -> None:
    rng = random.Random(20261205)
    points = make_points(rng, 900)
    store.upsert(COLLECTION, points)
    compare(store, points, rng)

    # A second batch, some replacing points (same ids, new vectors and sources).
    replaced = [
        VectorPoint(p.id, np.asarray(p.vector, dtype=np.float32)[::-1].copy(), p.payload, p.lexical)
        for p in rng.sample(points, 60)
    ]
    fresh = make_points(rng, 200)
    store.upsert(COLLECTION, replaced + fresh)
    by_id = {p.id: p for p in points + fresh}
    by_id.update({p.id: p for p in replaced})
    points = list(by_id.values())
    compare(store, points, rng)

    # Deleting a source, a bot's points, single points; a payload change.
    tenant = TENANTS[0]
    bot = BOTS[tenant][0]
    gone_source = sources_of(points, tenant, bot)[0]
    store.delete(tenant_id=tenant, collections=[COLLECTION], source_ids=[gone_source])
    store.delete(tenant_id=TENANTS[1], collections=[COLLECTION], bot_profile_id=BOTS[TENANTS[1]][1])
    singles = [p.id for p in rng.sample(points, 40)]
    store.delete_points(COLLECTION, singles, tenant_id=TENANTS[2])  # only tenant 3's of them go
    store.set_payload(
        COLLECTION, {"authority": "mandatory"}, tenant_id=tenant, source_ids=sources_of(points, tenant, bot)[1:2]
    )
    points = [
        p
        for p in points
        if p.payload["source_id"] != gone_source
        and p.payload["bot_profile_id"] != BOTS[TENANTS[1]][1]
        and not (p.id in singles and p.payload["tenant_id"] == TENANTS[2])
    ]
    compare(store, points, rng)
    assert store.count(COLLECTION, tenant_id=tenant, bot_profile_id=bot) == sum(
        1 for p in points if p.payload["bot_profile_id"] == bot
    )


def test_deleting_most_of_a_bot_compacts_it_and_keeps_answering_alike(store: VectorStore) -> None:
    rng = random.Random(7)
    points = make_points(rng, 3000, sources_per_bot=4)  # about 500 per bot
    store.upsert(COLLECTION, points)
    compare(store, points, rng, queries=5)
    for tenant in TENANTS:
        for bot in BOTS[tenant]:
            gone = sources_of(points, tenant, bot)[:3]
            store.delete(tenant_id=tenant, collections=[COLLECTION], source_ids=gone)
            points = [p for p in points if p.payload["source_id"] not in gone]
    index = store._indexes[COLLECTION]
    assert all(partition.dead == 0 for partition in index.partitions.values())  # compacted
    compare(store, points, rng)


def test_the_index_is_read_back_from_local_storage_after_a_restart(tmp_path: Any, settings: Any) -> None:
    settings.QDRANT_PATH = str(tmp_path / "qdrant")
    rng = random.Random(99)
    points = make_points(rng, 500)
    store = get_vector_store()
    store.ensure_collection(COLLECTION, DIMENSIONS)
    store.upsert(COLLECTION, points)
    store.delete_points(COLLECTION, [p.id for p in points[:50]], tenant_id=TENANTS[0])
    points = [p for p in points[50:]] + [p for p in points[:50] if p.payload["tenant_id"] != TENANTS[0]]
    before = store.search(
        COLLECTION, points[0].vector, tenant_id=TENANTS[1], bot_profile_id=BOTS[TENANTS[1]][0], limit=10
    )
    close_vector_store()  # what a restart does: the next store reads the directory again

    reopened = get_vector_store()
    assert COLLECTION not in reopened._indexes
    after = reopened.search(
        COLLECTION, points[0].vector, tenant_id=TENANTS[1], bot_profile_id=BOTS[TENANTS[1]][0], limit=10
    )
    assert [hit.id for hit in after] == [hit.id for hit in before]
    compare(reopened, points, rng)
    close_vector_store()


def test_another_tenants_points_are_never_scored(store: VectorStore) -> None:
    rng = random.Random(3)
    points = make_points(rng, 300)
    store.upsert(COLLECTION, points)
    target = next(p for p in points if p.payload["tenant_id"] == TENANTS[0])
    # The exact vector and terms of tenant 1's point, searched as tenant 2: not found.
    for bot in BOTS[TENANTS[1]]:
        hits = store.search(
            COLLECTION, target.vector, tenant_id=TENANTS[1], bot_profile_id=bot, lexical_query=target.lexical, limit=50
        )
        assert target.id not in {hit.id for hit in hits}
        assert all(hit.payload["tenant_id"] == TENANTS[1] for hit in hits)
    assert (
        store.search(COLLECTION, target.vector, tenant_id=str(uuid.uuid4()), bot_profile_id=BOTS[TENANTS[0]][0]) == []
    )


def test_the_benchmark_runs_end_to_end() -> None:
    """A small run of bench/vector_search.py (the full one: docs/benchmarks.md)."""
    sizes = ["--points", "3000", "--bot-points", "1000", "--queries", "20", "--baseline-queries", "3"]
    result = run_bench("vector_search.py", *sizes)
    assert "top 10 identical to Qdrant's: 3/3; dense top 10 identical to brute force: 20/20" in result.stdout, (
        result.stdout + result.stderr
    )
