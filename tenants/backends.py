"""Django authentication backend for dashboard logins (and the browsable API's session).

Email is unique per tenant, not globally, so a login names the tenant when the email is ambiguous:
`authenticate(request, username=email, password=..., tenant_slug=...)`. Without a slug, the login
succeeds only if exactly one account with that email has that password.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.backends import BaseBackend
from django.http import HttpRequest

from tenants.models import User, normalize_email
from tenants.tenancy import tenant_scope_disabled


def find_login_candidates(email: str, tenant_slug: str | None = None, *, operators: bool = True) -> list[User]:
    users = User.all_tenants.select_related("tenant").filter(email=normalize_email(email))
    if tenant_slug:
        users = users.filter(tenant__slug=tenant_slug)
    elif not operators:
        users = users.filter(tenant__isnull=False)
    with tenant_scope_disabled("login: find the accounts with this email in every tenant"):
        return list(users[:50])


def users_with_password(candidates: list[User], password: str) -> list[User]:
    """The candidates whose password matches. Always runs at least one hash, so an unknown
    email takes as long as a wrong password."""
    if not candidates:
        User().set_password(password)
        return []
    # check_password() may re-save the user with an upgraded hash, which is a tenant-owned write.
    with tenant_scope_disabled("login: verify a password, possibly upgrading its stored hash"):
        return [user for user in candidates if user.check_password(password)]


class TenantEmailBackend(BaseBackend):
    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        tenant_slug: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        email = username or kwargs.get("email")
        if not email or password is None:
            return None
        matches = users_with_password(find_login_candidates(email, tenant_slug), password)
        if len(matches) != 1:
            return None
        user = matches[0]
        if not user.is_active or (user.tenant is not None and not user.tenant.is_active):
            return None
        return user

    def get_user(self, user_id: Any) -> User | None:
        try:
            user_uuid = uuid.UUID(str(user_id))
        except ValueError:
            return None
        with tenant_scope_disabled("session: load the logged-in user"):
            user = User.all_tenants.select_related("tenant").filter(pk=user_uuid).first()
        if user is None or not user.is_active or (user.tenant is not None and not user.tenant.is_active):
            return None
        return user
