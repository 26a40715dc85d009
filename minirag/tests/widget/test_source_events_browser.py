"""Live source progress in real Chromium: a tenant admin logged in to the dashboard opens
`new EventSource(...)` on both source event streams (EventSource sends `Accept:
text/event-stream` and cannot send an Authorization header, so the dashboard session's cookie is
what authenticates it), starts an ingestion from the page, and the stream carries it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django_eventstream import views as eventstream_views

from minirag.tests.widget.conftest import Chromium, WidgetSite
from sources.events import publish_source_event
from sources.models import Source
from tenants.tenancy import tenant_scope

OPEN_STREAMS = """
(urls) => {
  window.__streams = {};
  for (const [name, url] of Object.entries(urls)) {
    const stream = {opened: false, closed: false, events: [], source: new EventSource(url)};
    stream.source.onopen = () => { stream.opened = true; };
    // A refused stream (any status but 200 text/event-stream) is closed for good.
    stream.source.onerror = () => { stream.closed = stream.source.readyState === EventSource.CLOSED; };
    stream.source.addEventListener("source", (event) => stream.events.push(JSON.parse(event.data)));
    window.__streams[name] = stream;
  }
}
"""
SETTLED = "() => Object.values(window.__streams).every((s) => s.opened || s.closed)"
START_INGESTION = """
async (url) => {
  const csrf = document.cookie.split("; ").find((c) => c.startsWith("csrftoken=")).split("=")[1];
  const response = await fetch(url, {method: "POST", headers: {"X-CSRFToken": csrf}});
  return {status: response.status, body: await response.json()};
}
"""

# Each stream, after what it had when the ingestion started, has carried `processing` and then
# `ready` (a late re-published snapshot, also `ready`, may come before them).
FINISHED = """
(seen) => ["one", "all"].every((name) => {
  const statuses = window.__streams[name].events.slice(seen[name]).map((e) => e.status);
  const processing = statuses.indexOf("processing");
  return processing >= 0 && statuses.indexOf("ready", processing) > processing;
})
"""


@pytest.fixture
def fresh_listener_manager() -> Iterator[None]:
    """django-eventstream starts its Redis subscriber once per manager, on the first event loop
    that listens: a manager of its own makes sure it starts on the live server's loop, not on a
    loop an earlier test has closed."""
    original = eventstream_views.listener_manager
    eventstream_views.listener_manager = eventstream_views.ListenerManager()
    yield
    eventstream_views.listener_manager = original


def test_a_dashboard_page_follows_an_ingestion_with_event_source(
    site: WidgetSite, chromium: Chromium, fresh_listener_manager: None
) -> None:
    world = site.world
    source = world.text_source
    assert source is not None
    urls = {"one": f"/v1/sources/{source.pk}/events", "all": "/v1/sources/events"}
    streams_open, probe_seen = threading.Event(), threading.Event()

    def probe_until_seen() -> None:
        # The server subscribes to Redis (where events travel between processes) once the first
        # stream opens, asynchronously: the current snapshot is re-published until the page has
        # one, so the ingestion below cannot be published before anyone listens.
        if streams_open.wait(60):
            while not probe_seen.wait(0.2):
                publish_source_event(source)

    def scenario(page: Any) -> dict[str, Any]:
        exchanges: dict[str, dict[str, Any]] = {}

        def record(response: Any) -> None:
            path = response.url.removeprefix(site.api_url)
            if path in urls.values():
                exchanges[path] = {
                    "status": response.status,
                    "content_type": response.headers.get("content-type", ""),
                    "accept": response.request.headers.get("accept"),
                    "authorization": response.request.headers.get("authorization"),
                    "cors": response.headers.get("access-control-allow-origin"),
                }

        page.on("response", record)
        page.goto(f"{site.api_url}/dashboard/login/?next=/dashboard/")
        page.fill("input[name=username]", world.admin.email)
        page.fill("input[name=password]", world.password)
        page.click("input[type=submit]")
        page.wait_for_url(f"{site.api_url}/dashboard/")
        page.evaluate(OPEN_STREAMS, urls)
        page.wait_for_function(SETTLED)
        opened = page.evaluate("() => Object.values(window.__streams).every((s) => s.opened)")
        if not opened:
            return {"opened": False, "exchanges": exchanges}
        page.wait_for_function("() => window.__streams.one.events.length > 0")  # the snapshot
        streams_open.set()
        page.wait_for_function("() => window.__streams.all.events.length > 0")
        probe_seen.set()
        seen = page.evaluate(
            "() => ({one: window.__streams.one.events.length, all: window.__streams.all.events.length})"
        )
        started = page.evaluate(START_INGESTION, f"/v1/sources/{source.pk}/ingest")
        page.wait_for_function(FINISHED, arg=seen)
        streams = page.evaluate(
            "() => Object.fromEntries(Object.entries(window.__streams).map(([n, s]) => { s.source.close(); "
            "return [n, s.events]; }))"
        )
        return {"opened": True, "exchanges": exchanges, "started": started, "seen": seen, "streams": streams}

    prober = threading.Thread(target=probe_until_seen, daemon=True)
    prober.start()
    try:
        result = chromium.run(scenario)
    finally:
        streams_open.set()
        probe_seen.set()
        prober.join(timeout=10)

    for path in urls.values():
        exchange = result["exchanges"].get(path)
        assert exchange is not None, f"the browser never got an answer from {path}: {result}"
        assert exchange["accept"] == "text/event-stream" and exchange["authorization"] is None, exchange
        assert exchange["status"] == 200, exchange
        assert exchange["content_type"].startswith("text/event-stream"), exchange
        assert exchange["cors"] is None  # no other site's page may read a tenant's events
    assert result["opened"], result
    assert result["started"]["status"] == 202, result["started"]

    with tenant_scope(world.tenant):
        stored = Source.objects.get(pk=source.pk)
    snapshot = result["streams"]["one"][0]
    assert snapshot["id"] == str(source.pk) and snapshot["status"] == "ready", snapshot
    assert snapshot["chunk_count"] == stored.chunk_count > 0
    for name in ("one", "all"):
        during = result["streams"][name][result["seen"][name] :]
        assert {event["id"] for event in during} == {str(source.pk)}, during
        statuses = [event["status"] for event in during]
        processing = statuses.index("processing")
        ready = during[statuses.index("ready", processing)]
        assert ready["chunks_done"] == ready["chunks_total"] == ready["chunk_count"] == stored.chunk_count, ready
        assert ready["document_count"] == stored.document_count and ready["updated_at"] > snapshot["updated_at"]
