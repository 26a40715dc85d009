"""Live chat and inbox events over django-eventstream, on channels only their readers may open.

Channels (names carry the tenant id, like the source channels of sources/events.py):

* `tenant-<tenant>-chat-<chat>`: one conversation — `message` (a visitor's message while a person
  handles the chat, an operator's reply), `handling` (who answers now). Reliable: every event is
  kept (CacheEventStorage, 24 h) so a client resumes with `Last-Event-ID` (or `?lastEventId=`).
* `tenant-<tenant>-chat-<chat>-live`: the same conversation's `typing` signals; not kept (a
  replayed "is typing" would be a lie), opened together with the one above.
* `tenant-<tenant>-inbox`: the tenant's staff — `handoff_requested`, `handling`, `message`.
  Reliable too.

Who may read is decided here, by the channel manager, whatever name a client asks for: a chat
channel only by the visitor who started the chat (their bot token and `X-MiniRAG-Visitor`) and by
staff of the tenant who may read that chat (chat/selectors.py); the inbox only by staff who may
answer visitors (inbox/selectors.py). django-eventstream hands the manager the request's `user`:
the stream views (inbox/views.py) set it to a `ChannelReader`, and any other user — including the
token creator a bot token authenticates as — reads none of these channels.

Publishing is best effort and happens after the transaction commits: an event that fails to go
out never undoes a stored message. Across processes events travel through Redis pub/sub
(`EVENTSTREAM_REDIS`); the storage lives in Django's cache (Redis in production).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django_eventstream import send_event
from django_eventstream.event import Event
from django_eventstream.storage import EventDoesNotExist, StorageBase

from minirag.db import release_connection
from sources.events import TenantChannelManager
from tenants.authentication import Principal
from tenants.tenancy import tenant_scope

logger = logging.getLogger(__name__)

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
CHAT_CHANNEL = re.compile(rf"^tenant-(?P<tenant_id>{UUID})-chat-(?P<chat_id>{UUID})(?P<live>-live)?$")
INBOX_CHANNEL = re.compile(rf"^tenant-(?P<tenant_id>{UUID})-inbox$")
# Anything shaped like a chat or inbox channel, exact or not: never for a plain user.
CHAT_OR_INBOX_PREFIX = re.compile(r"^tenant-[^-]+(-[^-]+){4}-(chat|inbox)", re.IGNORECASE)

MESSAGE_EVENT = "message"
HANDLING_EVENT = "handling"
HANDOFF_REQUESTED_EVENT = "handoff_requested"
TYPING_EVENT = "typing"


def chat_channel(tenant_id: uuid.UUID | str, chat_id: uuid.UUID | str) -> str:
    return f"tenant-{tenant_id}-chat-{chat_id}"


def chat_live_channel(tenant_id: uuid.UUID | str, chat_id: uuid.UUID | str) -> str:
    return f"{chat_channel(tenant_id, chat_id)}-live"


def inbox_channel(tenant_id: uuid.UUID | str) -> str:
    return f"tenant-{tenant_id}-inbox"


@dataclass(frozen=True)
class ChannelReader:
    """Who opened a chat or inbox stream: a principal of the tenant, and for a bot (widget) token
    the visitor id it sent. django-eventstream reads `pk` and `is_authenticated` off it."""

    principal: Principal
    visitor_id: str = ""
    is_authenticated: bool = True

    @property
    def pk(self) -> str:
        if self.principal.is_bot_token:
            return f"visitor:{self.principal.api_token.pk}:{self.visitor_id}"  # type: ignore[union-attr]
        return f"user:{self.principal.user.pk}"

    @property
    def tenant_id(self) -> uuid.UUID:
        return self.principal.tenant.pk


def _may_read_chat(reader: ChannelReader, chat_id: str) -> bool:
    from chat.selectors import readable_chats

    try:
        with tenant_scope(reader.tenant_id):
            chats = readable_chats(principal=reader.principal, visitor_id=reader.visitor_id)
            return chats.filter(pk=chat_id).exists()
    finally:
        # Asked as a stream opens (in the request's thread), which then stays open for hours: give
        # the pooled connection back, or each open channel would hold one (20 exhaust the pool).
        release_connection()


class ChannelManager(TenantChannelManager):
    """Chat and inbox channels for their `ChannelReader`s only; source channels as before
    (sources/events.py), never for a ChannelReader."""

    def can_read_channel(self, user: Any, channel: str) -> bool:
        chat = CHAT_CHANNEL.match(channel)
        inbox = INBOX_CHANNEL.match(channel)
        if not isinstance(user, ChannelReader):
            return not CHAT_OR_INBOX_PREFIX.match(channel) and super().can_read_channel(user, channel)
        if chat is not None:
            return chat["tenant_id"] == str(user.tenant_id) and _may_read_chat(user, chat["chat_id"])
        if inbox is not None:
            from inbox.selectors import may_operate

            return inbox["tenant_id"] == str(user.tenant_id) and may_operate(user.principal)
        return False

    def is_channel_reliable(self, channel: str) -> bool:
        chat = CHAT_CHANNEL.match(channel)
        return bool((chat is not None and not chat["live"]) or INBOX_CHANNEL.match(channel))


class CacheEventStorage(StorageBase):
    """django-eventstream's storage in Django's cache (Redis in production, shared by every web
    process; process memory in the embedded mode, which is one process): a counter per channel and
    each event under its id, kept EVENT_SECONDS. A client asking for events that expired (or for
    an id the channel never reached) gets `stream-reset` and should reload the chat's messages."""

    EVENT_SECONDS = 24 * 60 * 60

    @staticmethod
    def _counter(channel: str) -> str:
        return f"eventstream:{channel}:last"

    @staticmethod
    def _event(channel: str, event_id: int) -> str:
        return f"eventstream:{channel}:{event_id}"

    def append_event(self, channel: str, event_type: str, data: Any) -> Event:
        counter = self._counter(channel)
        cache.add(counter, 0, timeout=self.EVENT_SECONDS)
        event_id = int(cache.incr(counter))
        cache.touch(counter, self.EVENT_SECONDS)
        cache.set(self._event(channel, event_id), {"type": event_type, "data": data}, timeout=self.EVENT_SECONDS)
        return Event(channel, event_type, data, id=event_id)

    def get_events(self, channel: str, last_id: int, limit: int = 100) -> list[Event]:
        current = self.get_current_id(channel)
        if last_id > current:
            raise EventDoesNotExist("That event id is ahead of the channel.", current)
        ids = list(range(last_id + 1, min(last_id + limit, current) + 1))
        stored = cache.get_many([self._event(channel, event_id) for event_id in ids])
        events = []
        for event_id in ids:
            item = stored.get(self._event(channel, event_id))
            if item is None:
                raise EventDoesNotExist("Those events have expired.", current)
            events.append(Event(channel, item["type"], item["data"], id=event_id))
        return events

    def get_current_id(self, channel: str) -> int:
        return int(cache.get(self._counter(channel)) or 0)


def _send(channel: str, event: str, data: dict[str, Any]) -> None:
    try:
        send_event(channel, event, data)
    except Exception:
        logger.warning("Could not publish a %s event on %s.", event, channel, exc_info=True)


def publish_on_commit(tenant_id: uuid.UUID, chat_id: uuid.UUID | None, event: str, data: dict[str, Any]) -> None:
    """Send `event` on the chat's channel (when `chat_id`) and the tenant's inbox once the current
    transaction commits. The data is copied now (JSON-safe), so later changes cannot leak in."""
    payload = json.loads(json.dumps(data, default=str))

    def send() -> None:
        if chat_id is not None:
            _send(chat_channel(tenant_id, chat_id), event, payload)
        _send(inbox_channel(tenant_id), event, payload)

    transaction.on_commit(send)


def publish_typing(tenant_id: uuid.UUID, chat_id: uuid.UUID, data: dict[str, Any]) -> None:
    """Typing goes out at once on the chat's live channel, and is never stored."""
    _send(chat_live_channel(tenant_id, chat_id), TYPING_EVENT, data)
