"""Structured logs: a stdlib JSON formatter and the id of the request being served.

`MINIRAG_LOG_FORMAT=json` (the Docker image's default) writes one JSON object per line:

    {"timestamp": "2026-01-31T12:00:00.123Z", "level": "INFO", "logger": "sources.ingestion",
     "message": "...", "pid": 7, "request_id": "4f0c...", "exc_info": "Traceback ..."}

`request_id` is present while a request is served (set by `minirag.metrics.RequestObservabilityMiddleware`,
taken from a well-formed incoming `X-Request-ID` or generated, and echoed in the response);
`exc_info` only when an exception is logged. Extra fields passed with `extra={...}` are kept when
their values are plain JSON scalars. This module imports nothing beyond the standard library, so
gunicorn's master process can use the formatter before the application is loaded.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any

_request_id: ContextVar[str | None] = ContextVar("minirag_request_id", default=None)
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime", "taskName"}
)
# Never copied from `extra=`: objects (Django's `request`), uvicorn's coloured duplicate of the
# message, and anything that looks like a secret.
_SKIPPED_EXTRAS = frozenset(
    {"request", "response", "scope", "color_message", "password", "token", "secret", "authorization"}
)


def current_request_id() -> str | None:
    return _request_id.get()


def accept_request_id(incoming: str | None) -> str:
    """The id to use for a request: a well-formed incoming `X-Request-ID` (from the TLS proxy, say)
    or a fresh one. Anything else is replaced, so a client cannot inject text into the logs."""
    if incoming and _VALID_REQUEST_ID.match(incoming):
        return incoming
    return uuid.uuid4().hex


def bind_request_id(request_id: str) -> Token[str | None]:
    return _request_id.set(request_id)


def unbind_request_id(token: Token[str | None]) -> None:
    _request_id.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, UTC timestamps with milliseconds."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, tz=UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        request_id = _request_id.get()
        if request_id:
            entry["request_id"] = request_id
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, _http_version, status = record.args
            entry["http"] = {"client": client, "method": method, "path": path, "status": status}
        for key, value in vars(record).items():
            if key in _STANDARD_ATTRIBUTES or key in _SKIPPED_EXTRAS or key.startswith("_") or key in entry:
                continue
            if value is None or isinstance(value, str | int | float | bool):
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)
