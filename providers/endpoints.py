"""The parts of a model endpoint that people type — its base URL, its key and extra headers — checked
and stored the same way for a bot's own endpoint (bots/services.py) and an operator's named
connection (providers/services.py). The key and the headers are stored Fernet-encrypted, together,
as `{"api_key": "...", "headers": {"X-Team": "..."}}`, and never shown again."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from minirag.crypto import decrypt_json, encrypt_json
from minirag.errors import InvalidInputError
from minirag.safe_http.validation import validated_public_url

CREDENTIAL_KEYS = frozenset({"api_key", "headers"})
MAX_HEADERS = 20
MAX_SECRET_CHARS = 4096
# An HTTP header name (RFC 9110 token); headers that would break or redirect the request are the
# HTTP client's to set.
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")
RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "upgrade", "te"})


def clean_api_base(value: Any, *, field: str = "api_base") -> str:
    """A blank value or an http(s) URL without credentials in it (the address is readable where the
    key is not: a key belongs in the write-only credentials). Where it may connect is the egress
    policy's to judge, with the models that use it."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return ""
    url = validated_public_url(value, field, resolve=False)
    if urlsplit(url).username is not None:
        raise InvalidInputError.for_field(
            field, 'Must not carry a user name or password: put the key in credentials ("api_key").'
        )
    return url.rstrip("/")


def clean_headers(value: Any, *, field: str = "credentials") -> dict[str, str]:
    if not isinstance(value, dict) or len(value) > MAX_HEADERS:
        raise InvalidInputError.for_field(
            field, f'"headers" must be an object of at most {MAX_HEADERS} header names and values.'
        )
    headers: dict[str, str] = {}
    for name, header_value in value.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name) or name.lower() in RESERVED_HEADERS:
            raise InvalidInputError.for_field(field, f"{str(name)[:100]!r} is not a header that may be set.")
        if (
            not isinstance(header_value, str)
            or not header_value.strip()
            or len(header_value) > MAX_SECRET_CHARS
            or any(char in header_value for char in "\r\n\x00")
        ):
            raise InvalidInputError.for_field(
                field, f"The header {name} needs a one-line value of at most {MAX_SECRET_CHARS} characters."
            )
        headers[name] = header_value.strip()
    return headers


def header_lines(lines: list[str]) -> dict[str, str]:
    """Headers typed one per line as `Name: value` (blank lines skipped); ValueError names a bad line.
    Names and values are checked when the credentials are stored (`clean_headers`)."""
    headers: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise ValueError(f"Line {number}: write each header as Name: value.")
        headers[name.strip()] = value.strip()
    return headers


def encrypt_credentials(credentials: dict[str, Any] | None, *, field: str = "credentials") -> str:
    """The ciphertext to store. `None` or `{}` clears; otherwise only known keys: `api_key` (a
    non-empty string) and `headers` (header names and one-line values)."""
    if not credentials:
        return ""
    if not isinstance(credentials, dict):
        raise InvalidInputError.for_field(field, 'Must be an object such as {"api_key": "..."}.')
    unknown = set(credentials) - CREDENTIAL_KEYS
    if unknown:
        raise InvalidInputError.for_field(
            field, f"Unknown keys: {', '.join(sorted(unknown))}. Allowed: {', '.join(sorted(CREDENTIAL_KEYS))}."
        )
    stored: dict[str, Any] = {}
    if "api_key" in credentials:
        key = credentials["api_key"]
        if not isinstance(key, str) or not key.strip() or len(key) > MAX_SECRET_CHARS:
            raise InvalidInputError.for_field(field, "'api_key' must be a non-empty string.")
        stored["api_key"] = key.strip()
    if credentials.get("headers") is not None:
        headers = clean_headers(credentials["headers"], field=field)
        if headers:
            stored["headers"] = headers
    return encrypt_json(stored) if stored else ""


def decrypt_credentials(ciphertext: str) -> dict[str, Any]:
    """The stored key and headers, for the model gateway only. Empty when none are set."""
    return decrypt_json(ciphertext) if ciphertext else {}
