"""`createtoken --tenant SLUG`: create a tenant API token, or a bot (widget) token."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from bots.selectors import bot_profile_get
from minirag.management.base import write_secret
from tenants.management.base import TenantCommand
from tenants.models import Tenant, User, normalize_email
from tenants.selectors import first_active_owner
from tenants.services import api_token_create

MAX_EXPIRES_DAYS = 3650


class Command(TenantCommand):
    help = """\
Create an API token for a tenant and print it. The raw token is shown only this once.

Without --bot it is a tenant token acting with --user's current role (default: the tenant's
first active owner). With --bot it is a bot (widget) token that can only chat with that bot,
from the browser origins given with --origin (repeatable; without any, browsers are refused and
only server-side calls work).

Prints the token's kind, name and id, then the raw token.

Examples:
  python manage.py createtoken --tenant acme --name "CI deploys"
  python manage.py createtoken --tenant acme --name "Website widget" --bot BOT_ID \\
      --origin https://www.acme.example --expires-days 365
"""
    option_names = {
        "allowed_origins": "--origin",
        "expires_at": "--expires-days",
        "name": "--name",
        "bot_profile_id": "--bot",
    }

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="A label for the token.")
        parser.add_argument("--user", help="Email of the user the token belongs to (default: first owner).")
        parser.add_argument("--bot", help="Bot profile id: create a bot token for the widget.")
        parser.add_argument(
            "--origin",
            action="append",
            default=[],
            help="Allowed origin for a bot token, e.g. https://www.example.com (repeatable; '*' allows any).",
        )
        parser.add_argument(
            "--expires-days", type=int, help=f"Expire the token after this many days (1-{MAX_EXPIRES_DAYS})."
        )

    def handle_tenant(self, tenant: Tenant, *args: Any, **options: Any) -> None:
        if options["origin"] and not options["bot"]:
            raise CommandError("--origin: Only bot tokens (--bot) are limited to origins.")
        expires_at = None
        if options["expires_days"] is not None:
            if not 1 <= options["expires_days"] <= MAX_EXPIRES_DAYS:
                raise CommandError(f"--expires-days must be at least 1 and at most {MAX_EXPIRES_DAYS}.")
            expires_at = timezone.now() + timedelta(days=options["expires_days"])
        users = User.objects.filter(tenant=tenant, is_active=True)
        if options["user"]:
            user = users.filter(email=normalize_email(options["user"])).first()
        else:
            user = first_active_owner(tenant=tenant)
        if user is None:
            raise CommandError("No such active user in this tenant.")
        bot = bot_profile_get(tenant=tenant, bot_profile_id=options["bot"]) if options["bot"] else None
        token, raw = api_token_create(
            tenant=tenant,
            user=user,
            name=options["name"],
            bot_profile=bot,
            allowed_origins=options["origin"],
            expires_at=expires_at,
        )
        kind = f"bot token for '{bot.name}'" if bot else f"tenant token acting as {user.email} ({user.role})"
        self.stdout.write(self.style.SUCCESS(f"Created {kind}: {token.name} ({token.pk})."))
        if token.allowed_origins:
            self.stdout.write(f"Allowed origins: {', '.join(token.allowed_origins)}")
        if token.expires_at:
            self.stdout.write(f"Expires: {token.expires_at:%Y-%m-%d %H:%M} UTC")
        write_secret(self.stdout, "API token", raw)
