"""Base for management commands that act for one tenant (`--tenant SLUG|ID`)."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from minirag.errors import ApplicationError
from minirag.lookups import parse_uuid
from tenants.models import Tenant
from tenants.tenancy import tenant_scope


def resolve_tenant(value: str) -> Tenant:
    tenant_id = parse_uuid(value)
    tenant = Tenant.objects.filter(pk=tenant_id).first() if tenant_id else Tenant.objects.filter(slug=value).first()
    if tenant is None:
        raise CommandError(f"No tenant with slug or id '{value}'.")
    return tenant


class TenantCommand(BaseCommand):
    """`handle_tenant(tenant, **options)` runs inside that tenant's scope. Application errors
    become a clear one-line message and a non-zero exit status."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> argparse.ArgumentParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.add_argument("--tenant", required=True, help="Slug or id of the tenant to act for.")
        return parser

    def handle(self, *args: Any, **options: Any) -> str | None:
        tenant = resolve_tenant(options.pop("tenant"))
        with tenant_scope(tenant):
            try:
                return self.handle_tenant(tenant, *args, **options)
            except ApplicationError as exc:
                raise CommandError(exc.detail) from exc

    def handle_tenant(self, tenant: Tenant, *args: Any, **options: Any) -> str | None:
        raise NotImplementedError
