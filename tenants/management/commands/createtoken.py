"""`createtoken --tenant SLUG`: create a tenant API token, or a bot (widget) token."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from bots.selectors import bot_profile_get
from tenants.management.base import TenantCommand
from tenants.models import Role, Tenant, User, normalize_email
from tenants.services import api_token_create


class Command(TenantCommand):
    help = (
        "Create an API token for a tenant and print it (once). Without --bot it is a tenant token "
        "acting with --user's role (default: the first active owner); with --bot it is a widget token "
        "for that bot, optionally limited to --origin (repeatable)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="A label for the token.")
        parser.add_argument("--user", help="Email of the user the token belongs to (default: first owner).")
        parser.add_argument("--bot", help="Bot profile id: create a bot token for the widget.")
        parser.add_argument(
            "--origin",
            action="append",
            default=[],
            help="Allowed origin for a bot token, e.g. https://www.example.com (repeatable).",
        )
        parser.add_argument("--expires-days", type=int, help="Expire the token after this many days.")

    def handle_tenant(self, tenant: Tenant, *args: Any, **options: Any) -> None:
        users = User.objects.filter(tenant=tenant, is_active=True)
        if options["user"]:
            user = users.filter(email=normalize_email(options["user"])).first()
        else:
            user = users.filter(role=Role.OWNER).order_by("created_at").first()
        if user is None:
            raise CommandError("No such active user in this tenant.")
        bot = bot_profile_get(tenant=tenant, bot_profile_id=options["bot"]) if options["bot"] else None
        expires_at = None
        if options["expires_days"] is not None:
            if options["expires_days"] < 1:
                raise CommandError("--expires-days must be at least 1.")
            expires_at = timezone.now() + timedelta(days=options["expires_days"])
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
        self.stdout.write(f"API token: {raw}")
        self.stdout.write("The API token is shown only this once; store it now.")
