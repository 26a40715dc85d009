"""Re-ingestion is a diff: same content → same ids and zero embedding calls; a change embeds
exactly what changed; vanished content is deleted; stored vectors repair a lost index; bots in
different embedding spaces live in different collections."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import litellm
import numpy as np
import pytest
from litellm.llms.custom_llm import CustomLLM
from litellm.types.utils import EmbeddingResponse
from litellm.utils import custom_llm_setup

from conftest import TenantWorld
from minirag import model_gateway
from minirag.vectorstore import collection_name, get_vector_store
from sources import ingestion, lifecycle
from sources.ingestion import plan_chunks
from sources.lifecycle import listening_to_progress
from sources.loaders import LoadedDocument
from sources.models import Chunk, Source
from sources.services import source_create, source_ingest_request, source_update
from tenants.tenancy import tenant_scope

pytestmark = pytest.mark.django_db

# Paragraphs of ~300 characters: each chunk holds one paragraph (plus overlap from the previous).
PARAGRAPHS = [
    f"Section {n}. " + " ".join(f"{word}{n}" for word in ["alpha", "bravo", "charlie", "delta", "echo"] * 9)
    for n in range(12)
]


class EmbeddingSpy:
    """Counts the texts that really reach the embedding gateway (the real model still runs)."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def __call__(self, texts: Any, **kwargs: Any) -> Any:
        self.texts.extend(texts)
        return model_gateway.embed_texts(texts, **kwargs)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> EmbeddingSpy:
    recorder = EmbeddingSpy()
    monkeypatch.setattr(ingestion, "embed_texts", recorder)
    return recorder


def text_source(world: TenantWorld, content: str, **kwargs: Any) -> Source:
    with tenant_scope(world.tenant):
        return source_create(
            tenant=world.tenant,
            bot_profile=kwargs.pop("bot", world.bot),
            name="Manual",
            source_type="text",
            content=content,
            **kwargs,
        )


def ingest(world: TenantWorld, source: Source) -> Source:
    with tenant_scope(world.tenant):
        source_ingest_request(tenant=world.tenant, source=source)
        source.refresh_from_db()
    assert source.status == "ready", source.error_message
    return source


def point_ids(world: TenantWorld, source: Source, model: str = "local/minilm") -> set[str]:
    return get_vector_store().point_ids(collection_name(model), tenant_id=world.tenant.pk, source_ids=[source.pk])


def chunk_ids(world: TenantWorld, source: Source) -> set[str]:
    with tenant_scope(world.tenant):
        return {str(pk) for pk in Chunk.objects.filter(source=source).values_list("pk", flat=True)}


def update_content(world: TenantWorld, source: Source, content: str) -> None:
    with tenant_scope(world.tenant):
        source_update(tenant=world.tenant, source=source, content=content)


def test_reingesting_unchanged_content_embeds_and_writes_nothing(
    alpha: TenantWorld, spy: EmbeddingSpy, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = ingest(alpha, text_source(alpha, "\n\n".join(PARAGRAPHS)))
    first_ids = chunk_ids(alpha, source)
    assert len(spy.texts) == source.chunk_count == len(first_ids) == len(PARAGRAPHS)
    assert point_ids(alpha, source) == first_ids
    with tenant_scope(alpha.tenant):
        first_vectors = dict(Chunk.objects.filter(source=source).values_list("pk", "embedding"))

    upserts: list[int] = []
    original_upsert = get_vector_store().upsert
    monkeypatch.setattr(
        get_vector_store(), "upsert", lambda c, points: upserts.append(len(points)) or original_upsert(c, points)
    )
    spy.texts.clear()
    source = ingest(alpha, source)
    assert spy.texts == [] and upserts == []
    assert chunk_ids(alpha, source) == first_ids and point_ids(alpha, source) == first_ids
    with tenant_scope(alpha.tenant):
        assert dict(Chunk.objects.filter(source=source).values_list("pk", "embedding")) == first_vectors


def test_a_change_embeds_exactly_the_changed_chunks_and_deletes_the_vanished(
    alpha: TenantWorld, spy: EmbeddingSpy
) -> None:
    source = ingest(alpha, text_source(alpha, "\n\n".join(PARAGRAPHS)))
    before = chunk_ids(alpha, source)
    edited = list(PARAGRAPHS)
    edited[5] = "Section 5 now says something entirely different about warranty claims and repairs."
    del edited[9]
    update_content(alpha, source, "\n\n".join(edited))
    expected = {
        str(chunk.id) for chunk in plan_chunks(source.pk, [LoadedDocument("\n\n".join(edited))], size=512, overlap=64)
    }

    spy.texts.clear()
    source = ingest(alpha, source)
    after = chunk_ids(alpha, source)
    assert after == expected
    assert len(spy.texts) == len(after - before) > 0
    assert len(spy.texts) <= 4  # the edit, its successor's overlap, and the paragraph after the deletion
    assert point_ids(alpha, source) == after  # vanished points are gone from the index
    assert source.chunk_count == len(after)


def test_inserting_at_the_top_moves_chunks_without_embedding_them(alpha: TenantWorld, spy: EmbeddingSpy) -> None:
    source = ingest(alpha, text_source(alpha, "\n\n".join(PARAGRAPHS)))
    preface = "Preface. " + " ".join(["a new preface paragraph that is long enough to fill its own chunk"] * 4)
    update_content(alpha, source, "\n\n".join([preface, *PARAGRAPHS]))
    spy.texts.clear()
    source = ingest(alpha, source)
    assert len(spy.texts) <= 2  # the preface and the chunk that now overlaps it
    hits = {
        hit.payload["content"]: hit.payload["chunk_index"]
        for hit in get_vector_store().search(
            "minirag_chunks",
            np.ones(384),
            tenant_id=alpha.tenant.pk,
            bot_profile_id=alpha.bot.pk,
            source_ids=[source.pk],
            limit=50,
        )
    }
    with tenant_scope(alpha.tenant):
        rows = dict(Chunk.objects.filter(source=source).values_list("content", "chunk_index"))
    assert hits == rows  # the index's positions follow the database's
    assert sorted(rows.values()) == list(range(len(PARAGRAPHS) + 1))


def test_duplicate_paragraphs_get_distinct_ids_and_ids_depend_on_the_source(alpha: TenantWorld) -> None:
    content = "\n\n".join([PARAGRAPHS[0], PARAGRAPHS[1], PARAGRAPHS[0]])
    one = ingest(alpha, text_source(alpha, content))
    two = ingest(alpha, text_source(alpha, content))
    assert one.chunk_count == 3 and len(chunk_ids(alpha, one)) == 3
    assert chunk_ids(alpha, one).isdisjoint(chunk_ids(alpha, two))


def test_a_lost_index_is_rebuilt_from_stored_vectors_without_embedding(alpha: TenantWorld, spy: EmbeddingSpy) -> None:
    source = ingest(alpha, text_source(alpha, "\n\n".join(PARAGRAPHS[:4])))
    get_vector_store().delete_points("minirag_chunks", sorted(point_ids(alpha, source))[:2], tenant_id=alpha.tenant.pk)
    assert len(point_ids(alpha, source)) == 2
    spy.texts.clear()
    source = ingest(alpha, source)
    assert spy.texts == []
    assert point_ids(alpha, source) == chunk_ids(alpha, source)


def test_progress_is_reported_as_batches_finish(
    alpha: TenantWorld, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.EMBEDDING_BATCH_SIZE = 2  # embedding groups of of 4 x 2 = 8 chunks
    monkeypatch.setattr(lifecycle, "PROGRESS_WRITE_INTERVAL_SECONDS", 0)  # a fast test finishes within the throttle
    seen: list[tuple[int, int, str]] = []
    source = text_source(alpha, "\n\n".join(PARAGRAPHS))
    with listening_to_progress(lambda s: seen.append((s.chunks_done, s.chunks_total, s.status))):
        ingest(alpha, source)
    assert seen[-1] == (12, 12, "ready")
    assert any(0 < done < 12 for done, _total, _status in seen)
    dones = [done for done, _total, _status in seen]
    assert dones == sorted(dones)


# --- A second embedding space ---------------------------------------------------------------


class HashingEmbedder(CustomLLM):
    """A deterministic 64-dimension bag-of-words embedder standing in for a hosted provider
    (which this machine cannot reach)."""

    def embedding(self, model: str, input: list, model_response: EmbeddingResponse, *args: Any, **kwargs: Any) -> Any:  # noqa: A002
        vectors = []
        for text in input:
            vector = np.zeros(64, dtype=np.float32)
            for word in text.lower().split():
                vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % 64] += 1.0
            vectors.append(vector / (np.linalg.norm(vector) or 1.0))
        model_response.data = [
            {"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)
        ]
        model_response.model = "testhash/words64"
        return model_response


@pytest.fixture
def second_space() -> Iterator[str]:
    entry = {"provider": "testhash", "custom_handler": HashingEmbedder()}
    litellm.custom_provider_map.append(entry)
    custom_llm_setup()
    yield "testhash/words64"
    litellm.custom_provider_map.remove(entry)


def test_bots_in_different_embedding_spaces_use_different_collections(
    alpha: TenantWorld, second_space: str, django_capture_on_commit_callbacks: Any
) -> None:
    minilm_source = ingest(alpha, text_source(alpha, "Refunds take five working days."))
    response = alpha.client("admin").post(
        "/v1/bot-profiles", {"name": "Hashing bot", "embedding_model": second_space}, format="json"
    )
    with tenant_scope(alpha.tenant):
        from bots.models import BotProfile

        hashing_bot = BotProfile.objects.get(pk=response.json()["id"])
    hash_source = ingest(alpha, text_source(alpha, "Warranty covers two years of repairs.", bot=hashing_bot))
    store = get_vector_store()
    assert collection_name(second_space) == "minirag_chunks__testhash_words64"
    assert point_ids(alpha, hash_source, second_space) and not point_ids(alpha, hash_source)
    assert point_ids(alpha, minilm_source) and not point_ids(alpha, minilm_source, second_space)
    hits = store.search(
        collection_name(second_space), np.ones(64), tenant_id=alpha.tenant.pk, bot_profile_id=hashing_bot.pk
    )
    assert [hit.payload["source_id"] for hit in hits] == [str(hash_source.pk)]

    # Moving the first bot to the other space re-ingests its sources there and empties the old one.
    with django_capture_on_commit_callbacks(execute=True):
        patched = alpha.client("admin").patch(
            f"/v1/bot-profiles/{alpha.bot.pk}", {"embedding_model": second_space}, format="json"
        )
    assert patched.status_code == 200
    assert point_ids(alpha, minilm_source, second_space) == chunk_ids(alpha, minilm_source)
    assert not point_ids(alpha, minilm_source)
    with tenant_scope(alpha.tenant):
        assert set(Chunk.objects.filter(source=minilm_source).values_list("embedding_model", flat=True)) == {
            second_space
        }


def test_deactivating_a_bot_removes_its_vectors(alpha: TenantWorld, django_capture_on_commit_callbacks: Any) -> None:
    source = alpha.text_source
    assert point_ids(alpha, source)
    with django_capture_on_commit_callbacks(execute=True):
        assert alpha.client("admin").delete(f"/v1/bot-profiles/{alpha.bot.pk}").status_code == 204
    assert not point_ids(alpha, source)
    with django_capture_on_commit_callbacks(execute=True):
        alpha.client("admin").patch(f"/v1/bot-profiles/{alpha.bot.pk}", {"is_active": True}, format="json")
    assert point_ids(alpha, source) == chunk_ids(alpha, source)  # re-indexed on reactivation
