"""Database-level isolation (PostgreSQL row-level security), attacked with raw SQL: the defence
under the scoped manager. The suite connects as the app's own role — it owns no table and lacks
BYPASSRLS — exactly as production should (tenants/rls.py)."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import environ
import psycopg
import psycopg.sql
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import DatabaseError, IntegrityError, connection, transaction

from conftest import TenantWorld, build_world
from sources.models import Source
from tenants.models import ApiToken, User
from tenants.rls import tenant_tables
from tenants.tenancy import tenant_scope, tenant_scope_disabled

pytestmark = pytest.mark.django_db


def rows(sql: str, params: Any = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def changed(sql: str, params: Any = None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


@contextmanager
def refused() -> Iterator[None]:
    """The statement fails (in a savepoint, so the test's transaction goes on)."""
    with pytest.raises(DatabaseError), transaction.atomic():
        yield


def test_the_app_role_can_neither_bypass_nor_own(alpha: TenantWorld) -> None:
    role, superuser, bypass = rows("SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")[
        0
    ]
    assert (superuser, bypass) == (False, False), role
    owners = dict(rows("SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'"))
    assert all(owner != role for owner in owners.values()), owners


def test_every_tenant_table_has_forced_row_level_security() -> None:
    with_tenant_id = {
        table
        for (table,) in rows(
            "SELECT table_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND column_name = 'tenant_id'"
        )
    }
    assert with_tenant_id == set(tenant_tables())  # no table with tenant_id escapes the list
    protected = dict(
        (name, (enabled, forced))
        for name, enabled, forced in rows(
            "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = ANY(%s)",
            [sorted(with_tenant_id)],
        )
    )
    assert protected == {table: (True, True) for table in with_tenant_id}
    policies = {table for (table,) in rows("SELECT tablename FROM pg_policies WHERE schemaname = 'public'")}
    assert policies == with_tenant_id


def test_raw_sql_in_one_tenants_scope_cannot_read_or_write_anothers(alpha: TenantWorld, beta: TenantWorld) -> None:
    beta_id, beta_bot, beta_source = str(beta.tenant.pk), str(beta.bot.pk), str(beta.text_source.pk)
    with tenant_scope(alpha.tenant):
        assert rows("SELECT name FROM bots_botprofile") == [("alpha bot",)]
        for table in tenant_tables():
            assert rows(f'SELECT count(*) FROM "{table}" WHERE tenant_id = %s', [beta_id]) == [(0,)], table
        assert rows("SELECT content FROM sources_chunk WHERE content LIKE %s", ["%beta%"]) == []
        assert changed("UPDATE bots_botprofile SET name = 'pwned' WHERE id = %s", [beta_bot]) == 0
        assert changed("DELETE FROM sources_source WHERE id = %s", [beta_source]) == 0
        assert changed("UPDATE sources_chunk SET content = 'pwned'") > 0  # its own rows only
        with refused():  # writing a row into another tenant
            changed("UPDATE bots_botprofile SET tenant_id = %s", [beta_id])
        with refused():
            changed(
                "INSERT INTO bots_botprofile (id, tenant_id, name, description, model, embedding_model, "
                "system_prompt, temperature, max_tokens, top_k, similarity_threshold, refusal_message, chunk_size, "
                "chunk_overlap, history_turns, credentials_ciphertext, is_active, created_at, updated_at) "
                "SELECT gen_random_uuid(), %s, 'planted', '', model, embedding_model, system_prompt, temperature, "
                "max_tokens, top_k, similarity_threshold, refusal_message, chunk_size, chunk_overlap, history_turns, "
                "'', true, now(), now() FROM bots_botprofile LIMIT 1",
                [beta_id],
            )
    with tenant_scope(beta.tenant):
        assert rows("SELECT name FROM bots_botprofile") == [("beta bot",)]
        assert rows("SELECT count(*) FROM sources_chunk WHERE content = 'pwned'") == [(0,)]
        assert Source.objects.filter(pk=beta.text_source.pk).exists()


def test_unscoped_raw_sql_sees_nothing(alpha: TenantWorld, beta: TenantWorld) -> None:
    for table in tenant_tables():
        assert rows(f'SELECT count(*) FROM "{table}"') == [(0,)], table
    assert changed("DELETE FROM sources_chunk") == 0
    with tenant_scope_disabled("test: the operator's view"):
        assert rows("SELECT count(*) FROM bots_botprofile") == [(2,)]


def test_the_unscoped_manager_and_subqueries_obey_the_database_too(alpha: TenantWorld, beta: TenantWorld) -> None:
    with tenant_scope(alpha.tenant):
        assert not ApiToken.all_tenants.filter(tenant=beta.tenant).exists()
        assert {u.email for u in User.all_tenants.all()} == {alpha.owner.email, alpha.admin.email, alpha.member.email}
        tokens_of_any_bot = ApiToken.all_tenants.filter(bot_profile__in=Source.all_tenants.values("bot_profile"))
        assert {token.tenant_id for token in tokens_of_any_bot} == {alpha.tenant.pk}


def test_the_app_role_cannot_switch_row_level_security_off(alpha: TenantWorld) -> None:
    with tenant_scope(alpha.tenant):
        for attack in (
            "ALTER TABLE bots_botprofile DISABLE ROW LEVEL SECURITY",
            "ALTER TABLE bots_botprofile NO FORCE ROW LEVEL SECURITY",
            "DROP POLICY minirag_tenant_isolation ON bots_botprofile",
            "SET ROLE postgres",
        ):
            with refused():
                changed(attack)
        with refused():  # row_security=off makes a query that policies would filter fail, not leak
            changed("SET LOCAL row_security = off")
            rows("SELECT count(*) FROM bots_botprofile")


def test_a_setting_made_by_sql_never_outlives_its_statement(alpha: TenantWorld, beta: TenantWorld) -> None:
    """Even a statement that sets minirag.scope itself (say, through an injected fragment) is
    followed by one that resets it from the code's scope."""
    with tenant_scope(alpha.tenant):
        assert rows("SELECT set_config('minirag.scope', %s, false)", [str(beta.tenant.pk)]) == [(str(beta.tenant.pk),)]
        assert rows("SELECT name FROM bots_botprofile") == [("alpha bot",)]


def test_the_scope_travels_in_the_same_message_as_a_data_statement(alpha: TenantWorld, beta: TenantWorld) -> None:
    """One round trip per statement: what reaches the server is the scope setting followed by the
    statement, and the cursor reads the statement's result (rows, row counts, RETURNING)."""
    sent: list[str] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        sent.append(sql)
        return execute(sql, params, many, context)

    with tenant_scope(alpha.tenant), connection.execute_wrapper(record):
        assert rows("SELECT name FROM bots_botprofile") == [("alpha bot",)]
        assert changed("UPDATE bots_botprofile SET description = 'x'") == 1
        assert rows("SELECT count(*) FROM bots_botprofile WHERE name LIKE 'alpha%%'") == [(1,)]
        created = Source.objects.create(
            bot_profile=alpha.bot, source_type="text", name="one message", config={"text": "x"}
        )
    scope = f"SELECT set_config('minirag.scope', '{alpha.tenant.pk}', false); "
    assert created.pk is not None
    assert sent[0] == scope + "SELECT name FROM bots_botprofile"
    assert all(sql.startswith(scope) for sql in sent)
    with tenant_scope(beta.tenant):
        assert not Source.objects.filter(pk=created.pk).exists()


def test_a_statement_that_cannot_share_the_message_still_gets_the_scope_first(alpha: TenantWorld) -> None:
    """A server-side cursor (`.iterator()`) gets the scope in a message of its own; a statement that
    fails raises Django's error, and the next one runs under the right scope."""
    sent: list[str] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        sent.append(sql)
        return execute(sql, params, many, context)

    with tenant_scope(alpha.tenant):
        expected = sorted(Source.objects.values_list("name", flat=True))
        with connection.execute_wrapper(record):
            with transaction.atomic():
                names = [source.name for source in Source.objects.order_by("name").iterator(chunk_size=1)]
            with refused():  # a row of no tenant: the policy refuses it
                changed("INSERT INTO bots_botprofile (id) VALUES (NULL)")
            assert rows("SELECT name FROM bots_botprofile") == [("alpha bot",)]
    assert expected and names == expected
    assert any(sql.startswith('SELECT "sources_source"') for sql in sent)  # the server-side cursor's, alone


def test_a_scope_never_leaks_to_the_next_user_of_a_connection(transactional_db: Any) -> None:
    """Pooled connections pass from thread to thread: whoever gets one next sees only what their
    own scope allows (committed data, so every connection could see it)."""
    world = build_world("alpha")
    seen: dict[str, Any] = {}

    def scoped() -> None:
        with tenant_scope(world.tenant):
            seen["scoped"] = rows("SELECT count(*) FROM bots_botprofile")[0][0]
        seen["after"] = rows("SELECT count(*) FROM bots_botprofile")[0][0]
        connection.close()  # back to the pool

    connection.close()
    thread = threading.Thread(target=scoped)
    thread.start()
    thread.join()
    assert seen == {"scoped": 1, "after": 0}
    assert rows("SELECT count(*) FROM bots_botprofile") == [(0,)]


def test_the_database_refuses_a_reference_to_another_tenants_row(alpha: TenantWorld, beta: TenantWorld) -> None:
    with tenant_scope_disabled("test: a write the application would refuse"), refused():
        changed("SET CONSTRAINTS ALL IMMEDIATE")
        changed(
            "UPDATE sources_source SET bot_profile_id = %s WHERE id = %s",
            [str(beta.bot.pk), str(alpha.text_source.pk)],
        )
    with tenant_scope_disabled("test: a write the application would refuse"), pytest.raises(IntegrityError):
        with transaction.atomic():
            changed("SET CONSTRAINTS ALL IMMEDIATE")
            changed(
                "UPDATE chat_message SET chat_id = (SELECT id FROM chat_chat WHERE tenant_id = %s LIMIT 1) "
                "WHERE tenant_id = %s",
                [str(beta.tenant.pk), str(alpha.tenant.pk)],
            )


def test_migrate_reapplies_the_policies_and_creates_a_missing_app_role(
    transactional_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`manage.py migrate` as the owner: the app role (DATABASE_URL's user) is created without any
    power over the schema if it does not exist, every tenant table gets its policy again, and the
    role gets data privileges only."""
    probe = "minirag_probe_role"
    monkeypatch.setitem(connection.settings_dict, "USER", probe)
    monkeypatch.setitem(connection.settings_dict, "PASSWORD", "probe-password")
    out = io.StringIO()
    try:
        call_command("migrate", verbosity=1, stdout=out)
        assert f"Created the database role {probe}" in out.getvalue()
        assert f"Row-level security applied to {len(tenant_tables())} tenant tables" in out.getvalue()
        with owner_connection() as owner:
            attributes = owner.execute(
                "SELECT rolsuper, rolbypassrls, rolcreatedb, rolcreaterole, rolcanlogin FROM pg_roles "
                "WHERE rolname = %s",
                [probe],
            ).fetchone()
            assert attributes == (False, False, False, False, True)
            privileges = owner.execute(
                "SELECT DISTINCT privilege_type FROM information_schema.role_table_grants WHERE grantee = %s",
                [probe],
            ).fetchall()
            assert {p for (p,) in privileges} == {"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE"}
    finally:
        with owner_connection() as owner:
            owner.execute(psycopg.sql.SQL("DROP OWNED BY {}").format(psycopg.sql.Identifier(probe)))
            owner.execute(psycopg.sql.SQL("DROP ROLE IF EXISTS {}").format(psycopg.sql.Identifier(probe)))


@contextmanager
def owner_connection() -> Iterator[psycopg.Connection]:
    """A connection to the test database as its owner (the test server's superuser)."""
    owner = environ.Env.db_url_config(settings.DATABASE_OWNER_URL)
    with psycopg.connect(
        host=owner["HOST"] or "127.0.0.1",
        port=owner["PORT"] or 5432,
        user=owner["USER"],
        dbname=connection.settings_dict["NAME"],
        autocommit=True,
    ) as conn:
        yield conn
