"""Rate limits whose rates are read from settings on every request (so they can be tuned by
environment and changed in tests), keyed by client address and stored in the shared cache
(Redis in production, so every process counts together). Like the chat limits, they fail open
with a logged warning when the cache is down (minirag/rate_limits.py says why)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from minirag.rate_limits import CACHE_OUTAGES, warn_cache_outage

UNKNOWN_ADDRESS = "unknown"


def client_address(request: Request) -> str:
    """The caller's address as DRF's throttles see it (honours MINIRAG_NUM_PROXIES); `unknown`
    when the server passed none (an ASGI server on a Unix socket gives no client address), so
    such callers share one address bucket instead of crashing the rate limits."""
    return BaseThrottle().get_ident(request) or UNKNOWN_ADDRESS


class ClientAddressThrottle(SimpleRateThrottle):
    def get_rate(self) -> str:
        return settings.THROTTLE_RATES[self.scope]

    def allow_request(self, request: Request, view: Any) -> bool:
        try:
            return super().allow_request(request, view)
        except CACHE_OUTAGES as exc:
            warn_cache_outage(f"The {self.scope} rate limit", exc)
            return True

    def get_cache_key(self, request: Request, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class SignupThrottle(ClientAddressThrottle):
    scope = "signup"


class LoginThrottle(ClientAddressThrottle):
    scope = "login"
