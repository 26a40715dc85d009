"""Fetching one row by id the way the API promises: a malformed id, a missing id and another
tenant's id all give the same 404."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from django.db.models import Model, QuerySet

from minirag.errors import NotFoundError

M = TypeVar("M", bound=Model)


def parse_uuid(value: Any) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def get_by_id_or_404(queryset: QuerySet[M], object_id: Any, *, label: str) -> M:
    parsed = parse_uuid(object_id)
    obj = queryset.filter(pk=parsed).first() if parsed is not None else None
    if obj is None:
        raise NotFoundError(f"{label} not found.")
    return obj
