"""Reads for bot profiles."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from bots.models import BotProfile
from minirag.errors import InvalidInputError
from minirag.lookups import get_by_id_or_404, only_row, parse_uuid
from tenants.models import Tenant


def bot_profile_list(*, tenant: Tenant) -> QuerySet[BotProfile]:
    """Every bot of the tenant, inactive ones included, newest first."""
    return BotProfile.objects.filter(tenant=tenant).select_related("connection").order_by("-created_at")


def bot_profile_get(*, tenant: Tenant, bot_profile_id: Any) -> BotProfile:
    return get_by_id_or_404(bot_profile_list(tenant=tenant), bot_profile_id, label="Bot profile")


def bot_profile_reference(*, tenant: Tenant, bot_profile_id: Any, field: str = "bot_profile_id") -> BotProfile:
    """A bot named in a request *body*: unknown or another tenant's is invalid input (422),
    worded exactly alike so another tenant's id cannot be confirmed."""
    parsed = parse_uuid(bot_profile_id)
    bot = only_row(bot_profile_list(tenant=tenant).filter(pk=parsed)) if parsed else None
    if bot is None:
        raise InvalidInputError.for_field(field, "Bot profile not found.")
    return bot


def bot_profile_counts(tenant: Tenant) -> dict[str, Any]:
    bots = bot_profile_list(tenant=tenant)
    return {"bot_profiles": {"total": bots.count(), "active": bots.filter(is_active=True).count()}}
