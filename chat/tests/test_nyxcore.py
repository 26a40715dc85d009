"""External `nyxcore` search sources: the connection check at ingestion, and results merged into a
turn by authority — with a failing service skipped, never breaking the turn."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from chat.tests.conftest import ModelSpy, add_knowledge, ask, use_model
from conftest import LocalSite, TenantWorld
from minirag.prompt_format import parse_context

pytestmark = pytest.mark.django_db

DOCUMENTS = {
    "ok": True,
    "documents": [
        {
            "id": "d1",
            "filename": "policy.pdf",
            "mimeType": "application/pdf",
            "fileSize": 1000,
            "status": "ready",
            "chunkCount": 12,
            "authority": "mandatory",
        },
        {
            "id": "d2",
            "filename": "faq.md",
            "mimeType": "text/markdown",
            "fileSize": 300,
            "status": "ready",
            "chunkCount": 3,
            "authority": "informational",
        },
        {
            "id": "d3",
            "filename": "draft.md",
            "mimeType": "text/markdown",
            "fileSize": 10,
            "status": "processing",
            "chunkCount": 0,
            "authority": "guideline",
        },
    ],
}
RESULTS = {
    "ok": True,
    "results": [
        {
            "content": "Refunds are issued within 10 days, always.",
            "heading": "Refund law",
            "filename": "policy.pdf",
            "authority": "mandatory",
            "score": 0.41,
            "chunkId": "n1",
            "documentId": "d1",
        },
        {
            "content": "Most refunds arrive sooner.",
            "heading": "FAQ",
            "filename": "faq.md",
            "authority": "informational",
            "score": 0.93,
            "chunkId": "n2",
            "documentId": "d2",
        },
    ],
}


def nyxcore_source(world: TenantWorld, site: LocalSite, **config: object) -> dict:
    body = {"base_url": site.base, "api_token": "nyx-token-1", "limit": 5, **config}
    response = world.client("admin").post(
        "/v1/sources",
        {"bot_profile_id": str(world.bot.pk), "name": "Handbook service", "source_type": "nyxcore", "config": body},
        format="json",
    )
    assert response.status_code == 201, response.content
    source_id = response.json()["id"]
    world.client("admin").post(f"/v1/sources/{source_id}/ingest")
    return world.client().get(f"/v1/sources/{source_id}").json()


def test_ingesting_checks_the_connection_and_counts_ready_documents(alpha: TenantWorld, site: LocalSite) -> None:
    site.add("/api/v1/rag/documents", json.dumps(DOCUMENTS), "application/json")
    source = nyxcore_source(alpha, site)
    assert (source["status"], source["document_count"], source["chunk_count"]) == ("ready", 2, 15)
    assert site.calls[-1]["headers"]["Authorization"] == "Bearer nyx-token-1"


@pytest.mark.parametrize(
    ("page", "words"),
    [(("nope", "text/plain", 401), "401"), (('{"ok": false}', "application/json", 200), "expected")],
)
def test_a_failing_connection_check_is_an_error_status(
    alpha: TenantWorld, site: LocalSite, page: tuple, words: str
) -> None:
    body, content_type, status = page
    site.add("/api/v1/rag/documents", body, content_type, status=status)
    source = nyxcore_source(alpha, site)
    assert source["status"] == "error" and words in source["error_message"]


def test_results_join_the_turn_ordered_by_authority(alpha: TenantWorld, site: LocalSite, model_spy: ModelSpy) -> None:
    site.add("/api/v1/rag/documents", json.dumps(DOCUMENTS), "application/json")
    site.add("/api/v1/rag/search", json.dumps(RESULTS), "application/json")
    nyxcore_source(alpha, site, authority=["mandatory", "informational"])
    add_knowledge(alpha, "Local FAQ", "Refunds are paid back to the card used for the purchase.")
    use_model(alpha, "gpt-4o-mini")
    model_spy.mock(mock_response="Within 10 days [1].")
    body = ask(alpha, "How are refunds paid?").json()
    items = parse_context(model_spy.last_messages[0]["content"])
    assert [(item.label, item.source_name) for item in items[:3]] == [
        ("MANDATORY", "policy.pdf"),
        ("INFORMATIONAL", "faq.md"),
        (None, "Local FAQ"),
    ]
    assert [source["chunk_id"] for source in body["sources"][:2]] == ["n1", "n2"]
    search = next(call for call in site.calls if call["path"] == "/api/v1/rag/search")
    assert json.loads(search["body"]) == {
        "query": "How are refunds paid?",
        "limit": 5,
        "authority": ["mandatory", "informational"],
    }
    assert search["headers"]["Authorization"] == "Bearer nyx-token-1"


def test_a_failing_search_service_never_breaks_the_turn(alpha: TenantWorld, site: LocalSite) -> None:
    site.add("/api/v1/rag/documents", json.dumps(DOCUMENTS), "application/json")
    nyxcore_source(alpha, site)
    site.add("/api/v1/rag/search", "upstream exploded", "text/plain", status=500)
    add_knowledge(alpha, "Local FAQ", "Refunds are paid back to the card used for the purchase.")
    response = ask(alpha, "How are refunds paid?")
    assert response.status_code == 200
    names = [source["source_name"] for source in response.json()["sources"]]
    assert "Local FAQ" in names and not {"policy.pdf", "faq.md"} & set(names)


def test_search_destinations_go_through_the_ssrf_guard(alpha: TenantWorld, site: LocalSite) -> None:
    with override_settings(ALLOW_PRIVATE_NETWORKS=False):
        response = alpha.client("admin").post(
            "/v1/sources",
            {
                "bot_profile_id": str(alpha.bot.pk),
                "name": "Internal",
                "source_type": "nyxcore",
                "config": {"base_url": "http://169.254.169.254", "api_token": "x"},
            },
            format="json",
        )
    assert response.status_code == 422 and "config.base_url" in response.json()["detail"]
