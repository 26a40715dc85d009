"""Checking a URL a tenant saves (a page to ingest, a webhook endpoint) before it is stored."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from minirag.errors import InvalidInputError
from minirag.safe_http.destinations import MAX_URL_LENGTH, check_url
from minirag.safe_http.responses import BlockedDestinationError, FetchError


def validated_public_url(value: Any, field: str, *, resolve: bool = True) -> str:
    """`value` stripped, if it is an http(s) URL whose host resolves to allowed addresses only.

    A blocked destination is a 422 naming `field`; a host that cannot be resolved right now is
    accepted (DNS may be having a moment) because every fetch checks the destination again.
    `resolve=False` checks the form only (for URLs the product found itself, e.g. a sitemap's
    pages: their fetch is refused, with the same message, if the host points somewhere private)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError.for_field(field, "A URL is required.")
    url = value.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > MAX_URL_LENGTH:
        raise InvalidInputError.for_field(field, f"Must be an http(s) URL of at most {MAX_URL_LENGTH} characters.")
    if not resolve:
        return url
    try:
        check_url(url)
    except BlockedDestinationError as exc:
        raise InvalidInputError.for_field(field, exc.message) from None
    except FetchError:
        pass
    return url
