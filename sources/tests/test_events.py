"""Live source progress over server-sent events (django-eventstream), through the ASGI stack and
Redis pub/sub, on tenant-scoped channels."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from django.test import AsyncClient
from django_eventstream import views as eventstream_views

from conftest import TenantWorld, build_world
from sources.events import TenantChannelManager, publish_source_event, source_channel, tenant_sources_channel
from sources.models import Source
from tenants.tenancy import tenant_scope

EVENT_TIMEOUT_SECONDS = 10


@pytest.fixture
def worlds(transactional_db: Any) -> tuple[TenantWorld, TenantWorld]:
    return build_world("alpha"), build_world("beta")


@pytest.fixture(autouse=True)
def _fresh_listener_manager() -> Iterator[None]:
    """django-eventstream keeps one Redis subscriber task per process, started on the first event
    loop that listens; every test here runs its own loop, so each gets a fresh manager."""
    manager = eventstream_views.ListenerManager()
    original = eventstream_views.listener_manager
    eventstream_views.listener_manager = manager
    yield
    eventstream_views.listener_manager = original
    # The stream's database work ran in asgiref's shared worker thread; close its connection there.
    asyncio.run(sync_to_async(connections.close_all)())


def auth(world: TenantWorld, who: str) -> dict[str, str]:
    # Per request: AsyncClient(headers=...) would turn them into WSGI names an ASGI scope ignores.
    return {"authorization": f"Bearer {world.tokens[who]}"}


def parse_events(raw: str) -> list[tuple[str, dict]]:
    events = []
    for block in raw.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if lines.get("event") and lines.get("data"):
            events.append((lines["event"], json.loads(lines["data"])))
    return events


class EventReader:
    """Reads a response stream in a background task into a queue: cancelling a read of the
    stream itself (a timeout) would end the stream, so the test waits on the queue instead."""

    def __init__(self, response: Any) -> None:
        self.queue: asyncio.Queue[tuple[str, dict]] = asyncio.Queue()
        self.opened = asyncio.Event()
        self._stream = aiter(response.streaming_content)
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        async for chunk in self._stream:
            self.opened.set()
            for event in parse_events(chunk.decode()):
                if event[0] == "source":
                    await self.queue.put(event)

    async def next(self, timeout: float = EVENT_TIMEOUT_SECONDS) -> dict:
        _name, data = await asyncio.wait_for(self.queue.get(), timeout)
        return data

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def publish_until_seen(source: Source, reader: EventReader, status: str) -> dict:
    """Publish a status change until it arrives: the Redis subscription starts asynchronously."""
    await sync_to_async(_set_status)(source, status)
    for _ in range(20):
        await sync_to_async(publish_source_event)(source)
        try:
            return await reader.next(timeout=0.5)
        except TimeoutError:
            continue
    raise AssertionError("no event arrived")


def _set_status(source: Source, status: str) -> None:
    with tenant_scope(source.tenant_id):
        Source.objects.filter(pk=source.pk).update(status=status)
        source.refresh_from_db()


def test_a_source_stream_sends_the_snapshot_then_changes(worlds: tuple[TenantWorld, TenantWorld]) -> None:
    alpha, _beta = worlds
    source = alpha.text_source

    async def scenario() -> None:
        response = await AsyncClient().get(f"/v1/sources/{source.pk}/events", headers=auth(alpha, "member"))
        assert response.status_code == 200
        assert response["Content-Type"] == "text/event-stream"
        assert response["Cache-Control"] == "no-cache"
        reader = EventReader(response)
        snapshot = await reader.next()
        assert snapshot["id"] == str(source.pk) and snapshot["status"] == "ready"
        assert snapshot["chunk_count"] == source.chunk_count
        changed = await publish_until_seen(source, reader, "processing")
        assert changed["status"] == "processing" and changed["id"] == str(source.pk)
        await reader.close()

    asyncio.run(scenario())


def test_a_tenant_stream_never_carries_another_tenants_events(worlds: tuple[TenantWorld, TenantWorld]) -> None:
    alpha, beta = worlds

    async def scenario() -> None:
        response = await AsyncClient().get("/v1/sources/events", headers=auth(beta, "owner"))
        assert response.status_code == 200
        reader = EventReader(response)
        await asyncio.wait_for(reader.opened.wait(), EVENT_TIMEOUT_SECONDS)  # no snapshot on this stream
        for _ in range(3):
            await sync_to_async(publish_source_event)(alpha.text_source)  # alpha's: must not arrive
        received = await publish_until_seen(beta.text_source, reader, "queued")
        assert received["id"] == str(beta.text_source.pk)
        await asyncio.sleep(0.3)
        assert reader.queue.empty() or all(
            event[1]["id"] == str(beta.text_source.pk) for event in list(reader.queue._queue)
        )
        await reader.close()

    asyncio.run(scenario())


def test_another_tenants_source_stream_is_404(worlds: tuple[TenantWorld, TenantWorld]) -> None:
    alpha, beta = worlds

    async def scenario() -> int:
        response = await AsyncClient().get(f"/v1/sources/{alpha.text_source.pk}/events", headers=auth(beta, "owner"))
        return response.status_code

    assert asyncio.run(scenario()) == 404


def test_the_channel_manager_reads_only_the_users_tenant(worlds: tuple[TenantWorld, TenantWorld]) -> None:
    alpha, beta = worlds
    manager = TenantChannelManager()
    assert manager.can_read_channel(alpha.owner, tenant_sources_channel(alpha.tenant.pk))
    assert manager.can_read_channel(alpha.owner, source_channel(alpha.tenant.pk, alpha.text_source.pk))
    assert not manager.can_read_channel(alpha.owner, tenant_sources_channel(beta.tenant.pk))
    assert not manager.can_read_channel(beta.owner, source_channel(alpha.tenant.pk, alpha.text_source.pk))
    assert not manager.can_read_channel(None, tenant_sources_channel(alpha.tenant.pk))
    assert not manager.is_channel_reliable("anything")
    assert settings.EVENTSTREAM_REDIS["port"] == 6379  # events cross processes through Redis here


def test_the_last_event_of_an_ingestion_is_its_outcome(
    worlds: tuple[TenantWorld, TenantWorld], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The in-process runner (and a fast worker) may finish before the hand-off returns: `queued`
    is announced before it, so a page trusting the last event never shows "Queued" forever."""
    from sources import events
    from sources.services import source_ingest_request

    alpha, _ = worlds
    sent: list[str] = []
    real_send = events.send_event

    def recording(channel: str, event: str, data: dict[str, Any]) -> None:
        if channel == source_channel(alpha.tenant.pk, alpha.text_source.pk):
            sent.append(data["status"])
        real_send(channel, event, data)

    monkeypatch.setattr(events, "send_event", recording)
    with tenant_scope(alpha.tenant):
        source_ingest_request(tenant=alpha.tenant, source=alpha.text_source)  # runs inline in tests
    assert sent[0] == "queued" and sent[-1] == "ready", sent
