#!/usr/bin/env python
"""The other candidate for the embedded vector search: Qdrant's embedded engine, qdrant-edge-py, on
the same kind of store as bench/vector_search.py (200,000 chunks, 50,000 in the searched bot, 384
dimensions, lexical vectors, tenant and bot payload indexes), for the same hybrid top-10 query, both
exact and with its HNSW index. Kept to re-check the choice (docs/benchmarks.md, "Embedded vector
search"); qdrant-edge-py is not a dependency of MiniRAG:

    python -m venv /tmp/edge && /tmp/edge/bin/pip install qdrant-edge-py==0.9.0 numpy
    /tmp/edge/bin/python bench/vector_search_edge.py [--points 200000 --bot-points 50000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid

import numpy as np

DIMENSIONS, VOCABULARY, TOPICS = 384, 30_000, 400


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--bot-points", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    try:
        import qdrant_edge as edge
    except ImportError:
        print("qdrant-edge-py is not installed here: see this script's docstring.", file=sys.stderr)
        return 2

    rng = np.random.default_rng(19)

    def unit(vectors: np.ndarray) -> np.ndarray:
        return (vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)).astype(np.float32)

    centres = unit(rng.standard_normal((TOPICS, DIMENSIONS)).astype(np.float32))
    term_weights = 1.0 / np.arange(1, VOCABULARY + 1) ** 1.1
    term_weights /= term_weights.sum()

    def vectors(count: int) -> np.ndarray:
        return unit(centres[rng.integers(0, TOPICS, count)] + 0.35 * rng.standard_normal((count, DIMENSIONS)))

    def lexical(terms: int) -> object:
        indices = sorted(set(rng.choice(VOCABULARY, size=terms, p=term_weights).tolist()))
        return edge.SparseVector(indices=indices, values=rng.uniform(0.2, 4.0, len(indices)).round(4).tolist())

    config = edge.EdgeConfig(
        vectors={"dense": edge.EdgeVectorParams(size=DIMENSIONS, distance=edge.Distance.Cosine)},
        sparse_vectors={"lexical": edge.EdgeSparseVectorParams()},
    )
    shard = edge.EdgeShard.create(tempfile.mkdtemp(prefix="minirag-edge-"), config)
    shard.update(edge.UpdateOperation.create_field_index("tenant_id", edge.KeywordIndexParams(is_tenant=True)))
    shard.update(edge.UpdateOperation.create_field_index("bot_profile_id", edge.KeywordIndexParams()))
    tenant, bot = str(uuid.uuid4()), str(uuid.uuid4())
    others = [(str(uuid.uuid4()), str(uuid.uuid4())) for _ in range(30)]
    started = time.perf_counter()
    for start in range(0, args.points, 5000):
        count = min(5000, args.points - start)
        dense = vectors(count)
        points = []
        for offset in range(count):
            owner = (tenant, bot) if start + offset < args.bot_points else others[(start + offset) % len(others)]
            vector = {"dense": dense[offset].tolist(), "lexical": lexical(int(rng.integers(20, 60)))}
            payload = {"tenant_id": owner[0], "bot_profile_id": owner[1]}
            points.append(edge.Point(id=str(uuid.uuid4()), vector=vector, payload=payload))
        shard.update(edge.UpdateOperation.upsert_points(points))
    print(f"filled {args.points} points in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    shard.optimize()
    print(f"optimized (HNSW and payload indexes built) in {time.perf_counter() - started:.0f} s")

    bot_filter = edge.Filter(
        must=[
            edge.FieldCondition(key="tenant_id", match=edge.MatchValue(tenant)),
            edge.FieldCondition(key="bot_profile_id", match=edge.MatchValue(bot)),
        ]
    )
    timings: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.queries):
        vector, terms = vectors(1)[0].tolist(), lexical(6)
        for exact, times in timings.items():
            request = edge.QueryRequest(
                limit=10,
                query=edge.Fusion.Rrf(k=2),
                filter=bot_filter,
                with_payload=True,
                prefetches=[
                    edge.Prefetch(
                        limit=40, query=edge.Query.Nearest(vector, using="dense"), params=edge.SearchParams(exact=exact)
                    ),
                    edge.Prefetch(limit=40, query=edge.Query.Nearest(terms, using="lexical")),
                ],
            )
            began = time.perf_counter()
            shard.query(request)
            times.append((time.perf_counter() - began) * 1000)
    for exact, times in timings.items():
        label = "exact" if exact else "HNSW (approximate)"
        print(
            f"qdrant-edge, hybrid top 10, {label}: p50 {statistics.median(times):.2f} ms, "
            f"p95 {sorted(times)[int(0.95 * (len(times) - 1))]:.2f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
