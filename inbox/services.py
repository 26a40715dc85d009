"""Writes of the hand-off: a visitor (or staff) asks for a person, an operator takes the chat
over, replies, and hands it back to the bot.

    bot ──handoff──▶ needs_human ──takeover──▶ human
     ▲                   │                       │
     └──────release──────┴───────release─────────┘
    (takeover also works straight from `bot`: an operator who watches may step in)

Each transition locks the chat row, is idempotent (asking again while waiting, taking over a chat
one already holds, releasing a chat the bot handles change nothing), and publishes what changed
on the chat's and the inbox's event channels once it commits (inbox/events.py). The visitor's own
messages while a person handles the chat are stored by the chat turn (chat/services.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from bots.models import BotProfile
from chat.models import Chat, Message
from chat.serializers import ChatSerializer, MessageSerializer
from chat.services import count_on_chat
from inbox.events import HANDLING_EVENT, HANDOFF_REQUESTED_EVENT, MESSAGE_EVENT, publish_on_commit
from inbox.selectors import Availability, handoff_availability, handoff_enabled
from minirag.errors import ConflictError
from tenants.models import Tenant, User
from webhooks import events as webhook_events

OPERATOR_FALLBACK_NAME = "Support"


@dataclass(frozen=True)
class HandoffOutcome:
    chat: Chat
    availability: Availability
    newly_requested: bool


def _locked(chat: Chat) -> Chat:
    return (
        Chat.objects.select_for_update(of=("self",))
        .select_related("assigned_to")
        .get(tenant_id=chat.tenant_id, pk=chat.pk)
    )


def _publish_state(chat: Chat, event: str = HANDLING_EVENT) -> None:
    publish_on_commit(chat.tenant_id, chat.pk, event, ChatSerializer(chat).data)


def operator_display_name(user: User) -> str:
    """The name visitors see on an operator's messages: never their email address."""
    return (user.display_name or "").strip() or OPERATOR_FALLBACK_NAME


@transaction.atomic
def chat_handoff_request(*, tenant: Tenant, chat: Chat, by_visitor: bool, email: str = "") -> HandoffOutcome:
    """`bot` → `needs_human` (409 when the bot's hand-off is off). `email`, when given, is kept on
    the chat (a later call may add it). Fires `chat.handoff_requested` once per hand-off."""
    chat = _locked(chat)
    bot = BotProfile.objects.get(tenant=tenant, pk=chat.bot_profile_id)
    if not handoff_enabled(bot):
        raise ConflictError("This bot does not hand chats over to a person: its handoff setting is off.")
    now = timezone.now()
    availability = handoff_availability(tenant=tenant, bot=bot, now=now)
    changed: list[str] = []
    if email and email != chat.contact_email:
        chat.contact_email = email
        changed.append("contact_email")
    newly = chat.handling == Chat.Handling.BOT
    if newly:
        chat.handling = Chat.Handling.NEEDS_HUMAN
        chat.handoff_requested_at = now
        chat.taken_over_at = None
        chat.assigned_to = None
        changed += ["handling", "handoff_requested_at", "taken_over_at", "assigned_to"]
    if changed:
        chat.save(update_fields=[*changed, "updated_at"])
    if newly:
        webhook_events.chat_handoff_requested(
            chat=chat,
            requested_by="visitor" if by_visitor else "staff",
            available=availability.available,
            next_opening_at=availability.next_opening_at,
        )
        _publish_state(chat, HANDOFF_REQUESTED_EVENT)
    elif changed:
        _publish_state(chat)
    return HandoffOutcome(chat=chat, availability=availability, newly_requested=newly)


@transaction.atomic
def chat_take_over(*, tenant: Tenant, chat: Chat, operator: User) -> Chat:
    """→ `human`, assigned to `operator` (from `bot`, `needs_human`, or another operator)."""
    chat = _locked(chat)
    if chat.handling == Chat.Handling.HUMAN and chat.assigned_to_id == operator.pk:
        return chat
    if chat.handling != Chat.Handling.HUMAN:
        chat.taken_over_at = timezone.now()
    chat.handling = Chat.Handling.HUMAN
    chat.assigned_to = operator
    chat.save(update_fields=["handling", "assigned_to", "taken_over_at", "updated_at"])
    _publish_state(chat)
    return chat


@transaction.atomic
def chat_release(*, tenant: Tenant, chat: Chat) -> Chat:
    """→ `bot`: the bot answers the visitor's next message again."""
    chat = _locked(chat)
    if chat.handling == Chat.Handling.BOT:
        return chat
    chat.handling = Chat.Handling.BOT
    chat.assigned_to = None
    chat.released_at = timezone.now()
    chat.save(update_fields=["handling", "assigned_to", "released_at", "updated_at"])
    _publish_state(chat)
    return chat


@transaction.atomic
def operator_reply(*, tenant: Tenant, chat: Chat, operator: User, content: str) -> Message:
    """An operator's message (role `operator`), on a chat a person handles (409 otherwise)."""
    chat = _locked(chat)
    if chat.handling != Chat.Handling.HUMAN:
        raise ConflictError("Take the chat over first (POST /v1/chat/{id}/takeover): the bot is handling it.")
    message = Message.objects.create(
        tenant=tenant,
        chat=chat,
        role=Message.Role.OPERATOR,
        content=content,
        author=operator,
        author_name=operator_display_name(operator),
    )
    count_on_chat(chat.pk, messages=1)
    publish_on_commit(tenant.pk, chat.pk, MESSAGE_EVENT, MessageSerializer(message).data)
    return message
