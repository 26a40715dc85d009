"""Embedding with a provider on the network: large batches, several in flight at once, and a batch
the provider refuses as too large sent again in halves (the smaller size kept for that model);
the offline model keeps its one-batch-at-a-time path. Against the loopback fake provider."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from minirag import model_gateway
from minirag.model_gateway import Endpoint, ModelError, embed_texts
from minirag.tests.benches import run_bench
from providers.tests.fake_provider import FakeProvider, embedding_of

MODEL = "openai/fake-embed"


@pytest.fixture
def endpoint(fake_provider: FakeProvider, settings: Any) -> Iterator[Endpoint]:
    settings.MODEL_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    settings.ALLOW_PRIVATE_NETWORKS = False
    model_gateway._remote_batch_limits.clear()
    yield Endpoint(api_key="sk-test", api_base=f"{fake_provider.url}/v1")
    model_gateway._remote_batch_limits.clear()


def texts(count: int) -> list[str]:
    return [f"passage number {n} about the warehouse" for n in range(count)]


def expected(items: list[str], dimensions: int) -> np.ndarray:
    vectors = np.asarray([embedding_of(text, dimensions) for text in items], dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def embedding_sizes(fake: FakeProvider) -> list[int]:
    return [len(call.body["input"]) for call in fake.requests if call.path.endswith("/embeddings")]


def test_large_batches_go_out_together_and_come_back_in_order(
    fake_provider: FakeProvider, endpoint: Endpoint, settings: Any
) -> None:
    settings.REMOTE_EMBEDDING_BATCH_SIZE = 100
    settings.EMBEDDING_CONCURRENCY = 4
    embed_texts(["warm up the client"], model=MODEL, endpoint=endpoint)  # its first call builds the SDK client
    fake_provider.reset()
    fake_provider.embedding_latency = 0.3
    items = texts(400)
    progress: list[int] = []
    started = time.perf_counter()
    result = embed_texts(items, model=MODEL, endpoint=endpoint, on_batch=progress.append)
    elapsed = time.perf_counter() - started
    assert sorted(embedding_sizes(fake_provider)) == [100, 100, 100, 100] and sorted(progress) == [100] * 4
    assert elapsed < 0.3 * 4 * 0.6, elapsed  # in flight together, not one after another (1.2 s)
    np.testing.assert_allclose(result.vectors, expected(items, fake_provider.dimensions), atol=1e-5)
    assert result.prompt_tokens == sum(len(text.split()) for text in items)


def test_a_batch_refused_as_too_large_is_halved_and_the_size_remembered(
    fake_provider: FakeProvider, endpoint: Endpoint, settings: Any
) -> None:
    settings.REMOTE_EMBEDDING_BATCH_SIZE = 128
    settings.EMBEDDING_CONCURRENCY = 1
    fake_provider.max_inputs = 50
    items = texts(256)
    result = embed_texts(items, model=MODEL, endpoint=endpoint)
    np.testing.assert_allclose(result.vectors, expected(items, fake_provider.dimensions), atol=1e-5)
    assert model_gateway._remote_batch_limits[MODEL] == 32
    fake_provider.reset()
    embed_texts(items[:96], model=MODEL, endpoint=endpoint)
    assert embedding_sizes(fake_provider) == [32, 32, 32]  # no refusal the second time


def test_a_refusal_that_is_not_about_size_is_not_retried_in_halves(
    fake_provider: FakeProvider, endpoint: Endpoint, settings: Any
) -> None:
    settings.REMOTE_EMBEDDING_BATCH_SIZE = 64
    fake_provider.fail_next(400, times=10, path="/embeddings")
    with pytest.raises(ModelError, match="refused the request"):
        embed_texts(texts(64), model=MODEL, endpoint=endpoint)
    assert embedding_sizes(fake_provider) == [64, 32, 16, 8]  # halved down to 8, then the first refusal
    assert MODEL not in model_gateway._remote_batch_limits


def test_the_offline_model_keeps_its_own_batches() -> None:
    result = embed_texts(texts(70), model="local/minilm", batch_size=None)
    assert result.vectors.shape == (70, 384)


def test_the_remote_ingestion_benchmark_runs_end_to_end() -> None:
    """A small run of bench/ingest_remote.py (the full one: docs/benchmarks.md)."""
    sizes = ["--documents", "4", "--words", "600", "--latency", "0.02", "--per-input", "0"]
    result = run_bench("ingest_remote.py", *sizes)
    output = result.stdout + result.stderr
    assert "before (32 per request, 1 at a time, one source at a time):" in output, output
    assert "sources at a time (the embedded task pool)" in output and "speed-up:" in output, output
