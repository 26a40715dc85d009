"""`manage.py reindex`: the vector collections rebuilt from the database, for hybrid retrieval, with
no embedding call; collections made before hybrid retrieval keep answering (dense only) until then,
and `migrate` rebuilds them by itself."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command
from qdrant_client import models as qm
from qdrant_client.http.exceptions import ResponseHandlingException

from chat.tests.conftest import ask
from conftest import TenantWorld
from minirag.lexical import query_vector
from minirag.vectorstore import collection_name, get_vector_store
from sources import ingestion
from sources.ingestion import vector_from_bytes
from sources.models import Chunk
from tenants.management.commands.migrate import Command as MigrateCommand
from tenants.tenancy import tenant_scope, tenant_scope_disabled

pytestmark = pytest.mark.django_db
COLLECTION = collection_name("local/minilm")


def make_legacy(collection: str) -> int:
    """The collection as versions before hybrid retrieval left it: one unnamed dense vector per chunk."""
    store = get_vector_store()
    with tenant_scope_disabled("test: every tenant's chunks"):
        rows = list(Chunk.objects.select_related("source").all())
    store.drop_collection(collection)
    with store._access() as client:
        client.create_collection(collection, vectors_config=qm.VectorParams(size=384, distance=qm.Distance.COSINE))
        client.upsert(
            collection,
            points=[
                qm.PointStruct(
                    id=str(row.id),
                    vector=vector_from_bytes(row.embedding).tolist(),
                    payload={
                        "tenant_id": str(row.tenant_id),
                        "bot_profile_id": str(row.source.bot_profile_id),
                        "source_id": str(row.source_id),
                        "content": row.content,
                    },
                )
                for row in rows
            ],
        )
    return len(rows)


@pytest.fixture
def no_embedding(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("reindex must reuse the stored embeddings")

    monkeypatch.setattr(ingestion, "embed_texts", refuse)


def test_a_legacy_collection_answers_until_reindex_rebuilds_it_without_embedding(
    alpha: TenantWorld, beta: TenantWorld, no_embedding: None
) -> None:
    points = make_legacy(COLLECTION)
    store = get_vector_store()
    assert not store.is_hybrid(COLLECTION)
    assert ask(alpha, "How long do refunds at alpha take?").json()["sources"]  # dense only, still answering

    out = io.StringIO()
    call_command("reindex", "--if-needed", stdout=out)
    assert out.getvalue().strip() == f"{COLLECTION}: {points} points, dense and lexical"
    assert store.is_hybrid(COLLECTION)
    assert store.count(COLLECTION, tenant_id=alpha.tenant.pk) + store.count(COLLECTION, tenant_id=beta.tenant.pk) == (
        points
    )
    with tenant_scope(alpha.tenant):
        chunk = Chunk.objects.filter(source=alpha.text_source).first()
    hits = store.search(
        COLLECTION,
        vector_from_bytes(chunk.embedding),
        tenant_id=alpha.tenant.pk,
        bot_profile_id=alpha.bot.pk,
        lexical_query=query_vector("refunds"),
    )
    assert hits[0].id == str(chunk.id) and hits[0].fused is not None  # fused: the lexical half is there
    assert hits[0].payload["content"] == chunk.content and hits[0].payload["source_id"] == str(chunk.source_id)

    out = io.StringIO()
    call_command("reindex", "--if-needed", stdout=out)
    assert out.getvalue().strip() == "Nothing to rebuild."


def test_reindex_rebuilds_everything_and_drops_collections_no_bot_uses(alpha: TenantWorld, no_embedding: None) -> None:
    store = get_vector_store()
    orphan = collection_name("some/model-nobody-uses")
    store.ensure_collection(orphan, 4)
    before = store.count(COLLECTION, tenant_id=alpha.tenant.pk)
    call_command("reindex", stdout=io.StringIO())
    assert orphan not in store.collections()
    assert store.count(COLLECTION, tenant_id=alpha.tenant.pk) == before


def test_migrate_upgrades_legacy_collections_and_survives_a_vector_store_outage(
    alpha: TenantWorld, no_embedding: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_legacy(COLLECTION)
    command = MigrateCommand(stdout=io.StringIO(), stderr=io.StringIO())
    command._upgrade_vector_collections(verbosity=1)
    assert get_vector_store().is_hybrid(COLLECTION)
    assert "Rebuilt minirag_chunks for hybrid retrieval" in command.stdout._out.getvalue()

    def down(**kwargs: Any) -> Any:  # what qdrant-client raises when the server does not answer
        raise ResponseHandlingException(ConnectionRefusedError("connection refused"))

    monkeypatch.setattr(ingestion, "rebuild_index", down)
    command._upgrade_vector_collections(verbosity=1)  # no exception: the database is migrated
    assert "Run `python manage.py reindex --if-needed` once it is up." in command.stderr._out.getvalue()


def test_the_stored_embedding_is_what_reindex_writes(alpha: TenantWorld, no_embedding: None) -> None:
    with tenant_scope(alpha.tenant):
        chunk = Chunk.objects.filter(source=alpha.text_source).first()
    call_command("reindex", stdout=io.StringIO())
    store = get_vector_store()
    with store._access() as client:
        (record,) = client.retrieve(COLLECTION, ids=[str(chunk.id)], with_vectors=True)
    assert np.allclose(record.vector["dense"], vector_from_bytes(chunk.embedding), atol=1e-6)
    assert record.vector["lexical"].indices  # its terms
