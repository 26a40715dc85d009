"""Who may use the dashboard, and which tenant a dashboard request acts for."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from tenants.models import Role, Tenant, role_at_least

MEMBER_REFUSAL = (
    "This account is a member of its workspace; the dashboard is for owners and admins. "
    "Ask an owner to raise your role, or use the API."
)


def can_use_dashboard(user: Any) -> bool:
    """Active platform operators, and active owners/admins of an active tenant."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if user.tenant_id is None:
        return bool(user.is_superuser)
    return user.tenant.is_active and role_at_least(user.role, Role.ADMIN)


def is_operator(request: HttpRequest) -> bool:
    """A platform operator: sees and acts for every tenant."""
    user = request.user
    return bool(user.is_authenticated and user.tenant_id is None and user.is_superuser)


def own_tenant(request: HttpRequest) -> Tenant | None:
    """The tenant a tenant user acts for; None for an operator."""
    return None if is_operator(request) else request.user.tenant
