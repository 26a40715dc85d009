"""`createsuperuser`, creating a *platform operator*: a superuser with no tenant, who sees every
tenant in the dashboard. Tenant users are created with `createtenant` or the API."""

from typing import Any

from django.contrib.auth.management.commands import createsuperuser

from tenants.tenancy import tenant_scope_disabled


class Command(createsuperuser.Command):
    help = "Create a platform operator (a superuser that belongs to no tenant) for /dashboard/."

    def handle(self, *args: Any, **options: Any) -> None:
        with tenant_scope_disabled("createsuperuser: platform operators belong to no tenant"):
            super().handle(*args, **options)
