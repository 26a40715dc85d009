"""Request parsers."""

from __future__ import annotations

import json
import math
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from minirag.errors import PayloadTooLargeError

# No request of this API nests deeper than a handful of levels; anything past this is refused
# before a serializer (or anything recursive) sees it.
MAX_JSON_DEPTH = 64
# No field of this API takes a number this long. Python refuses to convert integers of more than
# 4,300 digits (a ValueError mid-parse, which would be a 500), and converting long ones costs time
# quadratic in their length: both are refused as bad JSON.
MAX_JSON_NUMBER_DIGITS = 100


def _reject_non_finite(token: str) -> None:
    raise ParseError(f"JSON parse error: {token} is not a valid JSON number.")


def _bounded_int(token: str) -> int:
    if len(token) > MAX_JSON_NUMBER_DIGITS:
        raise ParseError(f"JSON parse error: a number has more than {MAX_JSON_NUMBER_DIGITS} digits.")
    return int(token)


def _finite_float(token: str) -> float:
    value = float(token)  # never raises for a token the decoder matched; 1e999 is inf
    if len(token) > MAX_JSON_NUMBER_DIGITS or not math.isfinite(value):
        raise ParseError(f"JSON parse error: {token[:20]}... is not a number this API accepts.")
    return value


def _too_deep(value: Any, limit: int) -> bool:
    """Whether `value` nests objects/arrays more than `limit` levels deep (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


class BoundedJSONParser(JSONParser):
    """JSON with a size cap, read incrementally: an oversized body is refused with 413 after at
    most `MINIRAG_MAX_JSON_BODY_BYTES` + 1 bytes, never loaded whole into memory first. Bodies
    nested more than `MAX_JSON_DEPTH` levels deep are refused with 400."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        if stream is None:
            return {}
        limit = settings.MAX_JSON_BODY_BYTES
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise PayloadTooLargeError(f"Request body is larger than the {limit} byte limit.")
        if not body.strip():
            return {}
        too_deep = ParseError(f"JSON parse error: the body is nested more than {MAX_JSON_DEPTH} levels deep.")
        try:
            data = json.loads(
                body.decode("utf-8"),
                parse_constant=_reject_non_finite,
                parse_int=_bounded_int,
                parse_float=_finite_float,
            )
        except UnicodeDecodeError as exc:
            raise ParseError("Request body is not valid UTF-8.") from exc
        except json.JSONDecodeError as exc:
            raise ParseError(f"JSON parse error: {exc.msg} (line {exc.lineno}, column {exc.colno}).") from exc
        except RecursionError:  # thousands of levels: the decoder gave up before our own check could run
            raise too_deep from None
        if isinstance(data, dict | list) and _too_deep(data, MAX_JSON_DEPTH):
            raise too_deep
        return data
