"""The offline embedder (`local/minilm`): vector contract, fidelity to the fp32 model, and the LiteLLM provider.

No database and no network: the model loads once per module from the installed package and the vendored tokenizer.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from minirag.local_models import embedder as embedder_module
from minirag.local_models.embedder import (
    LOCAL_EMBEDDING_DIMENSIONS,
    LOCAL_EMBEDDING_MODEL,
    MAX_TOKENS,
    MiniLMEmbedder,
    get_local_embedder,
)

REFERENCE = Path(__file__).parent / "data" / "minilm_reference.json"

MIXED = [
    "How do I reset my password?",
    "",
    "Refunds are processed within five to seven business days and returned to the original payment method. " * 2,
    "Wie kann ich mein Passwort zurücksetzen?",
    "SELECT id FROM tenants WHERE slug = %s;",
    "ok",
]


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return get_local_embedder()


@pytest.fixture(scope="module")
def litellm_local() -> Any:
    """LiteLLM with the `local` provider registered (importing LiteLLM takes seconds: once per module)."""
    from minirag.local_models.provider import ensure_registered

    ensure_registered()
    import litellm

    return litellm


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any attempt to open an internet connection (Unix sockets stay allowed)."""
    real_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise AssertionError(f"network access attempted: {address!r}")
        return real_connect(self, address)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "create_connection", refuse)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


# --- the vector contract ---------------------------------------------------------------------------------------------


def test_shape_dtype_and_unit_norm(embedder: MiniLMEmbedder) -> None:
    vectors = embedder.embed(MIXED)
    assert vectors.shape == (len(MIXED), LOCAL_EMBEDDING_DIMENSIONS) == (6, 384)
    assert vectors.dtype == np.float32
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_no_texts_gives_an_empty_matrix(embedder: MiniLMEmbedder) -> None:
    vectors = embedder.embed([])
    assert vectors.shape == (0, 384)
    assert vectors.dtype == np.float32
    assert embedder.count_tokens([]) == []


def test_deterministic(embedder: MiniLMEmbedder) -> None:
    assert np.array_equal(embedder.embed(MIXED), embedder.embed(MIXED))


@pytest.mark.parametrize("batch_size", [1, 2, 32])
def test_batch_invariance_and_order(embedder: MiniLMEmbedder, batch_size: int) -> None:
    # Sorting by length inside a call must not leak into the output order, and a text's vector must not depend on
    # which texts share (and pad) its batch.
    alone = np.stack([embedder.embed([text])[0] for text in MIXED])
    together = embedder.embed(MIXED, batch_size=batch_size)
    for i in range(len(MIXED)):
        assert cosine(alone[i], together[i]) > 0.9999, MIXED[i]
    reversed_ = embedder.embed(MIXED[::-1], batch_size=batch_size)[::-1]
    np.testing.assert_allclose(reversed_, together, atol=1e-4)


def test_empty_and_whitespace_only_texts(embedder: MiniLMEmbedder) -> None:
    vectors = embedder.embed(["", "   ", "\n\t "])
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # All three tokenize to just [CLS] [SEP].
    assert embedder.count_tokens(["", "   ", "\n\t "]) == [2, 2, 2]
    assert cosine(vectors[0], vectors[1]) > 0.9999


def test_long_text_is_truncated_to_its_first_256_word_pieces(embedder: MiniLMEmbedder) -> None:
    # Each of these words is a single word piece, so the first 254 words are exactly what the model reads
    # (254 + [CLS] + [SEP] = 256).
    words = "the quick brown fox jumps over a lazy dog while people watch from their house".split()
    long_words = [words[i % len(words)] for i in range(1000)]
    long_text = " ".join(long_words)
    head = " ".join(long_words[: MAX_TOKENS - 2])

    assert embedder.count_tokens([long_text, head]) == [MAX_TOKENS, MAX_TOKENS]
    long_vector, head_vector = embedder.embed([long_text, head])
    assert cosine(long_vector, head_vector) > 0.9999


def test_a_bare_string_or_non_string_is_refused(embedder: MiniLMEmbedder) -> None:
    with pytest.raises(TypeError, match="single string"):
        embedder.embed("hello")
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        embedder.embed(["hello", 42])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="batch_size"):
        embedder.embed(["hello"], batch_size=0)


def test_count_tokens(embedder: MiniLMEmbedder) -> None:
    counts = embedder.count_tokens(["hello world", "", "x " * 1000])
    assert counts == [4, 2, MAX_TOKENS]  # [CLS] hello world [SEP]
    vectors, counted = embedder.embed_with_token_counts(["hello world", "", "x " * 1000])
    assert counted == counts
    assert vectors.shape == (3, 384)


def test_paraphrases_score_higher_than_unrelated_sentences(embedder: MiniLMEmbedder) -> None:
    pairs = [
        ("How do I reset my password?", "I forgot my password and need to change it."),
        ("When will my order arrive?", "How long does shipping take?"),
        ("A man is playing a guitar.", "Someone is playing an instrument."),
    ]
    unrelated = ["The mitochondrion produces most of the cell's energy.", "Stock markets fell sharply on Monday."]
    vectors = embedder.embed([t for pair in pairs for t in pair] + unrelated)
    for i in range(len(pairs)):
        a, b = vectors[2 * i], vectors[2 * i + 1]
        related = float(a @ b)
        assert related > 0.5, pairs[i]
        for other in vectors[-len(unrelated) :]:
            assert related > float(a @ other) + 0.3, pairs[i]


def test_close_to_the_fp32_model(embedder: MiniLMEmbedder) -> None:
    # Reference vectors were computed once with the original fp32 weights on torch (sentence-transformers
    # semantics); the int8 ONNX model must stay within quantisation noise of them.
    reference = json.loads(REFERENCE.read_text())["items"]
    assert len(reference) == 3
    vectors = embedder.embed([item["text"] for item in reference])
    for item, vector in zip(reference, vectors, strict=True):
        expected = np.asarray(item["embedding"], dtype=np.float32)
        assert expected.shape == (384,)
        assert cosine(vector, expected) >= 0.99, item["text"]


def test_the_singleton_loads_once_under_concurrent_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    constructed: list[object] = []

    class SlowFake:
        def __init__(self) -> None:
            time.sleep(0.05)  # widen the race window
            constructed.append(self)

    monkeypatch.setattr(embedder_module, "_instance", None)
    monkeypatch.setattr(embedder_module, "MiniLMEmbedder", SlowFake)
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(get_local_embedder())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(constructed) == 1
    assert all(result is constructed[0] for result in results)


def test_concurrent_calls_agree(embedder: MiniLMEmbedder) -> None:
    expected = embedder.embed(MIXED)
    results: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: results.append(embedder.embed(MIXED))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    for result in results:
        np.testing.assert_allclose(result, expected, atol=1e-5)


# --- the LiteLLM provider --------------------------------------------------------------------------------------------


def test_litellm_embedding(litellm_local: Any, embedder: MiniLMEmbedder, no_network: None) -> None:
    texts = ["How do I reset my password?", "refund policy"]
    response = litellm_local.embedding(model=LOCAL_EMBEDDING_MODEL, input=texts)
    assert isinstance(response, litellm_local.EmbeddingResponse)
    assert response.model == "local/minilm"
    assert [item["index"] for item in response.data] == [0, 1]
    assert all(item["object"] == "embedding" for item in response.data)
    vectors = np.asarray([item["embedding"] for item in response.data], dtype=np.float32)
    assert vectors.shape == (2, 384)
    np.testing.assert_allclose(vectors, embedder.embed(texts), atol=1e-6)
    tokens = sum(embedder.count_tokens(texts))
    assert response.usage.prompt_tokens == response.usage.total_tokens == tokens > 0


def test_litellm_embedding_accepts_a_single_string(litellm_local: Any, no_network: None) -> None:
    response = litellm_local.embedding(model=LOCAL_EMBEDDING_MODEL, input="hello")
    assert len(response.data) == 1
    assert len(response.data[0]["embedding"]) == 384


def test_litellm_aembedding(litellm_local: Any, no_network: None) -> None:
    response = asyncio.run(litellm_local.aembedding(model=LOCAL_EMBEDDING_MODEL, input=["hello", "world"]))
    assert response.model == "local/minilm"
    assert [len(item["embedding"]) for item in response.data] == [384, 384]
    assert response.usage.prompt_tokens > 0


def test_litellm_aembedding_does_not_block_the_event_loop(litellm_local: Any, no_network: None) -> None:
    texts = [f"Sentence number {i} about refunds, shipping and passwords." for i in range(96)]

    async def main() -> tuple[int, Any]:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.002)

        task = asyncio.create_task(ticker())
        try:
            response = await litellm_local.aembedding(model=LOCAL_EMBEDDING_MODEL, input=texts)
        finally:
            done.set()
            await task
        return ticks, response

    ticks, response = asyncio.run(main())
    assert len(response.data) == len(texts)
    # Embedding 96 sentences takes ≥ 100 ms on this hardware; a blocked loop would tick about once.
    assert ticks >= 5


def test_unknown_local_model_is_a_clear_error(litellm_local: Any, no_network: None) -> None:
    with pytest.raises(litellm_local.NotFoundError, match=r"Unknown local embedding model 'local/nope'.*local/minilm"):
        litellm_local.embedding(model="local/nope", input=["hello"])
    with pytest.raises(litellm_local.NotFoundError, match="local/nope"):
        asyncio.run(litellm_local.aembedding(model="local/nope", input=["hello"]))


def test_token_arrays_are_refused(litellm_local: Any, no_network: None) -> None:
    with pytest.raises(litellm_local.BadRequestError, match="string or a list of strings"):
        litellm_local.embedding(model=LOCAL_EMBEDDING_MODEL, input=[[101, 102]])


def test_registration_is_idempotent_and_thread_safe(litellm_local: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from minirag.local_models.provider import LocalProvider, ensure_registered, register_local_provider

    # Start from a map that holds someone else's provider, which must survive. (LiteLLM's derived provider lists are
    # copied too, so that the fake provider does not outlive the test.)
    other = {"provider": "someone-else", "custom_handler": object()}
    monkeypatch.setattr(litellm_local, "custom_provider_map", [other])
    monkeypatch.setattr(litellm_local, "_custom_providers", list(litellm_local._custom_providers))
    monkeypatch.setattr(litellm_local, "provider_list", list(litellm_local.provider_list))
    threads = [threading.Thread(target=register_local_provider) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ensure_registered()
    register_local_provider()

    local_entries = [item for item in litellm_local.custom_provider_map if item["provider"] == "local"]
    assert len(local_entries) == 1
    assert isinstance(local_entries[0]["custom_handler"], LocalProvider)
    assert other in litellm_local.custom_provider_map
    assert litellm_local.get_llm_provider("local/minilm")[:2] == ("minilm", "local")
