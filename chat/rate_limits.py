"""Who may send how many chat messages through a bot (widget) token. Tenant tokens and logged-in
users are the tenant's own staff and are not limited here."""

from __future__ import annotations

import hashlib

from django.conf import settings

from minirag.rate_limits import DAY, MINUTE, Limit, hit
from tenants.models import ApiToken


def _short_hash(value: str) -> str:
    # Keys stay short and never carry a visitor's address in clear text.
    return hashlib.sha256(value.encode()).hexdigest()[:24]


def bot_token_chat_limits(*, token: ApiToken, visitor_id: str, client_address: str) -> list[Limit]:
    """The token's own limits, the visitor's (by visitor id, else by address) and the address's."""
    rates = token.chat_rate_limits()
    defaults = settings.CHAT_RATE_LIMITS
    token_key = f"chat:token:{token.pk}"
    visitor_key = f"{token_key}:visitor:{_short_hash(visitor_id or 'address:' + client_address)}"
    address_key = f"{token_key}:address:{_short_hash(client_address)}"
    return [
        Limit(token_key, rates["messages_per_minute"], MINUTE, "for this bot token"),
        Limit(token_key, rates["messages_per_day"], DAY, "for this bot token"),
        Limit(visitor_key, rates["visitor_messages_per_minute"], MINUTE, "from this visitor"),
        Limit(visitor_key, rates["visitor_messages_per_day"], DAY, "from this visitor"),
        Limit(address_key, defaults["address_per_minute"], MINUTE, "from this network address"),
        Limit(address_key, defaults["address_per_day"], DAY, "from this network address"),
    ]


def count_bot_token_message(*, token: ApiToken, visitor_id: str, client_address: str) -> None:
    """Count one message, or raise `RateLimited` (429 + Retry-After) without counting it."""
    hit(bot_token_chat_limits(token=token, visitor_id=visitor_id, client_address=client_address))
