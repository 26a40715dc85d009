"""`createtenant`: create a tenant with its owner and first API token (shown once)."""

from __future__ import annotations

import getpass
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from minirag.errors import ApplicationError
from tenants.services import tenant_bootstrap


class Command(BaseCommand):
    help = (
        "Create a tenant, its owner user and the owner's first API token. The token is printed once. "
        "The password is read from --owner-password-stdin or prompted for."
    )

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
        if options["owner_password_stdin"]:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass("Owner password: ")
        try:
            result = tenant_bootstrap(
                name=options["name"],
                slug=options["slug"],
                owner_email=options["owner_email"],
                owner_password=password,
                owner_display_name=options["owner_name"],
            )
        except ApplicationError as exc:
            raise CommandError(exc.detail) from exc
        self.stdout.write(self.style.SUCCESS(f"Created tenant '{result.tenant.slug}' ({result.tenant.pk})."))
        self.stdout.write(f"Owner:     {result.owner.email}")
        self.stdout.write(f"API token: {result.raw_token}")
        self.stdout.write("The API token is shown only this once; store it now.")
