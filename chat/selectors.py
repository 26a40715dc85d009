"""Reads for chats and messages, and who may read which conversation.

The rule, in one place (`readable_chats`): owners and admins read every chat of their tenant;
members too, unless an owner turned the tenant's `members_see_all_chats` off, in which case a
member reads only the chats they started themselves (`Chat.started_by_user`, with any of their
credentials); a bot (widget) token reads only the chats it started with its bot for the same
visitor. A chat the caller may not read is a 404, exactly like one that does not exist.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.db.models import QuerySet

from chat.models import Chat, Message
from minirag.lookups import get_by_id_or_404
from tenants.authentication import Principal
from tenants.models import Role, User, role_at_least


def own_chats_only(principal: Principal) -> User | None:
    """The user whose own chats are all `principal` may read, or None when it may read every
    chat of the tenant (owners, admins, and members while `members_see_all_chats` is on). Bot
    tokens are narrower still and are handled by `readable_chats`."""
    if principal.is_bot_token or role_at_least(principal.role, Role.ADMIN):
        return None
    return None if principal.tenant.members_see_all_chats else principal.user


# What a chat is shown with (ChatSerializer): its bot's hand-off settings, its assignee's name.
CHAT_SHOWN_WITH = ("assigned_to", "bot_profile")


def readable_chats(*, principal: Principal, visitor_id: str = "") -> QuerySet[Chat]:
    """Every chat `principal` may read (and continue, rate, export): see the module's rule.
    `visitor_id` is the widget's X-MiniRAG-Visitor, which binds a bot token's chats to one
    browser so one site's visitors never read each other's conversations."""
    chats = Chat.objects.filter(tenant=principal.tenant)
    if principal.is_bot_token:
        return chats.filter(
            started_by_token=principal.api_token, bot_profile_id=principal.bot_profile_id, visitor_id=visitor_id
        )
    owner_of_chats = own_chats_only(principal)
    if owner_of_chats is not None:
        return chats.filter(started_by_user=owner_of_chats)
    return chats


def chat_list(*, principal: Principal, bot_profile_id: uuid.UUID | None = None) -> QuerySet[Chat]:
    chats = readable_chats(principal=principal).select_related(*CHAT_SHOWN_WITH).order_by("-updated_at")
    if bot_profile_id is not None:
        chats = chats.filter(bot_profile_id=bot_profile_id)
    return chats


def chat_get_for(
    *,
    principal: Principal,
    chat_id: Any,
    visitor_id: str = "",
    lock: bool = False,
    related: tuple[str, ...] = CHAT_SHOWN_WITH,
    **annotations: Any,
) -> Chat:
    """A chat the caller may read; anything else is a 404, exactly like a chat that does not exist.
    With `lock`, its row stays locked until the transaction ends (in the same statement); with
    `annotations`, read in the same statement too; so are the `related` rows (by default what a
    chat is shown with). A caller that needs fewer names them: each of their columns costs the
    compiler and the row's decoding."""
    chats = readable_chats(principal=principal, visitor_id=visitor_id)
    if related:  # (`select_related()` without names would follow every relation)
        chats = chats.select_related(*related)
    if lock:
        chats = chats.select_for_update(of=("self",))
    if annotations:
        chats = chats.annotate(**annotations)
    return get_by_id_or_404(chats, chat_id, label="Chat")


def chat_messages(*, chat: Chat) -> QuerySet[Message]:
    """Oldest first."""
    return Message.objects.filter(tenant_id=chat.tenant_id, chat=chat).order_by("created_at", "id")


def message_get(*, chat: Chat, message_id: Any) -> Message:
    return get_by_id_or_404(chat_messages(chat=chat), message_id, label="Message")


def recent_history(*, chat: Chat, turns: int) -> list[dict[str, str]]:
    """The last `turns` exchanges, oldest first, for the prompt. An operator spoke in the bot's
    place, so their messages are the assistant's turns to the model."""
    if turns <= 0:
        return []
    recent = list(chat_messages(chat=chat).order_by("-created_at", "-id").values("role", "content")[: turns * 2])
    return [
        {
            "role": Message.Role.ASSISTANT.value if row["role"] == Message.Role.OPERATOR else row["role"],
            "content": row["content"],
        }
        for row in reversed(recent)
    ]


def chats_for_export(
    *,
    principal: Principal,
    bot_profile_id: uuid.UUID | None,
    from_date: dt.date | None,
    to_date: dt.date | None,
    limit: int,
) -> QuerySet[Chat]:
    chats = chat_list(principal=principal, bot_profile_id=bot_profile_id)
    if from_date is not None:
        chats = chats.filter(created_at__date__gte=from_date)
    if to_date is not None:
        chats = chats.filter(created_at__date__lte=to_date)
    return chats[:limit]
