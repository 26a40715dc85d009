"""Reads for the inbox: who may answer visitors, who is online, and whether a person can answer.

Operators are the tenant's staff who may answer visitors in the bot's place: owners and admins
always; members while the tenant lets members read every chat (`Tenant.members_see_all_chats`,
which an owner turns off to keep members to their own chats — and then out of the inbox too).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.db.models import QuerySet

from bots.models import BotProfile, Handoff
from inbox import presence
from inbox.office_hours import office_hours_next_opening, office_hours_open
from tenants.authentication import Principal
from tenants.models import Role, Tenant, User, role_at_least


def may_operate(principal: Principal) -> bool:
    """Whether `principal` may take chats over, reply, release them and open the inbox."""
    if principal.is_bot_token or not principal.user.is_active:
        return False
    return role_at_least(principal.role, Role.ADMIN) or principal.tenant.members_see_all_chats


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
