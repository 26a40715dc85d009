"""`changepassword EMAIL [--tenant SLUG]`: set a user's password interactively."""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from minirag.errors import ApplicationError
from tenants.management.base import resolve_tenant
from tenants.models import User, normalize_email
from tenants.services import validate_new_password
from tenants.tenancy import tenant_scope_disabled


class Command(BaseCommand):
    help = (
        "Change a user's password. Without --tenant the email must be a platform operator's; "
        "with --tenant it is that tenant's user."
    )
    requires_migrations_checks = True

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email", help="Email of the account.")
        parser.add_argument("--tenant", help="Slug or id of the user's tenant (omit for platform operators).")

    def handle(self, *args: Any, **options: Any) -> None:
        with tenant_scope_disabled("changepassword: operator command addressing one account"):
            users = User.objects.filter(email=normalize_email(options["email"]))
            if options.get("tenant"):
                users = users.filter(tenant=resolve_tenant(options["tenant"]))
            else:
                users = users.filter(tenant__isnull=True)
            user = users.first()
            if user is None:
                raise CommandError("No such user (use --tenant for a tenant's user).")
            for _attempt in range(3):
                password = getpass.getpass("Password: ")
                if password != getpass.getpass("Password (again): "):
                    self.stderr.write("Passwords do not match. Try again.")
                    continue
                try:
                    validate_new_password(password, user)
                except ApplicationError as exc:
                    self.stderr.write(exc.detail)
                    continue
                user.set_password(password)
                user.save(update_fields=["password"])
                self.stdout.write(self.style.SUCCESS(f"Password changed for {user.email}."))
                return
            raise CommandError("Too many failed attempts; password not changed.")
