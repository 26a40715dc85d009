"""`migrate`, as the database owner, followed by row-level security (tenants/rls.py).

Django's migrate, plus: with `MINIRAG_DATABASE_OWNER_URL` set, it connects with the owner's
credentials (same database as DATABASE_URL, test databases included) so the app's own role never
needs to own a table; migrations run with the tenant scope disabled (data migrations see every
tenant); and afterwards the app role (DATABASE_URL's user) is created if it is missing, every
tenant table gets its row-level security policy (idempotently), and the app role is granted
`MINIRAG_DATABASE_APP_PRIVILEGES` on every table.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import environ
from django.conf import settings
from django.core.management.commands.migrate import Command as DjangoMigrateCommand
from django.db import connections

from minirag.management.base import ReadableHelpMixin
from tenants.rls import apply_row_level_security, ensure_app_role
from tenants.tenancy import tenant_scope_disabled

CREDENTIALS = ("USER", "PASSWORD", "HOST", "PORT")


class Command(ReadableHelpMixin, DjangoMigrateCommand):
    help = """\
Apply the database migrations, then row-level security (PostgreSQL).

With MINIRAG_DATABASE_OWNER_URL set, it logs in as that owner instead of DATABASE_URL's user (the
app's own role), creates the app role if it does not exist (with DATABASE_URL's password),
applies the tenant isolation policy to every table with a tenant_id (idempotently: new tables are
covered without a migration) and grants the app role MINIRAG_DATABASE_APP_PRIVILEGES on every table.
Without it, it migrates as DATABASE_URL's user and applies the policies if that user may.

Then vector collections made before hybrid retrieval are rebuilt from the database (reindex
--if-needed: stored embeddings reused, nothing embedded again).

Prints Django's migration progress, then how many tenant tables got their policy.

Example:
  python manage.py migrate
"""

    def handle(self, *args: Any, **options: Any) -> None:
        alias = options["database"]
        connection = connections[alias]
        app = {key: connection.settings_dict.get(key) for key in CREDENTIALS}
        as_owner = bool(settings.DATABASE_OWNER_URL) and connection.vendor == "postgresql"
        with self._owner_login(alias) if as_owner else nullcontext():
            app_role = app["USER"] if as_owner and connection.settings_dict["USER"] != app["USER"] else None
            with tenant_scope_disabled("migrate: schema changes and data migrations see every tenant"):
                super().handle(*args, **options)
                if app_role and ensure_app_role(using=alias, role=app_role, password=app["PASSWORD"]):
                    self.stdout.write(f"Created the database role {app_role} (DATABASE_URL's user).")
                tables = apply_row_level_security(
                    using=alias, app_role=app_role, privileges=settings.DATABASE_APP_PRIVILEGES
                )
                # Still as the owner: the rebuild reads every tenant's chunks, and the app's
                # connection is left as it was before the command.
                if not (options.get("plan") or options.get("check_unapplied")):
                    self._upgrade_vector_collections(options["verbosity"])
        if tables and options["verbosity"] >= 1:
            grantee = f"; {app_role} granted {settings.DATABASE_APP_PRIVILEGES}" if app_role else ""
            self.stdout.write(f"Row-level security applied to {len(tables)} tenant tables{grantee}.")

    def _upgrade_vector_collections(self, verbosity: int) -> None:
        """Vector collections made before hybrid retrieval are rebuilt from the database (`reindex
        --if-needed`), so an upgrade needs no extra step. A vector store that cannot be reached is
        not the database's problem: say what to run later, and succeed."""
        from minirag.vectorstore import is_vector_store_outage, vector_store_error_message
        from sources.ingestion import rebuild_index

        try:
            rebuilt = rebuild_index(only_legacy=True)
        except Exception as exc:
            if not is_vector_store_outage(exc):
                raise
            self.stderr.write(
                f"{vector_store_error_message(exc)} Run `python manage.py reindex --if-needed` once it is up."
            )
            return
        for collection in rebuilt:
            if verbosity >= 1:
                self.stdout.write(f"Rebuilt {collection.name} for hybrid retrieval: {collection.points} points.")

    @staticmethod
    @contextmanager
    def _owner_login(alias: str) -> Iterator[None]:
        """Log the alias in as the owner for the block (its pool too), then back as the app."""
        connection = connections[alias]
        saved = {key: connection.settings_dict.get(key) for key in CREDENTIALS}
        owner = environ.Env.db_url_config(settings.DATABASE_OWNER_URL)
        _disconnect(alias)
        connection.settings_dict.update({key: owner[key] for key in CREDENTIALS if owner.get(key) not in (None, "")})
        try:
            yield
        finally:
            _disconnect(alias)
            connection.settings_dict.update(saved)


def _disconnect(alias: str) -> None:
    connection = connections[alias]
    connection.close()
    if connection.vendor == "postgresql":
        connection.close_pool()
