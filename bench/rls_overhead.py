#!/usr/bin/env python
"""What row-level security costs: the same API reads with the database scope wrapper on (every
statement is preceded by `set_config('minirag.scope', ...)`, and the policies filter rows) and off
(the baseline: the connection logs in as the owner — a superuser here, which policies never bind —
without the wrapper, so only the application's scoped manager filters). The two alternate in
rounds so that drift on a busy machine hits both alike.

    .venv/bin/python bench/rls_overhead.py --owner-url postgres://postgres@127.0.0.1:5432/minirag_bench_rls

Needs PostgreSQL (RLS is PostgreSQL-only) and a role that may create a role and a database. It
creates the database named in the URL (dropped at the end), migrates as the owner, seeds two
tenants with ROWS sources and chats each, then times REPEAT requests of each kind as the app role
(RLS on) and as the owner (RLS bypassed). Reported: p50 per request and the ratio on/off.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import embedded_environment  # noqa: E402

APP_ROLE = "minirag_bench_app"


def with_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}@{parts.hostname or '127.0.0.1'}:{parts.port or 5432}"))


def p50(samples: list[float]) -> float:
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--owner-url", required=True, help="A superuser URL naming a throwaway database.")
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()

    import psycopg

    database = urlsplit(args.owner_url).path.lstrip("/")
    admin_url = urlunsplit(urlsplit(args.owner_url)._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{database}"')
        if not admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [APP_ROLE]).fetchone():
            admin.execute(f'CREATE ROLE "{APP_ROLE}" LOGIN NOSUPERUSER NOBYPASSRLS')
    try:
        with tempfile.TemporaryDirectory(prefix="minirag-bench-") as data_dir:
            os.environ.update(embedded_environment(Path(data_dir), with_user(args.owner_url, APP_ROLE)))
            os.environ["MINIRAG_DATABASE_OWNER_URL"] = args.owner_url
            results = run(args)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    print(f"{'request':34} {'RLS on p50':>11} {'RLS off p50':>12} {'ratio':>6}")
    for label, (on, off) in results.items():
        print(f"{label:34} {on:8.2f} ms {off:9.2f} ms {on / off:6.2f}")


def run(args: Any) -> dict[str, tuple[float, float]]:
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections
    from django.db.backends.signals import connection_created
    from django.test import Client

    from bots.models import BotProfile
    from chat.models import Chat
    from sources.models import Source
    from tenants.models import Role, Tenant
    from tenants.rls import _apply_scope, install_scope_wrapper
    from tenants.services import api_token_create, user_create
    from tenants.tenancy import tenant_scope

    call_command("migrate", verbosity=0)
    tokens = []
    for slug in ("acme", "other"):
        tenant = Tenant.objects.create(name=slug, slug=slug)
        with tenant_scope(tenant):
            owner = user_create(
                tenant=tenant, actor=None, email=f"o@{slug}.test", password="bench-pass", role=Role.OWNER
            )
            bot = BotProfile.objects.create(tenant=tenant, name=f"{slug} bot")
            Source.objects.bulk_create(
                Source(tenant=tenant, bot_profile=bot, name=f"page {i}", source_type="text", status="ready")
                for i in range(args.rows)
            )
            Chat.objects.bulk_create(Chat(tenant=tenant, bot_profile=bot, title=f"chat {i}") for i in range(args.rows))
            tokens.append((api_token_create(tenant=tenant, user=owner, name="bench")[1], bot.pk))
    raw, bot_id = tokens[0]
    requests = {
        "GET /v1/sources?limit=50": f"/v1/sources?limit=50&bot_profile_id={bot_id}",
        "GET /v1/chat?limit=50": "/v1/chat?limit=50",
        "GET /v1/bot-profiles/{id}": f"/v1/bot-profiles/{bot_id}",
        "GET /v1/stats/overview": "/v1/stats/overview",
    }
    client = Client(headers={"Authorization": f"Bearer {raw}"})
    connection = connections["default"]
    app_user, owner_user = connection.settings_dict["USER"], urlsplit(settings.DATABASE_OWNER_URL).username

    def use(rls: bool) -> None:
        """Reconnect as the app role with the scope wrapper (RLS on), or as the owner without it."""
        connection.close()
        connection.close_pool()
        connection.settings_dict["USER"] = app_user if rls else owner_user
        connection.execute_wrappers[:] = [w for w in connection.execute_wrappers if w is not _apply_scope]
        if rls:
            connection.execute_wrappers.append(_apply_scope)
        else:
            connection_created.disconnect(dispatch_uid="minirag_rls_scope")
        if rls:
            connection_created.connect(install_scope_wrapper, dispatch_uid="minirag_rls_scope")

    samples: dict[tuple[str, bool], list[float]] = {(label, rls): [] for label in requests for rls in (True, False)}
    rounds = 5
    for _ in range(rounds):  # alternate, so drift on a busy machine hits both sides alike
        for rls in (True, False):
            use(rls)
            for label, path in requests.items():
                assert client.get(path).status_code == 200
                for _ in range(args.repeat // rounds):
                    started = time.perf_counter()
                    client.get(path)
                    samples[(label, rls)].append((time.perf_counter() - started) * 1000)
    use(True)
    connection.close()
    connection.close_pool()
    return {label: (p50(samples[(label, True)]), p50(samples[(label, False)])) for label in requests}


if __name__ == "__main__":
    main()
