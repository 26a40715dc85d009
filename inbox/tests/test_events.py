"""The chat and inbox event channels (django-eventstream), through the ASGI stack and Redis
pub/sub: a visitor and staff receive an operator's message live, Last-Event-ID resumes, and
nobody else — another visitor of the site, another tenant, a guessed channel name — reads them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from django.test import AsyncClient
from django_eventstream import views as eventstream_views

from conftest import TenantWorld, build_world
from inbox.events import (
    CacheEventStorage,
    ChannelManager,
    ChannelReader,
    chat_channel,
    chat_live_channel,
    inbox_channel,
)
from inbox.selectors import operators_online
from inbox.tests.conftest import set_handoff, visitor, visitor_chat
from tenants.authentication import Principal
from tenants.tenancy import tenant_scope

TIMEOUT = 10


@pytest.fixture
def worlds(transactional_db: Any) -> tuple[TenantWorld, TenantWorld]:
    alpha, beta = build_world("alpha"), build_world("beta")
    set_handoff(alpha)
    return alpha, beta


@pytest.fixture(autouse=True)
def _fresh_listener_manager() -> Iterator[None]:
    """One Redis subscriber task per process, started on the first loop that listens: each test
    runs its own loop, so each gets a fresh manager (as sources/tests/test_events.py does)."""
    manager = eventstream_views.ListenerManager()
    original = eventstream_views.listener_manager
    eventstream_views.listener_manager = manager
    yield
    eventstream_views.listener_manager = original
    asyncio.run(sync_to_async(connections.close_all)())


def headers(world: TenantWorld, who: str, visitor_id: str = "") -> dict[str, str]:
    out = {"authorization": f"Bearer {world.tokens[who]}"}
    if visitor_id:
        out["x-minirag-visitor"] = visitor_id
    return out


def parse(raw: str) -> list[dict[str, Any]]:
    events = []
    for block in raw.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if ": " in line and not line.startswith(":"):
                key, value = line.split(": ", 1)
                fields[key] = value
        if fields.get("event") and fields.get("data"):
            events.append({"event": fields["event"], "id": fields.get("id"), "data": json.loads(fields["data"])})
    return events


class Reader:
    """Reads a stream in a background task into a queue (a timed-out read would end the stream).
    An event delivered again (the same event id: delivery is at least once, around django-eventstream's
    catch-up from storage) is read once, as the widget shows a message once."""

    def __init__(self, response: Any, names: tuple[str, ...]) -> None:
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.names = names
        self._delivered: set[str] = set()
        self.opened = asyncio.Event()
        self._stream = aiter(response.streaming_content)
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        async for chunk in self._stream:
            self.opened.set()
            for event in parse(chunk.decode()):
                if event["id"] and event["id"] in self._delivered:
                    continue
                if event["id"]:
                    self._delivered.add(event["id"])
                if event["event"] in self.names:
                    await self.queue.put(event)

    async def next(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        return await asyncio.wait_for(self.queue.get(), timeout)

    def pending(self) -> list[dict[str, Any]]:
        return list(self.queue._queue)  # type: ignore[attr-defined]

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def until_live(world: TenantWorld, chat_id: str, *readers: Reader) -> None:
    """Send typing signals until every reader got one: the Redis subscription starts asynchronously."""
    waiting = list(readers)
    for _ in range(40):
        await sync_to_async(world.client("owner").post)(f"/v1/chat/{chat_id}/typing")
        still = []
        for reader in waiting:
            try:
                event = await reader.next(timeout=0.25)
                assert event["event"] == "typing" and event["data"]["who"] == "operator"
            except TimeoutError:
                still.append(reader)
        waiting = still
        if not waiting:
            # Drop the extra signals, those still on their way included (a busy machine delivers
            # one later than the 0.25 s above): until none has come for a while.
            for reader in readers:
                with contextlib.suppress(TimeoutError):
                    while True:
                        extra = await reader.next(timeout=0.5)
                        assert extra["event"] == "typing", extra
            return
    raise AssertionError("the streams never went live")


def post(world: TenantWorld, who: str, path: str, body: dict[str, Any] | None = None) -> Any:
    response = world.client(who).post(path, body or {}, format="json")
    assert response.status_code < 300, response.content
    return response.json() if response.content else None


def test_the_visitor_and_staff_receive_an_operator_message_and_resume(worlds: tuple[TenantWorld, TenantWorld]) -> None:
    alpha, _ = worlds
    chat_id = visitor_chat(alpha)
    post(alpha, "admin", f"/v1/chat/{chat_id}/takeover")

    async def scenario() -> None:
        client = AsyncClient()
        as_visitor = await client.get(f"/v1/chat/{chat_id}/events", headers=headers(alpha, "bot", "visitor-1"))
        as_staff = await client.get(f"/v1/chat/{chat_id}/events", headers=headers(alpha, "member"))
        assert as_visitor.status_code == 200 and as_staff.status_code == 200
        assert as_visitor["Content-Type"] == "text/event-stream" and as_visitor["Cache-Control"] == "no-cache"
        names = ("message", "typing", "handling")
        visitor_reader, staff_reader = Reader(as_visitor, names), Reader(as_staff, names)
        await until_live(alpha, chat_id, visitor_reader, staff_reader)

        reply = await sync_to_async(post)(alpha, "admin", f"/v1/chat/{chat_id}/replies", {"content": "Ada here."})
        for reader in (visitor_reader, staff_reader):
            event = await reader.next()
            assert event["event"] == "message" and event["data"]["id"] == reply["id"]
            assert event["data"]["role"] == "operator" and event["data"]["author_name"]
            assert event["id"] and chat_channel(alpha.tenant.pk, chat_id) in event["id"]
        first_id = event["id"]

        # The visitor's own message reaches the staff stream too.
        await sync_to_async(visitor(alpha).post)(
            "/v1/chat", {"bot_profile_id": str(alpha.bot.pk), "chat_id": chat_id, "message": "Thanks!"}, format="json"
        )
        seen = await staff_reader.next()
        assert seen["event"] == "message" and seen["data"]["role"] == "user" and seen["data"]["content"] == "Thanks!"
        await visitor_reader.close()
        await staff_reader.close()

        # Offline, more happens; reconnecting with Last-Event-ID replays what was missed, in order.
        second = await sync_to_async(post)(alpha, "admin", f"/v1/chat/{chat_id}/replies", {"content": "Done."})
        await sync_to_async(post)(alpha, "admin", f"/v1/chat/{chat_id}/release")
        resumed = await client.get(
            f"/v1/chat/{chat_id}/events", headers={**headers(alpha, "bot", "visitor-1"), "last-event-id": first_id}
        )
        reader = Reader(resumed, ("message", "handling"))
        replayed = [await reader.next() for _ in range(3)]
        assert [(e["event"], e["data"].get("role") or e["data"].get("handling")) for e in replayed] == [
            ("message", "user"),
            ("message", "operator"),
            ("handling", "bot"),
        ]
        assert replayed[1]["data"]["id"] == second["id"]
        await reader.close()

        # The same through the query string (a fetch() client that cannot send the header cross-origin).
        query = await client.get(
            f"/v1/chat/{chat_id}/events?lastEventId={replayed[1]['id']}", headers=headers(alpha, "bot", "visitor-1")
        )
        reader = Reader(query, ("message", "handling"))
        assert (await reader.next())["data"]["handling"] == "bot"
        await reader.close()

    asyncio.run(scenario())


def test_the_inbox_stream_announces_handoffs_and_keeps_its_operator_online(
    worlds: tuple[TenantWorld, TenantWorld],
) -> None:
    alpha, beta = worlds
    chat_id = visitor_chat(alpha)

    async def scenario() -> None:
        client = AsyncClient()
        response = await client.get("/v1/inbox/events", headers=headers(alpha, "admin"))
        assert response.status_code == 200
        reader = Reader(response, ("handoff_requested", "handling", "message", "typing"))
        await asyncio.wait_for(reader.opened.wait(), TIMEOUT)
        online = await sync_to_async(_online)(alpha)
        assert online == [alpha.admin.pk]
        # Beta's hand-offs never reach alpha's inbox; alpha's does (retried until the subscription is live).
        set_handoff_async = sync_to_async(set_handoff)
        await set_handoff_async(beta)
        beta_chat = await sync_to_async(visitor_chat)(beta)
        await sync_to_async(visitor(beta).post)(f"/v1/chat/{beta_chat}/handoff", {}, format="json")
        for _ in range(40):
            answer = await sync_to_async(alpha.client("owner").post)(f"/v1/chat/{chat_id}/handoff", {}, format="json")
            assert answer.json()["available"] is True  # the admin holds the inbox open
            try:
                event = await reader.next(timeout=0.25)
                break
            except TimeoutError:
                await sync_to_async(visitor(alpha).post)(f"/v1/chat/{chat_id}/release")
        else:
            raise AssertionError("no hand-off arrived")
        assert event["event"] in ("handoff_requested", "handling") and event["data"]["id"] == chat_id
        await asyncio.sleep(0.3)
        assert all(e["data"].get("id", e["data"].get("chat_id")) == chat_id for e in reader.pending())
        await reader.close()

    asyncio.run(scenario())


def _online(world: TenantWorld) -> list[uuid.UUID]:
    with tenant_scope(world.tenant):
        return operators_online(tenant=world.tenant)


def test_streams_refuse_other_visitors_other_tenants_and_guessed_names(
    worlds: tuple[TenantWorld, TenantWorld],
) -> None:
    alpha, beta = worlds
    mine = visitor_chat(alpha, "visitor-1")
    theirs = visitor_chat(alpha, "visitor-2")

    async def scenario() -> None:
        client = AsyncClient()
        statuses = [
            (await client.get(f"/v1/chat/{theirs}/events", headers=headers(alpha, "bot", "visitor-1"))).status_code,
            (await client.get(f"/v1/chat/{mine}/events", headers=headers(alpha, "bot"))).status_code,
            (await client.get(f"/v1/chat/{mine}/events", headers=headers(beta, "owner"))).status_code,
            (await client.get(f"/v1/chat/{mine}/events", headers=headers(beta, "bot", "visitor-1"))).status_code,
        ]
        assert statuses == [404, 404, 404, 404]
        inbox = [
            (await client.get("/v1/inbox/events", headers=headers(alpha, "bot", "visitor-1"))).status_code,
            (await client.get(f"/v1/inbox/events?channel={inbox_channel(alpha.tenant.pk)}")).status_code,
        ]
        assert inbox == [403, 401]

        # A guessed channel in the query string is ignored: the stream carries its own chat only.
        guessed = "&".join(
            f"channel={name}"
            for name in (chat_channel(alpha.tenant.pk, theirs), chat_live_channel(alpha.tenant.pk, theirs))
        )
        response = await client.get(f"/v1/chat/{mine}/events?{guessed}", headers=headers(alpha, "bot", "visitor-1"))
        assert response.status_code == 200
        reader = Reader(response, ("typing", "message"))
        for _ in range(3):
            await sync_to_async(alpha.client("owner").post)(f"/v1/chat/{theirs}/typing")
        await until_live(alpha, mine, reader)
        await sync_to_async(alpha.client("owner").post)(f"/v1/chat/{theirs}/typing")
        await asyncio.sleep(0.3)
        assert all(event["data"]["chat_id"] == mine for event in reader.pending())
        await reader.close()

    asyncio.run(scenario())


def test_the_channel_manager_reads_only_the_readers_own_channels(worlds: tuple[TenantWorld, TenantWorld]) -> None:
    alpha, beta = worlds
    mine, theirs = visitor_chat(alpha, "visitor-1"), visitor_chat(alpha, "visitor-2")
    beta_chat = visitor_chat(beta, "visitor-1")
    manager = ChannelManager()
    a, b = alpha.tenant.pk, beta.tenant.pk

    def principal(world: TenantWorld, who: str) -> Principal:
        user = world.owner if who in ("owner", "bot") else getattr(world, who)
        return Principal(tenant=world.tenant, user=user, method="api_token", api_token=world.token_rows[who])

    visitor_1 = ChannelReader(principal(alpha, "bot"), "visitor-1")
    visitor_2 = ChannelReader(principal(alpha, "bot"), "visitor-2")
    owner = ChannelReader(principal(alpha, "owner"))
    beta_visitor = ChannelReader(principal(beta, "bot"), "visitor-1")

    assert manager.can_read_channel(visitor_1, chat_channel(a, mine))
    assert manager.can_read_channel(visitor_1, chat_live_channel(a, mine))
    assert not manager.can_read_channel(visitor_1, chat_channel(a, theirs))
    assert not manager.can_read_channel(visitor_2, chat_channel(a, mine))
    assert not manager.can_read_channel(visitor_1, inbox_channel(a))
    assert not manager.can_read_channel(beta_visitor, chat_channel(a, mine))
    assert not manager.can_read_channel(beta_visitor, chat_channel(b, mine))  # its tenant's prefix, alpha's chat
    assert manager.can_read_channel(owner, chat_channel(a, theirs))
    assert manager.can_read_channel(owner, inbox_channel(a))
    assert not manager.can_read_channel(owner, inbox_channel(b))
    assert not manager.can_read_channel(owner, chat_channel(b, beta_chat))
    assert not manager.can_read_channel(owner, chat_channel(a, beta_chat))  # alpha's prefix, beta's chat
    # Guessed and malformed names: nothing but the exact forms is readable.
    for name in (
        f"{chat_channel(a, mine)}-extra",
        f"{chat_channel(a, mine)}-live-live",
        chat_channel(a, mine).upper(),
        f"tenant-{a}-chat-",
        f"tenant-{a}-inbox-x",
        f"tenant-{a}-sources",
        "events",
    ):
        assert not manager.can_read_channel(owner, name), name
        assert not manager.can_read_channel(visitor_1, name), name
    # A plain user — what a bot token authenticates as (its creator) — reads no chat or inbox
    # channel, whatever the name, and still its tenant's source channels (sources/events.py).
    for name in (chat_channel(a, mine), chat_live_channel(a, mine), inbox_channel(a), f"{chat_channel(a, mine)}-x"):
        assert not manager.can_read_channel(alpha.owner, name), name
    assert manager.can_read_channel(alpha.owner, f"tenant-{a}-sources")
    assert not manager.can_read_channel(None, chat_channel(a, mine))
    # Chat and inbox channels keep their events for Last-Event-ID; typing and sources do not.
    assert manager.is_channel_reliable(chat_channel(a, mine)) and manager.is_channel_reliable(inbox_channel(a))
    assert not manager.is_channel_reliable(chat_live_channel(a, mine))
    assert not manager.is_channel_reliable(f"tenant-{a}-sources")
    assert settings.EVENTSTREAM_REDIS["port"] == 6379  # events cross processes through Redis here


def test_the_cache_storage_replays_and_resets(worlds: tuple[TenantWorld, TenantWorld]) -> None:
    from django_eventstream.storage import EventDoesNotExist

    storage = CacheEventStorage()
    channel = chat_channel(uuid.uuid4(), uuid.uuid4())
    assert storage.get_current_id(channel) == 0
    ids = [storage.append_event(channel, "message", json.dumps({"n": n})).id for n in range(3)]
    assert ids == [1, 2, 3] and storage.get_current_id(channel) == 3
    assert [json.loads(e.data)["n"] for e in storage.get_events(channel, 1)] == [1, 2]
    assert storage.get_events(channel, 3) == []
    with pytest.raises(EventDoesNotExist):
        storage.get_events(channel, 7)  # ahead of the channel: the client must reload
    from django.core.cache import cache

    cache.delete(CacheEventStorage._event(channel, 2))  # expired
    with pytest.raises(EventDoesNotExist):
        storage.get_events(channel, 0)
