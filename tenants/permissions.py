"""Who may do what. The default permission of every /v1 view is `TenantRolePermission`."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from tenants.authentication import Principal
from tenants.models import Role, role_at_least

BOT_TOKEN_FORBIDDEN = "Bot tokens may only chat with their bot; use a tenant token for this route."


def request_action(request: Request, view: Any) -> str:
    """The viewset action ('list', 'create', ...) or, for plain views, the HTTP method."""
    return getattr(view, "action", None) or request.method.lower()


def required_role(request: Request, view: Any) -> str:
    """A view may set `minimum_roles = {action: Role}`; otherwise reads need a member and
    writes an admin, so a route that forgets to say stays on the safe side."""
    minimum_roles: dict[str, str] = getattr(view, "minimum_roles", {})
    action = request_action(request, view)
    if action in minimum_roles:
        return minimum_roles[action]
    return Role.MEMBER if request.method in SAFE_METHODS else Role.ADMIN


class TenantRolePermission(BasePermission):
    """A tenant principal is required; bot tokens reach only the actions a view lists in
    `bot_token_actions`; everyone else needs the route's minimum role."""

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = request.auth
        if not isinstance(principal, Principal):
            return False  # DRF answers 401 (no credentials) or 403
        if principal.is_bot_token:
            if request_action(request, view) in getattr(view, "bot_token_actions", ()):
                return True
            raise exceptions.PermissionDenied(BOT_TOKEN_FORBIDDEN)
        minimum = required_role(request, view)
        if not role_at_least(principal.role, minimum):
            raise exceptions.PermissionDenied(f"This action needs the {minimum} role or higher.")
        return True
