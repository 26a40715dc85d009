"""Signing MiniRAG webhook deliveries, and verifying them on the receiving side.

Standard library only, so a receiver can copy this file (or `pip install` MiniRAG and import
`webhooks.signing`) without Django. Every delivery carries two signatures of the exact body:

* ``X-MiniRAG-Signature: <hex>``: HMAC-SHA256(secret, body), what existing receivers check.
  It proves who sent the body, but a recorded request could be replayed later.
* ``X-MiniRAG-Timestamp: <unix seconds>`` and ``X-MiniRAG-Signature-256: t=<unix>,v1=<hex>``:
  HMAC-SHA256(secret, "<t>.<body>"). The timestamp is signed too, so a receiver that refuses
  old timestamps refuses replays. During a secret rotation a receiver may get several ``v1=``
  values; any one matching is enough.

Receivers::

    from webhooks.signing import verify, InvalidSignature
    try:
        verify(secret, request_body_bytes, request.headers)  # 5-minute tolerance by default
    except InvalidSignature as exc:
        return 400, str(exc)
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

SIGNATURE_HEADER = "X-MiniRAG-Signature"
TIMESTAMPED_SIGNATURE_HEADER = "X-MiniRAG-Signature-256"
TIMESTAMP_HEADER = "X-MiniRAG-Timestamp"
EVENT_HEADER = "X-MiniRAG-Event"
DELIVERY_HEADER = "X-MiniRAG-Delivery"
DEFAULT_TOLERANCE_SECONDS = 300


class InvalidSignature(Exception):
    """The delivery is not authentic, or too old to be trusted."""


def _hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def body_signature(secret: str, body: bytes) -> str:
    """The plain signature: lowercase hex HMAC-SHA256 of the body."""
    return _hmac_hex(secret, body)


def timestamped_signature(secret: str, body: bytes, timestamp: int) -> str:
    """The replay-safe signature: lowercase hex HMAC-SHA256 of "<timestamp>.<body>"."""
    return _hmac_hex(secret, str(timestamp).encode() + b"." + body)


def signature_headers(secret: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """The three signature headers of one delivery attempt (signed now unless `timestamp` is given)."""
    t = int(time.time()) if timestamp is None else timestamp
    return {
        SIGNATURE_HEADER: body_signature(secret, body),
        TIMESTAMP_HEADER: str(t),
        TIMESTAMPED_SIGNATURE_HEADER: f"t={t},v1={timestamped_signature(secret, body, t)}",
    }


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # a plain dict from a framework that does not fold header case
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def verify(
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> int:
    """Check the replay-safe signature of a delivery and return its timestamp.

    `body` must be the raw request body, byte for byte (not re-serialised JSON). Raises
    `InvalidSignature` when the header is missing or malformed, no signature matches, or the
    timestamp is more than `tolerance_seconds` away from now (either way, for skewed clocks)."""
    header = _header(headers, TIMESTAMPED_SIGNATURE_HEADER)
    if not header:
        raise InvalidSignature(f"missing {TIMESTAMPED_SIGNATURE_HEADER} header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        raise InvalidSignature(f"malformed {TIMESTAMPED_SIGNATURE_HEADER} header")
    expected = timestamped_signature(secret, body, timestamp)
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise InvalidSignature("signature does not match")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise InvalidSignature(f"timestamp is outside the {tolerance_seconds} s tolerance (replayed or clock skew)")
    return timestamp


def verify_body_signature(secret: str, body: bytes, headers: Mapping[str, str]) -> None:
    """Check the plain `X-MiniRAG-Signature` only (no replay protection; prefer `verify`)."""
    received = _header(headers, SIGNATURE_HEADER) or ""
    if not hmac.compare_digest(body_signature(secret, body), received.strip().lower()):
        raise InvalidSignature(f"{SIGNATURE_HEADER} does not match")
