"""`connection NAME ...`: create or change a named connection from a script (a deployment's setup)."""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from minirag.errors import ApplicationError
from providers.endpoints import decrypt_credentials, header_lines
from providers.models import Connection
from providers.services import connection_save
from tenants.models import Tenant
from tenants.tenancy import tenant_scope_disabled


class Command(BaseCommand):
    help = """\
Create a named connection, or change the one of that name: a model server the platform offers to
tenants, who pick it by name for a bot and never see its key. Idempotent, so a deployment can run
it on every start. Options left out keep what is stored.

The key is read from an environment variable (--api-key-env), never from the command line, where
other users of the machine could read it. Headers: --header "Name: value" (repeatable).

Examples:
  VLLM_KEY=... python manage.py connection company-vllm --api-base http://vllm.internal:8000/v1 \\
      --api-key-env VLLM_KEY --chat-model openai/meta-llama/Llama-3.1-8B-Instruct --every-tenant
  python manage.py connection company-vllm --grant acme --grant globex --prompt-price 0.2 --completion-price 0.6
  python manage.py connection company-vllm --inactive
"""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="What tenants pick, e.g. company-vllm.")
        parser.add_argument("--description", help="Shown to tenants.")
        parser.add_argument("--api-base", help="The server's base URL.")
        parser.add_argument("--api-version", help="The API version Azure OpenAI asks for.")
        parser.add_argument("--api-key-env", metavar="VARIABLE", help="The environment variable holding the key.")
        parser.add_argument("--header", action="append", help='An extra header, "Name: value" (repeatable).')
        parser.add_argument("--clear-credentials", action="store_true", help="Remove the stored key and headers.")
        parser.add_argument("--chat-model", action="append", help="A chat model it serves (repeatable; replaces).")
        parser.add_argument(
            "--embedding-model", action="append", help="An embedding model it serves (repeatable; replaces)."
        )
        parser.add_argument("--prompt-price", help="USD per million prompt tokens.")
        parser.add_argument("--completion-price", help="USD per million completion tokens.")
        parser.add_argument("--grant", action="append", metavar="TENANT_SLUG", help="A tenant that may pick it.")
        offered = parser.add_mutually_exclusive_group()
        offered.add_argument("--every-tenant", action="store_true", help="Offer it to every tenant.")
        offered.add_argument("--granted-only", action="store_true", help="Offer it only to the granted tenants.")
        active = parser.add_mutually_exclusive_group()
        active.add_argument("--active", action="store_true", help="Make it usable (the default for a new one).")
        active.add_argument("--inactive", action="store_true", help="Stop listing and calling it.")

    def handle(self, *args: Any, **options: Any) -> None:
        with tenant_scope_disabled("connection command: an operator's platform-wide setting"):
            connection = Connection.objects.filter(name=options["name"]).first()
            created = connection is None
            attributes = self._attributes(options, created=created)
            extra: dict[str, Any] = {}
            credentials = self._credentials(options, connection)
            if credentials is not None:
                extra["credentials"] = credentials
            if options["grant"] is not None:
                extra["granted_to"] = self._tenants(options["grant"])
            try:
                with transaction.atomic():
                    connection = connection_save(connection=connection or Connection(), **extra, **attributes)
            except ApplicationError as error:
                raise CommandError(error.detail) from None
        verb = "Created" if created else "Updated"
        state = "active" if connection.is_active else "inactive"
        self.stdout.write(f"{verb} connection {connection.name} ({state}): {', '.join(connection.served_models)}")

    @staticmethod
    def _attributes(options: dict[str, Any], *, created: bool) -> dict[str, Any]:
        attributes: dict[str, Any] = {"name": options["name"]} if created else {}
        for option, field in (
            ("description", "description"),
            ("api_base", "api_base"),
            ("api_version", "api_version"),
            ("chat_model", "chat_models"),
            ("embedding_model", "embedding_models"),
            ("prompt_price", "prompt_price_per_1m"),
            ("completion_price", "completion_price_per_1m"),
        ):
            if options[option] is not None:
                attributes[field] = options[option]
        if options["every_tenant"] or options["granted_only"]:
            attributes["for_every_tenant"] = options["every_tenant"]
        if options["active"] or options["inactive"]:
            attributes["is_active"] = options["active"]
        return attributes

    @staticmethod
    def _credentials(options: dict[str, Any], connection: Connection | None) -> dict[str, Any] | None:
        """The credentials to store, or None to keep them: a new key keeps the stored headers and
        new headers the stored key, as on the dashboard."""
        if options["clear_credentials"]:
            return {}
        if not options["api_key_env"] and not options["header"]:
            return None
        credentials = decrypt_credentials(connection.credentials_ciphertext) if connection else {}
        if options["api_key_env"]:
            key = os.environ.get(options["api_key_env"], "")
            if not key.strip():
                raise CommandError(f"--api-key-env: the variable {options['api_key_env']} is not set or empty.")
            credentials["api_key"] = key
        if options["header"]:
            try:
                credentials["headers"] = header_lines(options["header"])
            except ValueError as error:
                raise CommandError(f"--header: {error}") from None
        return credentials

    @staticmethod
    def _tenants(slugs: list[str]) -> list[Tenant]:
        tenants = list(Tenant.objects.filter(slug__in=slugs))
        unknown = sorted(set(slugs) - {tenant.slug for tenant in tenants})
        if unknown:
            raise CommandError(f"--grant: no tenant with the slug {', '.join(unknown)}.")
        return tenants
