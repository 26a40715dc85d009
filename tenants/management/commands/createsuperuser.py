"""`createsuperuser`, creating a *platform operator*: a superuser with no tenant, who sees every
tenant in the dashboard. Tenant users are created with `createtenant` or the API."""

from __future__ import annotations

import os
from typing import Any

from django.contrib.auth.management.commands import createsuperuser
from django.core.management.base import CommandError
from django.db.models.signals import post_save

from minirag.management.base import ReadableHelpMixin
from tenants.models import User, normalize_email
from tenants.tenancy import tenant_scope_disabled

EMAIL_ENV = "DJANGO_SUPERUSER_EMAIL"
OPERATOR_EXISTS = "A platform operator with email '{email}' already exists (change its password with `changepassword`)."


class Command(ReadableHelpMixin, createsuperuser.Command):
    help = """\
Create a platform operator: a superuser that belongs to no tenant, logs in to /dashboard/ and
sees every tenant there. (Tenant users are created with `createtenant` or the API.)

Prompts for the email and password; with --noinput they come from --email and the
DJANGO_SUPERUSER_PASSWORD environment variable (without it the account gets no usable password:
set one later with `changepassword EMAIL`). Prints a confirmation line.

Examples:
  python manage.py createsuperuser
  DJANGO_SUPERUSER_PASSWORD='a long passphrase' python manage.py createsuperuser --noinput --email ops@example.com
"""

    def handle(self, *args: Any, **options: Any) -> None:
        with tenant_scope_disabled("createsuperuser: platform operators belong to no tenant"):
            email = options.get("email") or ("" if options["interactive"] else os.environ.get(EMAIL_ENV, ""))
            if email and _operator_exists(email):
                raise CommandError(OPERATOR_EXISTS.format(email=normalize_email(email)))
        created: list[User] = []

        def remember(sender: type[User], instance: User, **kwargs: Any) -> None:
            if kwargs.get("created") and instance.is_superuser:
                created.append(instance)

        # Django's own success line is unstyled and does not say who was created: listen for the
        # row instead, for this call only.
        post_save.connect(remember, sender=User, weak=False, dispatch_uid=f"createsuperuser-{id(self)}")
        try:
            with tenant_scope_disabled("createsuperuser: platform operators belong to no tenant"):
                super().handle(*args, **{**options, "verbosity": 0})
        finally:
            post_save.disconnect(sender=User, dispatch_uid=f"createsuperuser-{id(self)}")
        if created and options["verbosity"] >= 1:
            operator = created[-1]
            self.stdout.write(self.style.SUCCESS(f"Created platform operator {operator.email} (for /dashboard/)."))

    def get_input_data(self, field: Any, message: str, default: Any = None) -> Any:
        value = super().get_input_data(field, message, default)
        # Emails are unique among operators by a constraint Django's own check does not see.
        if field.name == User.USERNAME_FIELD and value and _operator_exists(value):
            self.stderr.write("Error: " + OPERATOR_EXISTS.format(email=normalize_email(value)))
            return None
        return value


def _operator_exists(email: str) -> bool:
    return User.objects.filter(email=normalize_email(email), tenant__isnull=True).exists()
