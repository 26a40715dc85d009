"""`changepassword EMAIL [--tenant SLUG]`: set a user's password interactively."""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import CommandError, CommandParser

from minirag.errors import ApplicationError
from minirag.management.base import MiniRAGCommand
from tenants.management.base import resolve_tenant
from tenants.models import User, normalize_email
from tenants.services import validate_new_password
from tenants.tenancy import tenant_scope_disabled

MAX_ATTEMPTS = 3


class Command(MiniRAGCommand):
    help = f"""\
Set a user's password. Prompts for the new password twice (up to {MAX_ATTEMPTS} attempts) and
applies the same rules as the API (8 to 128 characters).

Without --tenant, EMAIL must be a platform operator's (a superuser of /dashboard/); with
--tenant it is that tenant's user (the tenant may be deactivated). Prints a confirmation line.
The user's API tokens keep working: revoke them separately if the account was compromised.

Examples:
  python manage.py changepassword ops@example.com
  python manage.py changepassword owner@acme.example --tenant acme
"""
    requires_migrations_checks = True

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email", help="Email of the account.")
        parser.add_argument("--tenant", help="Slug or id of the user's tenant (omit for platform operators).")

    def handle(self, *args: Any, **options: Any) -> None:
        with tenant_scope_disabled("changepassword: operator command addressing one account"):
            users = User.objects.filter(email=normalize_email(options["email"]))
            if options.get("tenant"):
                tenant = resolve_tenant(options["tenant"])
                users = users.filter(tenant=tenant)
                where = f"in tenant '{tenant.slug}'"
            else:
                users = users.filter(tenant__isnull=True)
                where = "among platform operators (use --tenant for a tenant's user)"
            user = users.first()
            if user is None:
                raise CommandError(f"No user '{options['email']}' {where}.")
            for _attempt in range(MAX_ATTEMPTS):
                try:
                    password = getpass.getpass("Password: ")
                    again = getpass.getpass("Password (again): ")
                except (EOFError, KeyboardInterrupt):
                    raise CommandError("Aborted; password not changed.") from None
                if password != again:
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
