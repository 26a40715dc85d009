"""List pagination of the v1 contract: a plain JSON array, `limit`/`offset` query parameters,
and the total in the `X-Total-Count` header."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response

from minirag.errors import InvalidInputError


def int_query_param(request: Request, name: str, default: int, minimum: int, maximum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInputError.for_field(name, "Must be an integer.") from None
    if not minimum <= value <= maximum:
        raise InvalidInputError.for_field(name, f"Must be between {minimum} and {maximum}.")
    return value


class ArrayLimitOffsetPagination(BasePagination):
    default_limit = 50
    max_limit = 1000
    total: int

    def paginate_queryset(self, queryset: QuerySet | list, request: Request, view: Any = None) -> list:
        max_limit = getattr(view, "max_page_limit", self.max_limit)
        limit = int_query_param(request, "limit", min(self.default_limit, max_limit), 1, max_limit)
        offset = int_query_param(request, "offset", 0, 0, 2**31 - 1)
        page = list(queryset[offset : offset + limit])
        if not isinstance(queryset, QuerySet):
            self.total = len(queryset)
        elif len(page) < limit and (page or offset == 0):
            # The page reaches the end of the list: the total is known without a COUNT, the
            # common case (a bot's sources, a chat's messages) at one statement less.
            self.total = offset + len(page)
        else:
            self.total = queryset.count()
        return page

    def get_paginated_response(self, data: Any) -> Response:
        return Response(data, headers={"X-Total-Count": str(self.total)})

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return schema

    def get_schema_operation_parameters(self, view: Any) -> list[dict]:
        max_limit = getattr(view, "max_page_limit", self.max_limit)
        return [
            {
                "name": "limit",
                "required": False,
                "in": "query",
                "description": f"Page size (default {min(self.default_limit, max_limit)}, max {max_limit}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": max_limit},
            },
            {
                "name": "offset",
                "required": False,
                "in": "query",
                "description": "Number of items to skip. The total is in the X-Total-Count header.",
                "schema": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
            },
        ]
