"""Every vector store operation is bounded by the tenant it is given: two tenants' points share a
collection, and no search, count, lookup, payload update or delete of one reaches the other's."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from qdrant_client import models as qm

from minirag.lexical import TermStatistics, document_vector, query_vector
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


# --- Hybrid retrieval -------------------------------------------------------------------------------


def lexical_point(tenant: uuid.UUID, bot: uuid.UUID, text: str, vector: np.ndarray) -> VectorPoint:
    payload = {"tenant_id": str(tenant), "bot_profile_id": str(bot), "source_id": str(uuid.uuid4()), "content": text}
    return VectorPoint(uuid.uuid4(), vector / np.linalg.norm(vector), payload, lexical=document_vector(text))


HYBRID = "minirag_chunks__hybrid_test"


@pytest.fixture
def hybrid_store():
    store = get_vector_store()
    store.drop_collection(HYBRID)
    store.ensure_collection(HYBRID, 4)
    yield store
    store.drop_collection(HYBRID)


def test_a_rare_word_of_the_question_decides_between_chunks_that_mean_the_same(hybrid_store) -> None:
    """Dense vectors alone cannot tell these chunks apart; the lexical half can. `score` stays the
    cosine (its meaning in the API), whatever ranked the hit."""
    hours, lift, loans = np.array([1.0, 0.1, 0, 0]), np.array([1.0, 0.1, 0.05, 0]), np.array([1.0, 0.15, 0, 0])
    hybrid_store.upsert(
        HYBRID,
        [
            lexical_point(TENANT_A, BOT_A, "Opening hours of the library and the cafe.", hours),
            lexical_point(TENANT_A, BOT_A, "The lift to the first floor is out of service.", lift),
            lexical_point(TENANT_A, BOT_A, "Members may borrow twelve items.", loans),
        ],
    )
    question = hours / np.linalg.norm(hours)  # what the embedder returns: unit length
    hits = hybrid_store.search(
        HYBRID,
        question,
        tenant_id=TENANT_A,
        bot_profile_id=BOT_A,
        lexical_query=query_vector("Is the lift working?"),
        limit=3,
    )
    assert hits[0].payload["content"].startswith("The lift")
    assert all(hit.fused is not None for hit in hits)
    assert hits[0].score == pytest.approx(float(np.dot(question, lift / np.linalg.norm(lift))), abs=1e-5)
    # Without words worth searching, the search is dense only (and says so: no fused score).
    dense_only = hybrid_store.search(
        HYBRID, question, tenant_id=TENANT_A, bot_profile_id=BOT_A, lexical_query=query_vector("is the")
    )
    assert dense_only[0].payload["content"].startswith("Opening hours") and all(h.fused is None for h in dense_only)


def test_word_weights_come_from_the_searching_bots_own_chunks(hybrid_store) -> None:
    """The question's words weigh their IDF over the bot's own chunks (minirag.lexical): a word in
    every chunk of the bot counts for little, a rare one for much; another tenant's documents,
    however many, neither change a bot's results nor their order (nor, through them, tell it anything)."""
    texts = ["Our warehouse is in Tromsø, Norway.", "Shipping to Norway takes three days."]
    vector = np.array([0.0, 1.0, 0.0, 0.0])
    hybrid_store.upsert(
        HYBRID,
        [
            lexical_point(TENANT_A, BOT_A, texts[0], vector),
            lexical_point(TENANT_A, BOT_A, texts[1], np.array([0.0, 1.0, 0.3, 0.0])),
        ],
    )
    statistics = TermStatistics.of(texts)
    question = query_vector("Norway warehouse in Tromso?", statistics)
    weights = dict(zip(question.indices, question.values, strict=True))
    assert weights[query_vector("warehouse").indices[0]] > weights[query_vector("Norway").indices[0]]

    def search() -> list[tuple[str, float | None]]:
        hits = hybrid_store.search(HYBRID, vector, tenant_id=TENANT_A, bot_profile_id=BOT_A, lexical_query=question)
        return [(hit.payload["content"], hit.fused) for hit in hits]

    before = search()
    assert before[0][0].startswith("Our warehouse")  # "Tromso" finds "Tromsø"
    hybrid_store.upsert(
        HYBRID,
        [lexical_point(TENANT_B, BOT_B, f"Warehouse {n} in Tromsø stocks shipping boxes.", vector) for n in range(30)],
    )
    assert search() == before
    # A word in none of the bot's chunks can match nothing there: it is not searched for.
    assert len(query_vector("Where is the PgBouncer warehouse?", statistics).indices) == 1


def test_a_collection_made_before_hybrid_retrieval_is_searched_dense_only() -> None:
    store = get_vector_store()
    legacy = "minirag_chunks__legacy_test"
    store.drop_collection(legacy)
    with store._access() as client:  # as the earlier versions created it: one unnamed vector
        client.create_collection(legacy, vectors_config=qm.VectorParams(size=4, distance=qm.Distance.COSINE))
    try:
        store.upsert(legacy, [lexical_point(TENANT_A, BOT_A, "The lift is broken.", np.array([1.0, 0, 0, 0]))])
        assert not store.is_hybrid(legacy)
        hits = store.search(
            legacy,
            np.array([1.0, 0, 0, 0]),
            tenant_id=TENANT_A,
            bot_profile_id=BOT_A,
            lexical_query=query_vector("lift"),
        )
        assert [hit.payload["content"] for hit in hits] == ["The lift is broken."] and hits[0].fused is None
    finally:
        store.drop_collection(legacy)
