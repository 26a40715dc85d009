"""Every vector store operation is bounded by the tenant it is given: two tenants' points share a
collection, and no search, count, lookup, payload update or delete of one reaches the other's."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from minirag.vectorstore import VectorPoint, collection_name, get_vector_store

COLLECTION = "minirag_chunks"
TENANT_A, TENANT_B = uuid.uuid4(), uuid.uuid4()
BOT_A, BOT_B = uuid.uuid4(), uuid.uuid4()
SOURCE_A, SOURCE_B = uuid.uuid4(), uuid.uuid4()


@pytest.fixture
def store():
    store = get_vector_store()
    store.ensure_collection(COLLECTION, 4)
    vector = np.array([1.0, 0.0, 0.0, 0.0])
    store.upsert(
        COLLECTION,
        [
            VectorPoint(
                uuid.uuid4(),
                vector,
                {"tenant_id": str(tenant), "bot_profile_id": str(bot), "source_id": str(source), "content": label},
            )
            for tenant, bot, source, label in (
                (TENANT_A, BOT_A, SOURCE_A, "a1"),
                (TENANT_A, BOT_A, SOURCE_A, "a2"),
                (TENANT_B, BOT_B, SOURCE_B, "b1"),
            )
        ],
    )
    return store


def test_search_is_confined_to_the_tenant_and_bot(store) -> None:
    query = np.array([1.0, 0.0, 0.0, 0.0])
    hits = store.search(COLLECTION, query, tenant_id=TENANT_A, bot_profile_id=BOT_A, limit=10)
    assert sorted(hit.payload["content"] for hit in hits) == ["a1", "a2"]
    # Another tenant's bot id under this tenant finds nothing, and the other way round.
    assert store.search(COLLECTION, query, tenant_id=TENANT_A, bot_profile_id=BOT_B) == []
    assert store.search(COLLECTION, query, tenant_id=TENANT_B, bot_profile_id=BOT_A) == []
    assert store.search(COLLECTION, query, tenant_id=TENANT_A, bot_profile_id=BOT_A, source_ids=[SOURCE_B]) == []


def test_counts_lookups_and_scans_are_confined(store) -> None:
    assert store.count(COLLECTION, tenant_id=TENANT_A) == 2
    assert store.count(COLLECTION, tenant_id=TENANT_A, source_ids=[SOURCE_B]) == 0
    b_ids = store.point_ids(COLLECTION, tenant_id=TENANT_B, source_ids=[SOURCE_B])
    assert len(b_ids) == 1
    assert store.point_ids(COLLECTION, tenant_id=TENANT_A, source_ids=[SOURCE_B]) == set()
    assert store.present_ids(COLLECTION, sorted(b_ids), tenant_id=TENANT_A) == set()
    assert store.present_ids(COLLECTION, sorted(b_ids), tenant_id=TENANT_B) == b_ids


def test_writes_and_deletes_are_confined(store) -> None:
    b_ids = sorted(store.point_ids(COLLECTION, tenant_id=TENANT_B, source_ids=[SOURCE_B]))
    store.set_payload(COLLECTION, {"content": "pwned"}, tenant_id=TENANT_A, source_ids=[SOURCE_B])
    store.delete_points(COLLECTION, b_ids, tenant_id=TENANT_A)
    store.delete(tenant_id=TENANT_A, source_ids=[SOURCE_B])
    store.delete(tenant_id=TENANT_A, bot_profile_id=BOT_B)
    hits = store.search(COLLECTION, np.ones(4), tenant_id=TENANT_B, bot_profile_id=BOT_B)
    assert [hit.payload["content"] for hit in hits] == ["b1"]
    store.delete(tenant_id=TENANT_A, source_ids=[SOURCE_A])
    assert store.count(COLLECTION, tenant_id=TENANT_A) == 0 and store.count(COLLECTION, tenant_id=TENANT_B) == 1


def test_deleting_a_whole_tenant_index_must_be_asked_for_explicitly(store) -> None:
    with pytest.raises(ValueError):
        store.delete(tenant_id=TENANT_A)


def test_collection_names_per_embedding_space() -> None:
    assert collection_name("local/minilm") == "minirag_chunks"
    assert collection_name("text-embedding-3-small") == "minirag_chunks__text_embedding_3_small"
    assert collection_name("gemini/text-embedding-004") == "minirag_chunks__gemini_text_embedding_004"
