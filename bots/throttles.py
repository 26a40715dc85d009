"""Per-tenant budgets for the tests an operator runs on a bot (the retrieval test, the model test):
each one calls a model, so a script cannot run them without bound. One budget per tenant and kind,
shared by the API route and the dashboard page; the rates are written like DRF's ("30/minute";
"0/minute" turns a limit off) in `settings.THROTTLE_RATES`."""

from __future__ import annotations

import uuid

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException

from minirag.rate_limits import Limit, RateLimited, hit

PERIOD_SECONDS = {"s": 1, "m": 60, "h": 60 * 60, "d": 24 * 60 * 60}
PERIOD_NAMES = {1: "second", 60: "minute", 60 * 60: "hour", 24 * 60 * 60: "day"}
# What each kind is called in the refusal.
TEST_NAMES = {"retrieval_test": "retrieval tests", "model_test": "model tests"}


class TooManyTests(APIException):
    """429 with `Retry-After` (DRF's handler adds the header from `wait`)."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "throttled"

    def __init__(self, kind: str, limit: Limit, wait_seconds: int) -> None:
        unit = "second" if wait_seconds == 1 else "seconds"
        period = PERIOD_NAMES[limit.window_seconds]
        super().__init__(
            f"Too many {TEST_NAMES[kind]} for this workspace: at most {limit.limit} per {period}. "
            f"Try again in {wait_seconds} {unit}."
        )
        self.wait = wait_seconds


def operator_test_limit(kind: str, tenant_id: uuid.UUID) -> Limit:
    count, period = settings.THROTTLE_RATES[kind].split("/", 1)
    return Limit(f"{kind.replace('_', '-')}:tenant:{tenant_id}", int(count), PERIOD_SECONDS[period.strip()[0]], "")


def count_operator_test(kind: str, tenant_id: uuid.UUID) -> None:
    """Count one test of `kind` ("retrieval_test", "model_test"), or raise `TooManyTests` without
    counting it."""
    try:
        hit([operator_test_limit(kind, tenant_id)])
    except RateLimited as exc:
        raise TooManyTests(kind, exc.limit, exc.wait) from None
