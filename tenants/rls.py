"""PostgreSQL row-level security: the database enforces the tenant scope too.

The scoped manager (tenants/tenancy.py) filters every ORM query by the current tenant. Code that
steps around the ORM — raw SQL, a `Subquery` built on the unscoped manager, a bug — would bypass
it. Row-level security closes that door in the database itself:

* every table with a `tenant_id` column has RLS **enabled and forced** (so even its owner is
  subject to it) and one policy: a row is visible and writable only when its `tenant_id` equals
  the session's `minirag.scope` setting, or when that setting is `*` (scope explicitly disabled);
* `minirag.scope` follows the tenancy core's ContextVar: before every statement, a database
  execute wrapper writes the current scope (`tenant_scope(t)` → t's id, `tenant_scope_disabled` →
  `*`, no scope → empty, which matches no row). The code that enters a tenant scope is therefore the
  code that sets the database's tenant; nothing else can set it, and forgetting it fails closed.
  The setting and the statement go to the server in one message, so no connection pooler in
  between can separate them;
* the app connects as a role that owns nothing and lacks BYPASSRLS, so it can neither turn RLS off
  nor drop the policies; `manage.py migrate` connects as the owner
  (`MINIRAG_DATABASE_OWNER_URL`) and re-applies the policies to every tenant table after
  migrating, then grants the app role what it needs (data, not schema).

SQLite (the embedded mode) has no row-level security: there the scoped manager alone applies.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
from django.apps import apps
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg.pq import PipelineStatus, TransactionStatus

from tenants.tenancy import TenantOwnedModel, current_scope

SCOPE_SETTING = "minirag.scope"
ALL_TENANTS = "*"
POLICY_NAME = "minirag_tenant_isolation"
_TRANSACTION_CONTROL = re.compile(r"\s*(ROLLBACK|RELEASE|SAVEPOINT|COMMIT|BEGIN)\b", re.IGNORECASE)
# Statements that may run inside a transaction block, so the scope can share their message (below).
_DATA_STATEMENT = re.compile(r"\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b", re.IGNORECASE)
# Every value the scope can take (a tenant's id, all tenants, none): the only text written into SQL.
_SCOPE_LITERAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\*|")
# Rows of the current tenant, or every row when the scope is explicitly disabled. The setting is
# read once per statement (current_setting is stable), so tenant_id index scans still apply.
POLICY_CONDITION = (
    f"(current_setting('{SCOPE_SETTING}', true) = '{ALL_TENANTS}' OR "
    f"tenant_id = nullif(nullif(current_setting('{SCOPE_SETTING}', true), ''), '{ALL_TENANTS}')::uuid)"
)


def scope_value() -> str:
    """What `minirag.scope` must hold for the code running now."""
    state = current_scope()
    if state.tenant_id is not None:
        return str(state.tenant_id)
    return ALL_TENANTS if state.is_disabled else ""


def _apply_scope(execute: Any, sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
    """Runs before every statement on a PostgreSQL connection: set the session's scope, then run
    the statement. Always set: a transaction that rolls back would also roll back a setting made
    inside it, so a cached "already set" could lie.

    A data statement on Django's usual (client-side binding) cursor carries the setting in the same
    message: `SELECT set_config(...); <statement>` over the simple query protocol, which runs both in
    order, in one transaction, and returns both results; the cursor then moves to the statement's.
    That saves a round trip per statement (0.06 to 0.1 ms of the process's CPU for a one-row read).
    Anything else (transaction control, a server-side cursor, `executemany`) gets its own round trip."""
    raw_connection = context["connection"].connection
    # Transaction control reads no rows, and after an error only a rollback may run at all.
    if _TRANSACTION_CONTROL.match(sql) or raw_connection.info.transaction_status == TransactionStatus.INERROR:
        return execute(sql, params, many, context)
    scope = scope_value()
    cursor = context["cursor"].cursor
    if (
        not many
        and isinstance(cursor, psycopg.ClientCursor)
        and raw_connection.info.pipeline_status == PipelineStatus.OFF
        and _DATA_STATEMENT.match(sql)
        and _SCOPE_LITERAL.fullmatch(scope)
    ):
        result = execute(f"SELECT set_config('{SCOPE_SETTING}', '{scope}', false); {sql}", params, many, context)
        cursor.nextset()
        return result
    # A cursor of its own: the statement's cursor may be a named (server-side) one.
    with raw_connection.cursor() as scope_cursor:
        scope_cursor.execute("SELECT set_config(%s, %s, false)", [SCOPE_SETTING, scope])
    return execute(sql, params, many, context)


_SENT_WITH_SCOPE = re.compile(rf"SELECT set_config\('{re.escape(SCOPE_SETTING)}', '[^']*', false\); ")


def without_scope(sql: str) -> str:
    """A statement as logged (`connection.queries` shows what was sent), without the scope setting
    that travelled with it."""
    return _SENT_WITH_SCOPE.sub("", sql, count=1)


def install_scope_wrapper(*, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """`connection_created` receiver: every PostgreSQL connection carries the scope."""
    if connection.vendor == "postgresql" and _apply_scope not in connection.execute_wrappers:
        connection.execute_wrappers.append(_apply_scope)


def tenant_tables() -> list[str]:
    """Every table with a `tenant_id` column: the tables RLS must protect."""
    return sorted(
        model._meta.db_table
        for model in apps.get_models()
        if issubclass(model, TenantOwnedModel) and not model._meta.proxy and model._meta.managed
    )


def ensure_app_role(*, using: str, role: str, password: str | None) -> bool:
    """Create the app's login role if it does not exist yet: no superuser, no BYPASSRLS, nothing
    to create. An existing role is left exactly as it is. Returns whether it was created."""
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if cursor.fetchone():
            return False
        attributes = "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"
        if password:
            cursor.execute(f"CREATE ROLE {connection.ops.quote_name(role)} {attributes} PASSWORD %s", [password])
        else:
            cursor.execute(f"CREATE ROLE {connection.ops.quote_name(role)} {attributes}")
    return True


def apply_row_level_security(
    *, using: str = "default", app_role: str | None = None, privileges: str = "SELECT, INSERT, UPDATE, DELETE"
) -> list[str]:
    """Enable and force RLS with the tenant policy on every tenant table (idempotent), and grant
    `app_role` (if given) `privileges` on every table. Run as the tables' owner, after migrating."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return []
    tables = tenant_tables()
    with connection.cursor() as cursor:
        for table in tables:
            quoted = connection.ops.quote_name(table)
            cursor.execute(f"ALTER TABLE {quoted} ENABLE ROW LEVEL SECURITY")
            cursor.execute(f"ALTER TABLE {quoted} FORCE ROW LEVEL SECURITY")
            cursor.execute(f"DROP POLICY IF EXISTS {POLICY_NAME} ON {quoted}")
            cursor.execute(
                f"CREATE POLICY {POLICY_NAME} ON {quoted} USING {POLICY_CONDITION} WITH CHECK {POLICY_CONDITION}"
            )
        if app_role:
            privileges = _checked_privileges(privileges)
            role = connection.ops.quote_name(app_role)
            cursor.execute(f"GRANT {privileges} ON ALL TABLES IN SCHEMA public TO {role}")
            cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}")
    return tables


TABLE_PRIVILEGES = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"})


def _checked_privileges(privileges: str) -> str:
    """`MINIRAG_DATABASE_APP_PRIVILEGES` goes into a GRANT statement: table privileges only."""
    names = [name.strip().upper() for name in privileges.split(",") if name.strip()]
    unknown = [name for name in names if name not in TABLE_PRIVILEGES]
    if not names or unknown:
        raise ValueError(f"MINIRAG_DATABASE_APP_PRIVILEGES must list table privileges; not: {', '.join(unknown)}.")
    return ", ".join(names)
