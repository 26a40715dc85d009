"""Ids from requests: fetching one row the way the API promises (a malformed id, a missing id and
another tenant's id all give the same 404), and UUID query parameters."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from django.db.models import Model, QuerySet

from minirag.errors import InvalidInputError, NotFoundError

M = TypeVar("M", bound=Model)


def parse_uuid(value: Any) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def uuid_query_param(request: Any, name: str) -> uuid.UUID | None:
    """`?name=<uuid>` as a UUID; absent or empty is None, anything else a 422 naming the parameter."""
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    value = parse_uuid(raw)
    if value is None:
        raise InvalidInputError.for_field(name, "Must be a UUID.")
    return value


def only_row(queryset: QuerySet[M]) -> M | None:
    """The row of a queryset filtered on a unique key, or None. Like `first()` without its ORDER BY:
    compiling the model's ordering against every selected column (select_related included) is about
    a third of such a lookup's CPU, on every chat turn and every detail request."""
    return next(iter(queryset.order_by()[:1]), None)


def get_by_id_or_404(queryset: QuerySet[M], object_id: Any, *, label: str) -> M:
    parsed = parse_uuid(object_id)
    obj = only_row(queryset.filter(pk=parsed)) if parsed is not None else None
    if obj is None:
        raise NotFoundError(f"{label} not found.")
    return obj
