"""Serializer fields stricter than DRF's defaults: wrong JSON types are errors, not coerced."""

from __future__ import annotations

import math
from typing import Any

from rest_framework import serializers
from rest_framework.fields import empty


class StrictCharField(serializers.CharField):
    """Accepts JSON strings only (DRF's CharField would turn 123 into "123")."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class FiniteFloatField(serializers.FloatField):
    """Rejects NaN and infinities, which would pass range validators."""

    default_error_messages = {"non_finite": "A finite number is required."}

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool):
            self.fail("invalid")
        value = super().to_internal_value(data)
        if not math.isfinite(value):
            self.fail("non_finite")
        return value


class StrictIntegerField(serializers.IntegerField):
    """Rejects booleans (DRF would read true as 1)."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


class OptionalBooleanField(serializers.BooleanField):
    """A boolean a request may leave out, in every encoding. DRF reads a boolean missing from a
    form-encoded or multipart body as false (an unticked HTML checkbox), so a form PATCH that
    only renamed a bot deactivated it, and a form POST created it inactive; here a missing
    boolean is missing, exactly as in JSON."""

    default_empty_html = empty
