"""Who may use the dashboard, and which tenant a dashboard request acts for."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from inbox.selectors import user_may_operate
from tenants.models import Role, Tenant, role_at_least

MEMBER_REFUSAL = (
    "This account is a member of its workspace; the dashboard is for owners and admins (members "
    "answer visitors in its inbox while an owner lets members read every chat). "
    "Ask an owner to raise your role, or use the API."
)


def can_use_dashboard(user: Any) -> bool:
    """Active platform operators, and active owners/admins of an active tenant."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if user.tenant_id is None:
        return bool(user.is_superuser)
    return user.tenant.is_active and role_at_least(user.role, Role.ADMIN)


def may_enter_dashboard(user: Any) -> bool:
    """The whole dashboard (`can_use_dashboard`), or only its inbox: members who may answer
    visitors (inbox/selectors.py) log in to the inbox and see nothing else."""
    if can_use_dashboard(user):
        return True
    if user is None or not user.is_authenticated or user.tenant_id is None:
        return False
    return user.tenant.is_active and user_may_operate(user)


def is_operator(request: HttpRequest) -> bool:
    """A platform operator: sees and acts for every tenant."""
    user = request.user
    return bool(user.is_authenticated and user.tenant_id is None and user.is_superuser)


def own_tenant(request: HttpRequest) -> Tenant | None:
    """The tenant a tenant user acts for; None for an operator."""
    return None if is_operator(request) else request.user.tenant
