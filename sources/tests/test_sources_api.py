"""The Sources routes of api-contract.md: shapes, filters, parents, uploads, ingestion triggers,
and their answers to bad input."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from PIL import Image, ImageDraw, ImageFont

from conftest import TenantWorld, build_world
from minirag.celery import app as celery_app
from minirag.vectorstore import get_vector_store
from sources import lifecycle
from sources.models import Source, SourceFile, SourceStatus
from tenants.tenancy import tenant_scope

pytestmark = pytest.mark.django_db

CONTRACT_KEYS = {
    "id",
    "tenant_id",
    "bot_profile_id",
    "parent_id",
    "name",
    "description",
    "source_type",
    "status",
    "config",
    "document_count",
    "chunk_count",
    "error_message",
    "is_active",
    "refresh_schedule",
    "last_refreshed_at",
    "children_count",
    "created_at",
    "updated_at",
}


def create(world: TenantWorld, who: str = "admin", **body: object):
    body.setdefault("bot_profile_id", str(world.bot.pk))
    body.setdefault("name", "Doc")
    return world.client(who).post("/v1/sources", body, format="json")


def indexed_points(world: TenantWorld, source_id: object) -> int:
    return get_vector_store().count("minirag_chunks", tenant_id=world.tenant.pk, source_ids=[source_id])


# --- Create -----------------------------------------------------------------------------------


def test_create_a_text_source_is_pending_until_ingested(
    alpha: TenantWorld, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = create(alpha, source_type="text", content="Our returns policy: 30 days.", description="Policy")
    assert response.status_code == 201
    source = response.json()
    assert CONTRACT_KEYS <= set(source)
    assert source["status"] == "pending"
    assert not callbacks  # unlike an upload, creating a text source queues nothing (as in v1)
    assert alpha.client().get(f"/v1/sources/{source['id']}").json()["status"] == "pending"
    assert (source["source_type"], source["description"], source["refresh_schedule"]) == ("text", "Policy", "none")
    assert (source["document_count"], source["chunk_count"], source["children_count"]) == (0, 0, 0)
    assert source["authority"] == "informational"
    assert source["bot_profile_id"] == str(alpha.bot.pk) and source["parent_id"] is None


def test_ingest_is_202_then_ready_with_counts_and_vectors(alpha: TenantWorld) -> None:
    source_id = create(alpha, source_type="text", content="Shipping takes two days. " * 60).json()["id"]
    response = alpha.client("admin").post(f"/v1/sources/{source_id}/ingest")
    assert response.status_code == 202
    assert response.json()["status"] == "accepted" and response.json()["message"]
    source = alpha.client("admin").get(f"/v1/sources/{source_id}").json()
    assert source["status"] == "ready"
    assert source["document_count"] == 1 and source["chunk_count"] >= 3
    assert source["chunks_done"] == source["chunks_total"] == source["chunk_count"]
    assert source["last_refreshed_at"] is not None
    assert indexed_points(alpha, source_id) == source["chunk_count"]


def test_ingest_while_queued_or_processing_is_409(alpha: TenantWorld) -> None:
    source = alpha.text_source
    for status in (SourceStatus.QUEUED, SourceStatus.PROCESSING):
        with tenant_scope(alpha.tenant):
            Source.objects.filter(pk=source.pk).update(status=status)
        response = alpha.client("admin").post(f"/v1/sources/{source.pk}/ingest")
        assert response.status_code == 409
        assert "already" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"source_type": "text"}, "content"),
        ({"source_type": "text", "content": "   "}, "content"),
        ({"source_type": "url"}, "config.url"),
        ({"source_type": "url", "config": {"url": "ftp://example.com/x"}}, "config.url"),
        ({"source_type": "url", "config": {"url": "https://example.com", "depth": 3}}, "config"),
        ({"source_type": "url", "config": "https://example.com"}, "config"),
        ({"source_type": "sitemap", "config": {"url": "https://example.com/sitemap.xml", "max_pages": 0}}, "max_pages"),
        ({"source_type": "crawl", "config": {"url": "https://example.com", "max_depth": 9}}, "max_depth"),
        ({"source_type": "nyxcore", "config": {"base_url": "https://search.example.com"}}, "api_token"),
        ({"source_type": "upload"}, "source_type"),
        ({"source_type": "video"}, "source_type"),
        ({"source_type": "text", "content": "x", "refresh_schedule": "monthly"}, "refresh_schedule"),
        ({"source_type": "text", "content": "x", "authority": "law"}, "authority"),
        ({"source_type": "text", "content": "x", "name": ""}, "name"),
        ({"source_type": "text", "content": "x", "bot_profile_id": "nope"}, "bot_profile_id"),
        ({"source_type": "text", "content": "x", "bot_profile_id": str(uuid.uuid4())}, "bot_profile_id"),
    ],
)
def test_create_validation_is_422(alpha: TenantWorld, body: dict, field: str) -> None:
    response = create(alpha, **body)
    assert response.status_code == 422, response.content
    assert field in response.json()["detail"]


def test_another_tenants_bot_is_422_and_parent_rules(alpha: TenantWorld, beta: TenantWorld) -> None:
    foreign_bot = create(alpha, source_type="text", content="x", bot_profile_id=str(beta.bot.pk))
    assert foreign_bot.status_code == 422
    assert foreign_bot.json()["detail"] == "bot_profile_id: Bot profile not found."

    unknown_parent = create(alpha, source_type="text", content="x", parent_id=str(uuid.uuid4()))
    assert unknown_parent.status_code == 404
    foreign_parent = create(alpha, source_type="text", content="x", parent_id=str(beta.text_source.pk))
    assert foreign_parent.status_code == 404

    other_bot = alpha.client("admin").post("/v1/bot-profiles", {"name": "Other"}, format="json").json()
    parent = create(alpha, source_type="text", content="parent", bot_profile_id=other_bot["id"]).json()
    assert create(alpha, source_type="text", content="x", parent_id=parent["id"]).status_code == 422

    child = create(alpha, source_type="text", content="child", parent_id=str(alpha.text_source.pk)).json()
    grandchild = create(alpha, source_type="text", content="x", parent_id=child["id"])
    assert grandchild.status_code == 422
    assert "one level" in grandchild.json()["detail"]


def test_url_sources_refuse_private_destinations_when_the_guard_is_on(alpha: TenantWorld) -> None:
    with override_settings(ALLOW_PRIVATE_NETWORKS=False):
        for url in ("http://127.0.0.1/admin", "http://169.254.169.254/latest/meta-data", "http://10.0.0.8/"):
            response = create(alpha, source_type="url", config={"url": url})
            assert response.status_code == 422, url
            assert "config.url" in response.json()["detail"]


def test_nyxcore_config_hides_the_token(alpha: TenantWorld) -> None:
    body = {"base_url": "https://search.example.com/", "api_token": "nyx-secret-123", "limit": 5}
    response = create(alpha, source_type="nyxcore", config=body)
    assert response.status_code == 201
    config = response.json()["config"]
    assert config == {"base_url": "https://search.example.com", "limit": 5, "has_api_token": True}
    assert "nyx-secret-123" not in alpha.client().get("/v1/sources").content.decode()
    # Changing other settings keeps the token; it is never echoed.
    patched = alpha.client("admin").patch(
        f"/v1/sources/{response.json()['id']}",
        {"config": {"base_url": "https://s2.example.com", "limit": 7}},
        format="json",
    )
    assert patched.json()["config"] == {"base_url": "https://s2.example.com", "limit": 7, "has_api_token": True}


# --- Batch, list, children --------------------------------------------------------------------


def test_batch_creates_a_group_with_children(alpha: TenantWorld) -> None:
    body = {
        "bot_profile_id": str(alpha.bot.pk),
        "name": "FAQ pack",
        "children": [
            {"name": "Q1", "source_type": "text", "content": "Opening hours are nine to five."},
            {"name": "Q2", "source_type": "text", "content": "Parking is free for customers."},
        ],
    }
    response = alpha.client("admin").post("/v1/sources/batch", body, format="json")
    assert response.status_code == 201
    parent, children = response.json()["parent"], response.json()["children"]
    assert parent["source_type"] == "url" and parent["is_group"] is True
    assert parent["children_count"] == 2
    assert [child["parent_id"] for child in children] == [parent["id"]] * 2

    ingest = alpha.client("admin").post(f"/v1/sources/{parent['id']}/ingest-children")
    assert ingest.status_code == 202
    assert ingest.json()["enqueued"] == 2
    listed = {s["id"]: s for s in alpha.client().get("/v1/sources").json()}
    assert children[0]["id"] not in listed  # top level only by default
    assert listed[parent["id"]]["status"] == "ready"
    assert listed[parent["id"]]["chunk_count"] == 2 and listed[parent["id"]]["document_count"] == 2
    kids = alpha.client().get(f"/v1/sources/{parent['id']}/children")
    assert kids.status_code == 200 and kids["X-Total-Count"] == "2"
    assert {s["id"] for s in alpha.client().get(f"/v1/sources?parent_id={parent['id']}").json()} == {
        child["id"] for child in children
    }
    assert len(alpha.client().get("/v1/sources?include_children=true").json()) == len(listed) + 2


def test_a_page_of_sources_reads_every_parents_totals_in_one_statement(alpha: TenantWorld) -> None:
    """Each parent shows its own active children's totals and status; the page, however many parents
    it holds, is two statements: its sources, and their children's totals grouped (sources/selectors.py)."""
    client = alpha.client("admin")
    parents = []
    for name in ("Pack A", "Pack B", "Pack C"):
        children = [{"name": f"{name} {n}", "source_type": "text", "content": f"Fact {n}."} for n in range(3)]
        body = {"bot_profile_id": str(alpha.bot.pk), "name": name, "children": children}
        parents.append(client.post("/v1/sources/batch", body, format="json").json())
    pack_a, pack_b = ({child["id"] for child in parent["children"]} for parent in parents[:2])
    with tenant_scope(alpha.tenant):
        # A: one page deleted (it no longer counts), the others ingested; B: every page failed but
        # one, still in flight; C: untouched (pending).
        Source.objects.filter(pk__in=pack_a).update(status=SourceStatus.READY, chunk_count=2, document_count=1)
        Source.objects.filter(pk=min(pack_a)).update(is_active=False)
        Source.objects.filter(pk__in=pack_b).update(status=SourceStatus.ERROR)
        Source.objects.filter(pk=min(pack_b)).update(status=SourceStatus.PROCESSING)
    with CaptureQueriesContext(connection) as captured:
        response = alpha.client().get("/v1/sources")
    assert response.status_code == 200
    listed = {source["id"]: source for source in response.json()}
    a, b, c = (listed[parent["parent"]["id"]] for parent in parents)
    assert (a["children_count"], a["chunk_count"], a["document_count"], a["status"]) == (2, 4, 2, "ready")
    assert (b["children_count"], b["status"]) == (3, "processing")
    assert (c["children_count"], c["chunk_count"], c["status"]) == (3, 0, "pending")
    leaves = [source for source in listed.values() if not source["is_group"]]
    assert leaves and all(source["children_count"] == 0 for source in leaves)
    reads = [query["sql"] for query in captured.captured_queries if 'FROM "sources_source"' in query["sql"]]
    assert len(reads) == 2, reads
    with tenant_scope(alpha.tenant):
        Source.objects.filter(pk=min(pack_b)).update(status=SourceStatus.ERROR)
    assert alpha.client().get(f"/v1/sources/{b['id']}").json()["status"] == "error"  # every page failed


def test_batch_validation(alpha: TenantWorld) -> None:
    client = alpha.client("admin")
    empty = client.post(
        "/v1/sources/batch", {"bot_profile_id": str(alpha.bot.pk), "name": "x", "children": []}, format="json"
    )
    assert empty.status_code == 422 and "children" in empty.json()["detail"]
    bad_child = client.post(
        "/v1/sources/batch",
        {
            "bot_profile_id": str(alpha.bot.pk),
            "name": "x",
            "children": [{"name": "ok", "source_type": "text", "content": "x"}, {"name": "bad", "source_type": "url"}],
        },
        format="json",
    )
    assert bad_child.status_code == 422
    assert bad_child.json()["detail"].startswith("children.1")
    with tenant_scope(alpha.tenant):
        assert not Source.objects.filter(name__in=["x", "ok", "bad"]).exists()  # all or nothing


def test_list_filters(alpha: TenantWorld) -> None:
    other_bot = alpha.client("admin").post("/v1/bot-profiles", {"name": "Other"}, format="json").json()["id"]
    create(alpha, source_type="text", content="x", bot_profile_id=other_bot)
    everything = alpha.client().get("/v1/sources").json()
    only_other = alpha.client().get(f"/v1/sources?bot_profile_id={other_bot}").json()
    assert len(everything) == 4 and [s["bot_profile_id"] for s in only_other] == [other_bot]  # with the fixture's 3
    assert alpha.client().get("/v1/sources?bot_profile_id=nope").status_code == 422
    assert everything == sorted(everything, key=lambda s: s["created_at"], reverse=True)


# --- Update and delete ------------------------------------------------------------------------


def test_patch_fields(alpha: TenantWorld, django_capture_on_commit_callbacks) -> None:
    source_id = alpha.text_source.pk
    with django_capture_on_commit_callbacks(execute=True):
        response = alpha.client("admin").patch(
            f"/v1/sources/{source_id}",
            {"name": "Handbook v2", "description": "d", "refresh_schedule": "daily", "authority": "mandatory"},
            format="json",
        )
    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["refresh_schedule"], body["authority"]) == ("Handbook v2", "daily", "mandatory")
    assert body["next_refresh_at"] is not None
    hits = get_vector_store().search(
        "minirag_chunks", [0.1] * 384, tenant_id=alpha.tenant.pk, bot_profile_id=alpha.bot.pk, source_ids=[source_id]
    )
    assert hits and all(
        h.payload["source_name"] == "Handbook v2" and h.payload["authority"] == "mandatory" for h in hits
    )
    cleared = alpha.client("admin").patch(f"/v1/sources/{source_id}", {"refresh_schedule": None}, format="json")
    assert cleared.json()["refresh_schedule"] == "none" and cleared.json()["next_refresh_at"] is None
    wrong = alpha.client("admin").patch(f"/v1/sources/{source_id}", {"content": ""}, format="json")
    assert wrong.status_code == 422


def test_delete_deactivates_children_and_removes_vectors(
    alpha: TenantWorld, django_capture_on_commit_callbacks
) -> None:
    parent = alpha.text_source
    child = create(alpha, source_type="text", content="Child text about invoices.", parent_id=str(parent.pk)).json()
    alpha.client("admin").post(f"/v1/sources/{child['id']}/ingest")
    assert indexed_points(alpha, parent.pk) > 0 and indexed_points(alpha, child["id"]) > 0
    with django_capture_on_commit_callbacks(execute=True):
        assert alpha.client("admin").delete(f"/v1/sources/{parent.pk}").status_code == 204
    assert indexed_points(alpha, parent.pk) == 0 and indexed_points(alpha, child["id"]) == 0
    assert str(parent.pk) not in {s["id"] for s in alpha.client().get("/v1/sources").json()}
    gone = alpha.client().get(f"/v1/sources/{child['id']}").json()
    assert gone["is_active"] is False
    assert alpha.client("admin").post(f"/v1/sources/{parent.pk}/ingest").status_code == 409
    # Reactivate and re-ingest: searchable again.
    assert (
        alpha.client("admin").patch(f"/v1/sources/{parent.pk}", {"is_active": True}, format="json").json()["status"]
        == "pending"
    )
    alpha.client("admin").post(f"/v1/sources/{parent.pk}/ingest")
    assert indexed_points(alpha, parent.pk) > 0


def test_members_read_sources_but_cannot_change_or_ingest(alpha: TenantWorld) -> None:
    member = alpha.client("member")
    assert member.get("/v1/sources").status_code == 200
    assert member.get(f"/v1/sources/{alpha.text_source.pk}").status_code == 200
    assert create(alpha, "member", source_type="text", content="x").status_code == 403
    assert member.post(f"/v1/sources/{alpha.text_source.pk}/ingest").status_code == 403
    assert member.delete(f"/v1/sources/{alpha.text_source.pk}").status_code == 403


# --- Upload -----------------------------------------------------------------------------------


def upload(world: TenantWorld, filename: str, data: bytes, **fields: str):
    body = {"file": SimpleUploadedFile(filename, data), "bot_profile_id": str(world.bot.pk), **fields}
    return world.client("admin").post("/v1/sources/upload", body, format="multipart")


def test_upload_stores_the_file_and_ingests_it(alpha: TenantWorld, django_capture_on_commit_callbacks: Any) -> None:
    """As in MiniRAG v1, an upload is ingested without a call to /ingest: queued once the upload
    commits (tasks run inline in tests, when the test's transaction lets on-commit work run)."""
    data = b"# FAQ\n\nWe deliver on Saturdays.\n\nReturns are free."
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(alpha, "faq.md", data)
    assert response.status_code == 201
    source = response.json()
    assert (source["source_type"], source["name"]) == ("upload", "faq.md")
    assert source["config"]["original_filename"] == "faq.md" and source["config"]["file_size"] == len(data)
    ready = alpha.client().get(f"/v1/sources/{source['id']}").json()
    assert ready["status"] == "ready" and ready["chunk_count"] >= 1
    assert indexed_points(alpha, source["id"]) == ready["chunk_count"]
    # Ingesting again by hand still works (a re-ingest: nothing changed, nothing embedded).
    assert alpha.client("admin").post(f"/v1/sources/{source['id']}/ingest").status_code == 202
    assert alpha.client().get(f"/v1/sources/{source['id']}").json()["status"] == "ready"
    named = upload(alpha, "x.txt", b"plain text", name="Custom name", description="d").json()
    assert named["name"] == "Custom name"


@pytest.mark.django_db(transaction=True)
def test_the_upload_answer_shows_the_source_as_it_is_by_then() -> None:
    """Outside a test transaction the ingestion is queued when the upload commits, before the 201
    is written: with inline tasks the answer already says `ready` (with a worker: `queued`)."""
    world = build_world("alpha")
    response = upload(world, "hours.txt", b"The reading room opens at seven forty on weekdays.")
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "ready" and body["chunk_count"] == 1 and body["document_count"] == 1


@pytest.fixture
def broker_down(settings: Any) -> Iterator[None]:
    """Tasks go to a Celery broker that refuses connections (nothing listens on port 1)."""
    settings.TASKS_IN_PROCESS = False
    previous = celery_app.conf.broker_url
    celery_app.conf.broker_url = "redis://127.0.0.1:1/0"
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    yield
    celery_app.conf.broker_url = previous
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def test_an_upload_with_the_queue_down_is_kept_and_sent_by_the_reaper(
    alpha: TenantWorld, django_capture_on_commit_callbacks: Any, broker_down: None, settings: Any
) -> None:
    # The file is stored and accepted (201, never a 503 for a file we already have); its
    # ingestion waits `queued` like any message that never reached a worker.
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(alpha, "faq.md", b"# FAQ\n\nParking is free after six.")
    assert response.status_code == 201
    source_id = response.json()["id"]
    waiting = alpha.client().get(f"/v1/sources/{source_id}").json()
    assert waiting["status"] == "queued"
    settings.TASKS_IN_PROCESS = True  # the queue is back
    with tenant_scope(alpha.tenant):
        Source.objects.filter(pk=source_id).update(queued_at=timezone.now() - timedelta(hours=1))
    assert lifecycle.reap_stuck_sources() == 1
    assert alpha.client().get(f"/v1/sources/{source_id}").json()["status"] == "ready"


def scan_png(text: str) -> bytes:
    image = Image.new("L", (1400, 150), "white")
    ImageDraw.Draw(image).text((40, 40), text, font=ImageFont.load_default(size=40), fill="black")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_an_uploaded_image_is_read_with_ocr_and_answers_questions(
    alpha: TenantWorld, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(alpha, "notice.png", scan_png("The reading room opens at 07:40"))
    assert response.status_code == 201
    source = alpha.client().get(f"/v1/sources/{response.json()['id']}").json()
    assert source["status"] == "ready", source["error_message"]
    assert source["chunk_count"] > 0 and source["config"]["file_type"] == "png"
    assert (source["ocr_pages_done"], source["ocr_pages_total"]) == (1, 1)
    answer = alpha.client().post(
        "/v1/chat", {"bot_profile_id": str(alpha.bot.pk), "message": "When does the reading room open?"}, format="json"
    )
    assert answer.status_code == 200
    assert source["id"] in {hit["source_id"] for hit in answer.json()["sources"]}
    assert "07:40" in answer.json()["message"]["content"]


def test_an_uploaded_image_without_text_ends_in_error(
    alpha: TenantWorld, django_capture_on_commit_callbacks: Any
) -> None:
    blank = io.BytesIO()
    Image.new("L", (1200, 900), "white").save(blank, "PNG")
    with django_capture_on_commit_callbacks(execute=True):
        source_id = upload(alpha, "blank.png", blank.getvalue()).json()["id"]
    failed = alpha.client().get(f"/v1/sources/{source_id}").json()
    assert failed["status"] == "error" and failed["chunk_count"] == 0
    assert "no text found — is it a scan?" in failed["error_message"]


@pytest.mark.parametrize(
    ("filename", "data"),
    [("virus.exe", b"MZ\x90\x00"), ("fake.pdf", b"just text"), ("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00")],
)
def test_upload_of_unsupported_types_is_422(alpha: TenantWorld, filename: str, data: bytes) -> None:
    response = upload(alpha, filename, data)
    assert response.status_code == 422
    assert "Unsupported file type" in response.json()["detail"] or "match" in response.json()["detail"]
    with tenant_scope(alpha.tenant):
        assert SourceFile.objects.count() == 1  # the fixture's only


def test_upload_over_the_cap_is_413_and_stores_nothing(alpha: TenantWorld) -> None:
    with override_settings(UPLOAD_MAX_BYTES=1000):
        response = upload(alpha, "big.txt", b"a" * 5000)
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    with tenant_scope(alpha.tenant):
        assert SourceFile.objects.count() == 1


def test_upload_requires_a_file_and_a_bot(alpha: TenantWorld) -> None:
    response = alpha.client("admin").post(
        "/v1/sources/upload", {"bot_profile_id": str(alpha.bot.pk)}, format="multipart"
    )
    assert response.status_code == 422 and "file" in response.json()["detail"]
    response = alpha.client("admin").post(
        "/v1/sources/upload", {"file": SimpleUploadedFile("a.txt", b"x")}, format="multipart"
    )
    assert response.status_code == 422 and "bot_profile_id" in response.json()["detail"]


def test_a_broken_file_ends_in_error_status_not_a_500(
    alpha: TenantWorld, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(alpha, "broken.pdf", b"%PDF-1.4\nthis is not really a pdf")
    assert response.status_code == 201
    failed = alpha.client().get(f"/v1/sources/{response.json()['id']}").json()
    assert failed["status"] == "error"
    assert "damaged" in failed["error_message"]
    # Ingesting it again by hand is accepted, and fails the same readable way.
    assert alpha.client("admin").post(f"/v1/sources/{failed['id']}/ingest").status_code == 202
    assert alpha.client().get(f"/v1/sources/{failed['id']}").json()["error_message"] == failed["error_message"]
