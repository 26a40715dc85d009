"""Asking for the current password before a person changes their own email or password.

A JWT (or an open dashboard session) proves someone holds a credential, not that they know the
password: without this check, a stolen 8-hour JWT could set a new password and keep the account.
Wrong answers are counted per account (not per address, so rotating addresses does not help) in
the shared cache; once `THROTTLE_RATES["current_password"]` wrong answers have been given within
its period, every further attempt is refused with 429 **before** the password is checked, so the
check cannot be used to guess the password — a right guess answers exactly like a wrong one.

Like the login throttle, the count fails open (with a logged warning) when the cache is down:
login would not be limited then either, so failing closed here would protect nothing.
"""

from __future__ import annotations

import math
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework import status
from rest_framework.exceptions import APIException

from minirag.errors import InvalidInputError
from minirag.rate_limits import CACHE_OUTAGES, warn_cache_outage
from tenants.models import User

FIELD = "current_password"
MISSING = "Give your current password to change your own email or password."
WRONG = "The current password is not correct."
PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class TooManyWrongPasswords(APIException):
    """429 with `Retry-After` (DRF's handler adds the header from `wait`)."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "throttled"

    def __init__(self, wait_seconds: int) -> None:
        unit = "second" if wait_seconds == 1 else "seconds"
        super().__init__(f"Too many wrong current passwords for this account. Try again in {wait_seconds} {unit}.")
        self.wait = wait_seconds


def failure_limit() -> tuple[int, int]:
    """(wrong answers allowed, period in seconds), from a DRF-style rate such as `10/hour`."""
    count, period = settings.THROTTLE_RATES["current_password"].split("/")
    return int(count), PERIODS[period.strip()[0]]


def _window(user: User, now: float) -> tuple[str, int]:
    """This period's cache key for the account, and the seconds until the period ends."""
    _, period = failure_limit()
    index, elapsed = divmod(now, period)
    return f"current-password-failures:{user.pk}:{int(index)}", max(1, math.ceil(period - elapsed))


def _refuse_if_exhausted(user: User, now: float) -> None:
    allowed, _ = failure_limit()
    key, wait = _window(user, now)
    try:
        failures = cache.get(key) or 0
    except CACHE_OUTAGES as exc:
        warn_cache_outage("The current-password limit", exc)
        return
    if failures >= allowed:
        raise TooManyWrongPasswords(wait)


def _count_failure(user: User, now: float) -> None:
    _, period = failure_limit()
    key, _ = _window(user, now)
    try:
        cache.add(key, 0, timeout=period + 60)
        cache.incr(key)
    except ValueError:  # the key expired between add and incr
        cache.set(key, 1, timeout=period + 60)
    except CACHE_OUTAGES as exc:
        warn_cache_outage("The current-password limit", exc)


def verify_current_password(*, user: User, password: str | None) -> None:
    """Pass if `password` is `user`'s current password. Otherwise raise: 422 naming
    `current_password` when it is missing or wrong (a wrong one is counted), 429 when the
    account has had too many wrong ones lately."""
    if not password:
        raise InvalidInputError.for_field(FIELD, MISSING)
    now = time.time()
    _refuse_if_exhausted(user, now)
    if not user.check_password(password):
        _count_failure(user, now)
        raise InvalidInputError.for_field(FIELD, WRONG)
