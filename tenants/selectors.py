"""Reads for users and API tokens. The explicit tenant filter lives here."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from minirag.lookups import get_by_id_or_404
from tenants.models import ApiToken, Role, Tenant, User, role_at_least


def user_list(*, tenant: Tenant) -> QuerySet[User]:
    return User.objects.filter(tenant=tenant).order_by("email")


def user_get(*, tenant: Tenant, user_id: Any) -> User:
    return get_by_id_or_404(user_list(tenant=tenant), user_id, label="User")


def api_token_list(*, tenant: Tenant, viewer: User) -> QuerySet[ApiToken]:
    """Owners and admins see every token of the tenant; members only their own."""
    tokens = ApiToken.objects.filter(tenant=tenant).order_by("-created_at")
    if not role_at_least(viewer.role, Role.ADMIN):
        tokens = tokens.filter(user=viewer)
    return tokens


def api_token_get(*, tenant: Tenant, viewer: User, token_id: Any) -> ApiToken:
    return get_by_id_or_404(api_token_list(tenant=tenant, viewer=viewer), token_id, label="API token")


def first_active_owner(*, tenant: Tenant) -> User | None:
    """The tenant's longest-standing active owner: whom tokens made on the tenant's behalf belong to."""
    return User.objects.filter(tenant=tenant, role=Role.OWNER, is_active=True).order_by("created_at").first()


def identity_counts(tenant: Tenant) -> dict[str, Any]:
    """Users and tokens of the tenant, for the detailed health view."""
    users = user_list(tenant=tenant)
    tokens = ApiToken.objects.filter(tenant=tenant, is_active=True)
    return {
        "users": {"total": users.count(), "active": users.filter(is_active=True).count()},
        "api_tokens": {
            "active": tokens.filter(bot_profile__isnull=True).count(),
            "active_bot_tokens": tokens.filter(bot_profile__isnull=False).count(),
        },
    }
