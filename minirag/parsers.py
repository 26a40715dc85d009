"""Request parsers."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from minirag.errors import PayloadTooLargeError


def _reject_non_finite(token: str) -> None:
    raise ParseError(f"JSON parse error: {token} is not a valid JSON number.")


class BoundedJSONParser(JSONParser):
    """JSON with a size cap, read incrementally: an oversized body is refused with 413 after at
    most `MINIRAG_MAX_JSON_BODY_BYTES` + 1 bytes, never loaded whole into memory first."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        if stream is None:
            return {}
        limit = settings.MAX_JSON_BODY_BYTES
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise PayloadTooLargeError(f"Request body is larger than the {limit} byte limit.")
        if not body.strip():
            return {}
        try:
            return json.loads(body.decode("utf-8"), parse_constant=_reject_non_finite)
        except UnicodeDecodeError as exc:
            raise ParseError("Request body is not valid UTF-8.") from exc
        except json.JSONDecodeError as exc:
            raise ParseError(f"JSON parse error: {exc.msg} (line {exc.lineno}, column {exc.colno}).") from exc
