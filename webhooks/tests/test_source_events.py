"""`source.ingested` and `source.failed` for every way an ingestion ends: each failure path of a
run (not just exceptions), the reaper giving up, and sitemap parents announced once their pages
have all finished. The events are read from the delivery log of the fixture's endpoint."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from chat.tests.test_nyxcore import nyxcore_source
from conftest import LocalSite, TenantWorld
from sources import lifecycle
from sources.models import Source, SourceStatus
from sources.tests.test_web_sources import create_source, ingest, page, sitemap
from tenants.tenancy import tenant_scope
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def announced(alpha: TenantWorld) -> Any:
    """`announced()` → [(event, payload)] recorded since the test started, oldest first."""
    with tenant_scope(alpha.tenant):
        WebhookDelivery.objects.all().delete()

    def read() -> list[tuple[str, dict[str, Any]]]:
        with tenant_scope(alpha.tenant):
            rows = WebhookDelivery.objects.filter(webhook=alpha.webhook).order_by("created_at")
            return [(row.event, row.payload) for row in rows]

    return read


def failures(announced: Any) -> list[dict[str, Any]]:
    return [payload for event, payload in announced() if event == "source.failed"]


def test_a_page_answering_404_is_announced_as_failed(alpha: TenantWorld, site: LocalSite, announced: Any) -> None:
    source = ingest(
        alpha, create_source(alpha, name="Gone", source_type="url", config={"url": site.url("/gone")})["id"]
    )
    [failure] = failures(announced)
    assert failure["source_id"] == source["id"] and failure["error"] == source["error_message"]
    assert "404" in failure["error"] and failure["source_name"] == "Gone" and failure["parent_id"] is None


def test_a_page_with_no_text_is_announced_as_failed(alpha: TenantWorld, site: LocalSite, announced: Any) -> None:
    url = site.add("/blank", "<html><body><main></main></body></html>")
    ingest(alpha, create_source(alpha, name="Blank", source_type="url", config={"url": url})["id"])
    assert "No text could be extracted" in failures(announced)[0]["error"]


def test_a_destination_blocked_at_ingestion_is_announced_as_failed(
    alpha: TenantWorld, site: LocalSite, announced: Any, settings: Any
) -> None:
    url = site.add("/internal", page("Internal", "Only for staff."))
    source_id = create_source(alpha, name="Internal", source_type="url", config={"url": url})["id"]
    settings.ALLOW_PRIVATE_NETWORKS = False
    ingest(alpha, source_id)
    assert "private or reserved address" in failures(announced)[0]["error"]


def test_a_retry_is_not_a_failure_but_giving_up_is(
    alpha: TenantWorld, site: LocalSite, announced: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.INGEST_MAX_ATTEMPTS = 2
    url = site.add("/flaky", "busy", "text/plain", status=503)
    source_id = create_source(alpha, name="Flaky", source_type="url", config={"url": url})["id"]
    with django_capture_on_commit_callbacks(execute=True):  # the retry is queued on commit
        ingest(alpha, source_id)
    assert site.requests.count("/flaky") == 2
    [failure] = failures(announced)
    assert "503" in failure["error"] and "gave up after 2 attempts" in failure["error"]


def test_an_unexpected_error_is_announced_without_internals(
    alpha: TenantWorld, site: LocalSite, announced: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise KeyError("internal detail")

    monkeypatch.setattr(lifecycle, "index_documents", broken)
    url = site.add("/fine", page("Fine", "A perfectly good page."))
    ingest(alpha, create_source(alpha, name="Fine", source_type="url", config={"url": url})["id"])
    [failure] = failures(announced)
    assert "failed unexpectedly (KeyError)" in failure["error"] and "internal detail" not in failure["error"]


def test_a_failing_external_search_connection_is_announced(alpha: TenantWorld, site: LocalSite, announced: Any) -> None:
    site.add("/api/v1/rag/documents", "nope", "text/plain", status=401)
    source = nyxcore_source(alpha, site)
    [failure] = failures(announced)
    assert failure["source_id"] == source["id"] and failure["source_type"] == "nyxcore" and "401" in failure["error"]


def test_the_reaper_giving_up_on_an_interrupted_run_is_announced(alpha: TenantWorld, announced: Any) -> None:
    source = alpha.text_source
    with tenant_scope(alpha.tenant):
        Source.objects.filter(pk=source.pk).update(
            status=SourceStatus.PROCESSING,
            ingest_attempt=5,
            heartbeat_at=timezone.now() - timedelta(hours=1),
        )
    assert lifecycle.reap_stuck_sources() == 1
    [failure] = failures(announced)
    assert failure["source_id"] == str(source.pk) and "interrupted repeatedly" in failure["error"]


def test_a_sitemap_is_announced_once_all_of_its_pages_finished(
    alpha: TenantWorld, site: LocalSite, announced: Any
) -> None:
    site.add("/a", page("Shipping", "We ship in two days."))
    site.add("/sitemap.xml", sitemap([site.url("/a"), site.url("/missing")]), "application/xml")
    parent = create_source(alpha, name="Shop map", source_type="sitemap", config={"url": site.url("/sitemap.xml")})
    ingest(alpha, parent["id"])

    events = announced()
    pages = [(event, payload["source_name"]) for event, payload in events if payload["parent_id"] == parent["id"]]
    assert sorted(pages) == [("source.failed", site.url("/missing")), ("source.ingested", site.url("/a"))]
    [(event, summary)] = [(event, payload) for event, payload in events if payload["source_id"] == parent["id"]]
    assert events[-1] == (event, summary), "the parent comes after its pages"
    assert event == "source.ingested" and summary["children_count"] == 2 and summary["failed_children"] == 1
    shipping = next(payload for _, payload in events if payload["source_name"] == site.url("/a"))
    assert summary["chunk_count"] == shipping["chunk_count"] > 0 and summary["document_count"] == 1


def test_a_sitemap_whose_pages_all_fail_is_announced_as_failed(
    alpha: TenantWorld, site: LocalSite, announced: Any
) -> None:
    site.add("/sitemap.xml", sitemap([site.url("/x"), site.url("/y")]), "application/xml")
    parent = create_source(alpha, name="Dead map", source_type="sitemap", config={"url": site.url("/sitemap.xml")})
    ingest(alpha, parent["id"])
    [summary] = [payload for payload in failures(announced) if payload["source_id"] == parent["id"]]
    assert summary["error"].startswith("All 2 pages failed. The first: ") and "404" in summary["error"]
    assert summary["failed_children"] == 2


def test_a_sitemap_that_cannot_be_read_is_announced_as_failed(
    alpha: TenantWorld, site: LocalSite, announced: Any
) -> None:
    parent = create_source(alpha, name="No map", source_type="sitemap", config={"url": site.url("/sitemap.xml")})
    ingest(alpha, parent["id"])
    [failure] = failures(announced)
    assert failure["source_id"] == parent["id"] and "404" in failure["error"]
    assert json.loads(json.dumps(failure)) == failure  # plain JSON all the way down
