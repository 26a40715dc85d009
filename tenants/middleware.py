"""The tenant scope for the dashboard (Django admin at /dashboard/).

Platform operators see every tenant, explicitly; a tenant's own staff users act inside their
tenant's scope, so the same admin pages can only reach their tenant's rows; the login page runs
unscoped (it only looks up the account logging in).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

from tenants.tenancy import tenant_scope, tenant_scope_disabled

DASHBOARD_PREFIX = "/dashboard/"
# The widget script is served under /dashboard/widget/ and touches no tenant data.
UNSCOPED_PREFIXES = ("/dashboard/widget/",)


def _needs_scope(request: HttpRequest) -> bool:
    return request.path.startswith(DASHBOARD_PREFIX) and not request.path.startswith(UNSCOPED_PREFIXES)


def _scope_for(user: Any) -> AbstractContextManager:
    if not user.is_authenticated:
        return tenant_scope_disabled("dashboard: anonymous visitor (login page)")
    if user.tenant_id is None:
        return tenant_scope_disabled("dashboard: platform operator")
    return tenant_scope(user.tenant_id)


class DashboardTenantScopeMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self._acall(request)
        if not _needs_scope(request):
            return self.get_response(request)
        with _scope_for(request.user):
            return self.get_response(request)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        if not _needs_scope(request):
            return await self.get_response(request)
        with _scope_for(await request.auser()):
            return await self.get_response(request)
