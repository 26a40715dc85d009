"""Rate limits whose rates are read from settings on every request (so they can be tuned by
environment and changed in tests), keyed by client address and stored in the shared cache
(Redis in production, so every process counts together)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle


def client_address(request: Request) -> str:
    """The caller's address as DRF's throttles see it (honours MINIRAG_NUM_PROXIES)."""
    return BaseThrottle().get_ident(request)


class ClientAddressThrottle(SimpleRateThrottle):
    def get_rate(self) -> str:
        return settings.THROTTLE_RATES[self.scope]

    def get_cache_key(self, request: Request, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class SignupThrottle(ClientAddressThrottle):
    scope = "signup"


class LoginThrottle(ClientAddressThrottle):
    scope = "login"
