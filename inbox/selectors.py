"""Reads for the inbox: who may answer visitors, who is online, and whether a person can answer.

Operators are the tenant's staff who may answer visitors in the bot's place: owners and admins
always; members while the tenant lets members read every chat (`Tenant.members_see_all_chats`,
which an owner turns off to keep members to their own chats — and then out of the inbox too).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, QuerySet, Subquery

from bots.models import BotProfile, Handoff
from chat.models import Chat, Message
from inbox import presence
from inbox.office_hours import office_hours_next_opening, office_hours_open
from tenants.authentication import Principal
from tenants.models import Role, Tenant, User, role_at_least


def user_may_operate(user: User) -> bool:
    """Whether `user`, acting as themselves, may answer visitors (see the module docstring)."""
    if not user.is_active or user.tenant_id is None:
        return False
    return role_at_least(user.role, Role.ADMIN) or user.tenant.members_see_all_chats


def may_operate(principal: Principal) -> bool:
    """Whether `principal` may take chats over, reply, release them and open the inbox."""
    return not principal.is_bot_token and user_may_operate(principal.user)


def operator_list(*, tenant: Tenant) -> QuerySet[User]:
    """The active users of `tenant` who may answer visitors."""
    users = User.objects.filter(tenant=tenant, is_active=True)
    if not tenant.members_see_all_chats:
        users = users.filter(role__in=[Role.OWNER, Role.ADMIN])
    return users


def operators_online(*, tenant: Tenant) -> list[uuid.UUID]:
    """The operators with the inbox open or who pinged within the presence window."""
    return presence.online_among(
        tenant_id=tenant.pk, user_ids=list(operator_list(tenant=tenant).values_list("pk", flat=True))
    )


@dataclass(frozen=True)
class Availability:
    """Whether a person can answer a hand-off now and, if not, when one can be expected."""

    available: bool
    within_office_hours: bool
    operators_online: int
    next_opening_at: dt.datetime | None  # the office's next opening when it is closed; else None


def handoff_availability(*, tenant: Tenant, bot: BotProfile, now: dt.datetime) -> Availability:
    within = office_hours_open(bot.office_hours, now)
    online = len(operators_online(tenant=tenant)) if within else 0
    return Availability(
        available=within and online > 0,
        within_office_hours=within,
        operators_online=online,
        next_opening_at=office_hours_next_opening(bot.office_hours, now),
    )


def handoff_enabled(bot: BotProfile) -> bool:
    return bot.handoff != Handoff.OFF


def inbox_waiting_count(*, tenant: Tenant) -> int:
    """Visitors waiting for a person (the header's counter on every dashboard page)."""
    return Chat.objects.filter(tenant=tenant, handling=Chat.Handling.NEEDS_HUMAN).count()


@dataclass(frozen=True)
class InboxFilters:
    """The inbox list's filters; empty means "any"."""

    bot_profile_id: uuid.UUID | None = None
    handling: str = ""  # a Chat.Handling value
    outcome: str = ""  # "refused": the bot refused a question in the chat; "answered": it never did
    feedback: str = ""  # a Message.Feedback value given to one of the chat's answers


# A chat's messages, for the list's annotations (lazy: evaluated inside the caller's tenant scope).
_chat_messages = Message.objects.filter(chat=OuterRef("pk"))
_last_message = _chat_messages.order_by("-created_at", "-id")


def inbox_chats(*, tenant: Tenant, filters: InboxFilters, recent: int = 50) -> list[Chat]:
    """The inbox list: visitors waiting for a person first (longest waiting first), then the chats
    a person handles, then the `recent` conversations the bot handles; most recently active first
    within each. Each chat carries `last_message`, `last_role`, `has_refusal` and
    `has_negative_feedback` (annotations), its bot and its operator, in one query per part."""
    chats = (
        Chat.objects.filter(tenant=tenant)
        .select_related("bot_profile", "assigned_to")
        .annotate(
            last_message=Subquery(_last_message.values("content")[:1]),
            last_role=Subquery(_last_message.values("role")[:1]),
            has_refusal=Exists(_chat_messages.filter(outcome=Message.Outcome.REFUSED)),
            has_negative_feedback=Exists(_chat_messages.filter(feedback=Message.Feedback.NEGATIVE)),
        )
    )
    if filters.bot_profile_id is not None:
        chats = chats.filter(bot_profile_id=filters.bot_profile_id)
    if filters.outcome == "refused":
        chats = chats.filter(has_refusal=True)
    elif filters.outcome == "answered":
        chats = chats.filter(has_refusal=False)
    if filters.feedback:
        chats = chats.filter(Exists(_chat_messages.filter(feedback=filters.feedback)))
    handlings = [filters.handling] if filters.handling else [choice for choice, _ in Chat.Handling.choices]
    listed: list[Chat] = []
    if Chat.Handling.NEEDS_HUMAN in handlings:
        listed += chats.filter(handling=Chat.Handling.NEEDS_HUMAN).order_by("handoff_requested_at", "pk")
    if Chat.Handling.HUMAN in handlings:
        listed += chats.filter(handling=Chat.Handling.HUMAN).order_by("-updated_at", "pk")
    if Chat.Handling.BOT in handlings:
        listed += chats.filter(handling=Chat.Handling.BOT).order_by("-updated_at", "pk")[:recent]
    return listed
