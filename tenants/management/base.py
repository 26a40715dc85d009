"""Base for management commands that act for one tenant (`--tenant SLUG|ID`)."""

from __future__ import annotations

import argparse
from typing import Any, ClassVar

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from minirag.errors import ApplicationError
from minirag.lookups import parse_uuid
from minirag.management.base import MiniRAGCommand, command_error
from tenants.models import Tenant
from tenants.tenancy import tenant_scope


def resolve_tenant(value: str, *, require_active: bool = False) -> Tenant:
    """The tenant named by slug or id; a clear CommandError when there is none (or, with
    `require_active`, when it is deactivated)."""
    tenant_id = parse_uuid(value)
    tenant = Tenant.objects.filter(pk=tenant_id).first() if tenant_id else Tenant.objects.filter(slug=value).first()
    if tenant is None:
        raise CommandError(f"No tenant with slug or id '{value}'.")
    if require_active and not tenant.is_active:
        raise CommandError(f"Tenant '{tenant.slug}' is deactivated; reactivate it in the dashboard first.")
    return tenant


class TenantCommand(MiniRAGCommand):
    """`handle_tenant(tenant, **options)` runs inside that tenant's scope. The tenant must be
    active. Application and validation errors become a clear one-line message and exit status 1;
    `option_names` maps a service's field names to the options that set them (`"bot_profile_id":
    "--bot"`), so the message names what the operator typed."""

    option_names: ClassVar[dict[str, str]] = {}

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> argparse.ArgumentParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.add_argument("--tenant", required=True, help="Slug or id of the tenant to act for.")
        return parser

    def handle(self, *args: Any, **options: Any) -> str | None:
        tenant = resolve_tenant(options.pop("tenant"), require_active=True)
        with tenant_scope(tenant):
            try:
                return self.handle_tenant(tenant, *args, **options)
            except (ApplicationError, ValidationError) as exc:
                raise command_error(exc, options=self.option_names) from exc

    def handle_tenant(self, tenant: Tenant, *args: Any, **options: Any) -> str | None:
        raise NotImplementedError
