"""`createtenant`: create a tenant with its owner and first API token (shown once)."""

from __future__ import annotations

import getpass
import sys
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from minirag.errors import ApplicationError
from minirag.management.base import MiniRAGCommand, command_error, write_secret
from tenants.services import tenant_bootstrap

OPTION_NAMES = {
    "name": "--name",
    "slug": "--slug",
    "email": "--owner-email",
    "display_name": "--owner-name",
}


class Command(MiniRAGCommand):
    help = """\
Create a tenant, its owner user and the owner's first API token, as POST /v1/tenants does.

The owner's password is prompted for, or read from the first line of standard input with
--owner-password-stdin (for scripts). Prints the new tenant's slug and id, the owner's email and
the API token, which is shown only this once.

Example:
  echo 'a long passphrase' | python manage.py createtenant --name "Acme Inc" --slug acme \\
      --owner-email owner@acme.example --owner-password-stdin
"""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="Display name of the tenant.")
        parser.add_argument("--slug", required=True, help="URL-safe identifier: lowercase letters, digits, hyphens.")
        parser.add_argument("--owner-email", required=True, help="Email of the tenant's first owner.")
        parser.add_argument("--owner-name", default="", help="Display name of the owner.")
        parser.add_argument(
            "--owner-password-stdin",
            action="store_true",
            help="Read the owner's password from standard input instead of prompting.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["owner_password_stdin"]:
                password = sys.stdin.readline().rstrip("\n")
            else:
                password = getpass.getpass("Owner password: ")
        except (EOFError, KeyboardInterrupt):
            raise CommandError("No password given; nothing was created.") from None
        try:
            result = tenant_bootstrap(
                name=options["name"],
                slug=options["slug"],
                owner_email=options["owner_email"],
                owner_password=password,
                owner_display_name=options["owner_name"],
            )
        except (ApplicationError, ValidationError) as exc:
            raise command_error(exc, options=OPTION_NAMES) from exc
        self.stdout.write(self.style.SUCCESS(f"Created tenant '{result.tenant.slug}' ({result.tenant.pk})."))
        self.stdout.write(f"Owner: {result.owner.email}")
        write_secret(self.stdout, "API token", result.raw_token)
