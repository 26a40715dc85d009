"""What a fetch returns, and how it fails."""

from __future__ import annotations

import email.utils
import http
import json as jsonlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from charset_normalizer import from_bytes


def status_phrase(status: int) -> str:
    """ "Not Found" for 404; "error" for a status HTTP does not name."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "error"


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait, from a Retry-After header (delay-seconds or an HTTP date)."""
    value = (value or "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class FetchError(Exception):
    """An outbound request failed. `message` is readable and safe to show to a tenant (it names the host, not
    the whole URL); `transient` says whether trying again later may succeed."""

    def __init__(
        self, message: str, *, transient: bool = False, status_code: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.status_code = status_code
        self.retry_after = retry_after  # seconds, from a Retry-After header

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep every attribute through pickling: Celery ships exceptions between processes.
        return (type(self), (self.message,), self.__dict__)


# The subclasses are never transient (the default): retrying cannot change the answer.
class BlockedDestinationError(FetchError):
    """The destination is not allowed: the SSRF guard."""


class InvalidURLError(BlockedDestinationError):
    """The URL is malformed, so it cannot be an allowed destination either."""


class ResponseTooLargeError(FetchError):
    """The body is larger than `max_bytes`, as sent or as decoded."""


class UnsupportedContentTypeError(FetchError):
    """The response's media type is not among `allowed_content_types`."""


@dataclass(frozen=True)
class FetchResponse:
    url: str  # final URL, after redirects
    status_code: int
    headers: httpx.Headers
    content: bytes
    content_type: str  # lowercased media type without parameters ("" if absent)
    charset: str | None
    elapsed_ms: int

    def text(self) -> str:
        """The body as text: with the declared charset, else UTF-8, else a detected one. Never raises."""
        try:
            return self.content.decode(self.charset or "utf-8", errors="replace" if self.charset else "strict")
        except (LookupError, UnicodeDecodeError):  # an unknown charset name, or not UTF-8
            best = from_bytes(self.content).best()
            return str(best) if best is not None else self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; `FetchError(transient=False)` if it is not valid JSON."""
        try:
            # Without a declared charset, json.loads(bytes) follows RFC 8259 (UTF-8/16/32 and BOMs).
            return jsonlib.loads(self.text().removeprefix("\ufeff") if self.charset else self.content)
        except (ValueError, RecursionError) as exc:
            detail = f": {exc.msg} at line {exc.lineno}" if isinstance(exc, jsonlib.JSONDecodeError) else ""
            host = httpx.URL(self.url).host
            raise FetchError(f"the response from {host} is not valid JSON{detail}", transient=False) from None
