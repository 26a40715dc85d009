"""Reads for chats and messages. A bot (widget) token sees only the chats it started."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.db.models import QuerySet

from chat.models import Chat, Message
from minirag.lookups import get_by_id_or_404
from tenants.authentication import Principal
from tenants.models import Tenant


def chat_list(*, tenant: Tenant, bot_profile_id: uuid.UUID | None = None) -> QuerySet[Chat]:
    chats = Chat.objects.filter(tenant=tenant).order_by("-updated_at")
    if bot_profile_id is not None:
        chats = chats.filter(bot_profile_id=bot_profile_id)
    return chats


def chat_get_for(*, principal: Principal, chat_id: Any, visitor_id: str = "") -> Chat:
    """A chat the caller may read: any of the tenant's for a tenant principal; for a bot token,
    only the chats that token started with its bot for the same visitor (the widget's
    X-MiniRAG-Visitor), so one site's visitors never read each other's conversations. Anything
    else is a 404, exactly like a chat that does not exist."""
    chats = Chat.objects.filter(tenant=principal.tenant)
    if principal.is_bot_token:
        chats = chats.filter(
            started_by_token=principal.api_token, bot_profile_id=principal.bot_profile_id, visitor_id=visitor_id
        )
    return get_by_id_or_404(chats, chat_id, label="Chat")


def chat_messages(*, chat: Chat) -> QuerySet[Message]:
    """Oldest first."""
    return Message.objects.filter(tenant_id=chat.tenant_id, chat=chat).order_by("created_at", "id")


def message_get(*, chat: Chat, message_id: Any) -> Message:
    return get_by_id_or_404(chat_messages(chat=chat), message_id, label="Message")


def recent_history(*, chat: Chat, turns: int) -> list[dict[str, str]]:
    """The last `turns` exchanges (user and assistant messages), oldest first, for the prompt."""
    if turns <= 0:
        return []
    recent = list(chat_messages(chat=chat).order_by("-created_at", "-id").values("role", "content")[: turns * 2])
    return [{"role": row["role"], "content": row["content"]} for row in reversed(recent)]


def chats_for_export(
    *,
    tenant: Tenant,
    bot_profile_id: uuid.UUID | None,
    from_date: dt.date | None,
    to_date: dt.date | None,
    limit: int,
) -> QuerySet[Chat]:
    chats = chat_list(tenant=tenant, bot_profile_id=bot_profile_id)
    if from_date is not None:
        chats = chats.filter(created_at__date__gte=from_date)
    if to_date is not None:
        chats = chats.filter(created_at__date__lte=to_date)
    return chats[:limit]
