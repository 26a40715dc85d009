"""Who is calling: API tokens, JWTs and dashboard sessions, resolved to a `Principal`.

`request.user` is the person behind the credential and `request.auth` the `Principal`, which
carries the tenant the request acts for. The base API view enters that tenant's scope right
after authentication (tenants/api.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication, get_authorization_header
from rest_framework.request import Request

from minirag.lookups import only_row
from tenants import credential_cache
from tenants.models import ApiToken, Tenant, User
from tenants.tenancy import tenant_scope_disabled
from tenants.tokens import InvalidJWT, decode_jwt, hash_api_token, looks_like_jwt, password_version

AuthMethod = Literal["api_token", "jwt", "session"]


@dataclass(frozen=True)
class Principal:
    """The authenticated caller as the API sees it."""

    tenant: Tenant
    user: User
    method: AuthMethod
    api_token: ApiToken | None = None

    @property
    def is_bot_token(self) -> bool:
        return self.api_token is not None and self.api_token.bot_profile_id is not None

    @property
    def bot_profile_id(self) -> uuid.UUID | None:
        return self.api_token.bot_profile_id if self.api_token is not None else None

    @property
    def role(self) -> str | None:
        """The role the request acts with: the user's *current* role; none for a bot token."""
        return None if self.is_bot_token else self.user.role


def _check_active(user: User, tenant: Tenant) -> None:
    if not tenant.is_active:
        raise exceptions.PermissionDenied("This tenant is disabled.")
    if not user.is_active:
        raise exceptions.PermissionDenied("This user is disabled.")


class BearerAuthentication(BaseAuthentication):
    """`Authorization: Bearer <credential>`: a JWT if it contains a dot, otherwise an API token."""

    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[User, Principal] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid Authorization header: expected 'Bearer <token>'.")
        try:
            credential = parts[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("Invalid token.") from exc
        if looks_like_jwt(credential):
            return self._authenticate_jwt(credential)
        return self._authenticate_api_token(request, credential)

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="minirag"'

    def _authenticate_api_token(self, request: Request, raw: str) -> tuple[User, Principal]:
        token_hash = hash_api_token(raw)
        epoch = credential_cache.current_epoch()  # before the rows: a change meanwhile moves it past them
        token = credential_cache.cached_token(token_hash, epoch)
        if token is None:
            with tenant_scope_disabled("authentication: find the API token, whichever tenant it belongs to"):
                token = only_row(ApiToken.all_tenants.select_related("tenant", "user").filter(token_hash=token_hash))
            if token is not None:
                credential_cache.remember(token_hash, token, epoch)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid API token.")
        if not token.is_active:
            raise exceptions.AuthenticationFailed("This API token has been revoked.")
        now = timezone.now()
        if token.is_expired(now):
            raise exceptions.AuthenticationFailed("This API token has expired.")
        if not token.tenant.is_active:
            raise exceptions.PermissionDenied("This tenant is disabled.")
        # A tenant token acts with its creator's current role, so it dies with the creator's
        # account. A bot token is the site's widget credential and does not.
        if not token.is_bot_token and not token.user.is_active:
            raise exceptions.PermissionDenied("The user who created this API token is disabled.")
        if token.is_bot_token:
            _check_bot_token_origin(token, request.headers.get("Origin"))
        _touch_last_used(token, now)
        return token.user, Principal(tenant=token.tenant, user=token.user, method="api_token", api_token=token)

    def _authenticate_jwt(self, raw: str) -> tuple[User, Principal]:
        try:
            claims = decode_jwt(raw)
        except InvalidJWT as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from exc
        with tenant_scope_disabled("authentication: load the JWT's user"):
            user = only_row(User.all_tenants.select_related("tenant").filter(pk=claims.user_id))
        if user is None or user.tenant_id != claims.tenant_id or user.tenant is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        # A disabled account says so (403) before anything else.
        _check_active(user, user.tenant)
        # A new password (anywhere: API, dashboard, manage.py) changes the hash; a new email, a
        # password set through the services or a deactivation moves auth_version.
        if password_version(user.password) != claims.password_version or user.auth_version != claims.auth_version:
            raise exceptions.AuthenticationFailed(
                "This session has ended (the account's password or email changed); log in again."
            )
        return user, Principal(tenant=user.tenant, user=user, method="jwt")


def _check_bot_token_origin(token: ApiToken, origin: str | None) -> None:
    """Browsers always send `Origin` on cross-origin calls (and on same-origin POSTs): a bot token
    works only from the origins it lists, and from none when it lists none. A call without
    `Origin` is not from a browser page (a server, curl) and is left to the rate limits."""
    if origin is None or token.allows_origin(origin):
        return
    shown = origin[:200]
    if not token.allowed_origins:
        raise exceptions.PermissionDenied(
            f"This bot token has no allowed origins, so no web page may use it (this one is {shown}). "
            "Add the site's origin to the token's allowed_origins."
        )
    raise exceptions.PermissionDenied(
        f"This bot token may not be used from {shown}: that origin is not in the token's allowed_origins."
    )


def _touch_last_used(token: ApiToken, now: timezone.datetime) -> None:
    """Write last_used_at at most once per resolution window, whatever the request rate: the
    conditional UPDATE lets exactly one of many concurrent requests win, and most requests skip
    the database write entirely."""
    resolution = timedelta(seconds=settings.TOKEN_LAST_USED_RESOLUTION_SECONDS)
    if token.last_used_at is not None and now - token.last_used_at < resolution:
        return
    with tenant_scope_disabled("authentication: record when the token was last used"):
        ApiToken.all_tenants.filter(pk=token.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - resolution)
        ).update(last_used_at=now)
    token.last_used_at = now
    credential_cache.used(token.token_hash, now)


class TenantSessionAuthentication(SessionAuthentication):
    """A user logged in to the dashboard may use the browsable API for their own tenant."""

    def authenticate(self, request: Request) -> tuple[User, Principal] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        user: User = result[0]
        if user.tenant_id is None:
            raise exceptions.PermissionDenied(
                "Platform operator accounts have no tenant: use /dashboard/, or a tenant user or API token."
            )
        tenant = Tenant.objects.get(pk=user.tenant_id)
        _check_active(user, tenant)
        return user, Principal(tenant=tenant, user=user, method="session")
