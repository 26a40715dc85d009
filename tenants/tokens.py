"""Credential formats: opaque API tokens and HS256 JWTs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass

import jwt
from django.conf import settings

API_TOKEN_PREFIX = "nrag_live_"
# How much of the token is kept in clear to recognise it in lists (prefix + 8 random chars).
DISPLAY_PREFIX_LENGTH = len(API_TOKEN_PREFIX) + 8
JWT_ALGORITHM = "HS256"
JWT_ISSUER = "minirag"


@dataclass(frozen=True)
class NewApiToken:
    raw: str
    prefix: str
    hash: str


def generate_api_token() -> NewApiToken:
    """`nrag_live_` + 32 random bytes, base64url without padding (43 characters)."""
    random_part = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    raw = API_TOKEN_PREFIX + random_part
    return NewApiToken(raw=raw, prefix=raw[:DISPLAY_PREFIX_LENGTH], hash=hash_api_token(raw))


def hash_api_token(raw: str) -> str:
    # 256 bits of randomness make a slow hash pointless; SHA-256 keeps lookups to one index probe.
    return hashlib.sha256(raw.encode()).hexdigest()


def looks_like_jwt(bearer: str) -> bool:
    """The dispatch rule of the API: a bearer containing a dot is a JWT, anything else a token."""
    return "." in bearer


# --- JWT --------------------------------------------------------------------------------------


class InvalidJWT(Exception):
    """Expired, malformed, or signed with another secret."""


@dataclass(frozen=True)
class JWTClaims:
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    role: str
    password_version: str
    auth_version: int
    expires_at: int


def password_version(password_hash: str) -> str:
    """A short fingerprint of the stored password hash: changing the password ends old sessions."""
    digest = hmac.new(settings.JWT_SECRET.encode(), password_hash.encode(), hashlib.sha256).hexdigest()
    return digest[:16]


def issue_jwt(
    *, user_id: uuid.UUID, tenant_id: uuid.UUID, role: str, password_hash: str, auth_version: int
) -> tuple[str, int]:
    """Returns (token, lifetime in seconds). `pwv` and `ver` tie the token to the account's
    credentials: a new password or email (User.auth_version) ends it."""
    now = int(time.time())
    ttl = settings.JWT_TTL_SECONDS
    claims = {
        "sub": str(user_id),
        "tid": str(tenant_id),
        "role": role,
        "pwv": password_version(password_hash),
        "ver": auth_version,
        "iss": JWT_ISSUER,
        "iat": now,
        "exp": now + ttl,
    }
    return jwt.encode(claims, settings.JWT_SECRET, algorithm=JWT_ALGORITHM), ttl


def decode_jwt(token: str) -> JWTClaims:
    try:
        claims = jwt.decode(
            token,
            settings.JWT_SECRET,
            algorithms=[JWT_ALGORITHM],
            issuer=JWT_ISSUER,
            options={"require": ["sub", "tid", "exp", "iat"]},
        )
        return JWTClaims(
            user_id=uuid.UUID(claims["sub"]),
            tenant_id=uuid.UUID(claims["tid"]),
            role=str(claims.get("role", "")),
            password_version=str(claims.get("pwv", "")),
            # Tokens issued before the claim existed carry none: version 0, the column's default.
            auth_version=_auth_version(claims.get("ver", 0)),
            expires_at=int(claims["exp"]),
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidJWT("Token has expired.") from exc
    except (jwt.InvalidTokenError, ValueError, TypeError, KeyError) as exc:
        raise InvalidJWT("Invalid token.") from exc


def _auth_version(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("ver must be a non-negative integer")
    return value
