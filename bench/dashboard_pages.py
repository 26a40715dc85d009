#!/usr/bin/env python
"""Dashboard page times, and what the tenant boundary costs there.

    .venv/bin/python bench/dashboard_pages.py                 # about 30 seconds
    .venv/bin/python bench/dashboard_pages.py --rows 5000 --database-url postgres://...

Two tenants with ROWS sources and ROWS/2 chats each (plus usage events for the usage page). The
same pages are requested by a platform operator (unscoped, filtered to the tenant through the
list's tenant filter: the baseline, showing the very same rows) and by the tenant's own admin
(scoped by the tenancy core). Reported per page: median and p95 over REPEAT requests, and the
ratio tenant admin / operator — the price of enforcing the boundary in every query. The API's
`GET /v1/sources?limit=100` is timed alongside as a reference for a list of the same rows.

Embedded mode (SQLite in a temporary directory), or PostgreSQL with --database-url.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import embedded_environment  # noqa: E402


def timed(request: Callable[[], Any], repeat: int) -> list[float]:
    request()  # warm caches and connections
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = request()
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
    return samples


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.95) - 1]


def populate(slug: str, rows: int) -> Any:
    from django.utils import timezone

    from bots.models import BotProfile
    from chat.models import Chat, UsageEvent
    from sources.models import Source
    from tenants.models import Role, Tenant
    from tenants.services import api_token_create, user_create
    from tenants.tenancy import tenant_scope

    tenant = Tenant.objects.create(name=slug.title(), slug=slug)
    with tenant_scope(tenant):
        admin = user_create(
            tenant=tenant, actor=None, email=f"admin@{slug}.test", password="bench-password", role=Role.ADMIN
        )
        bot = BotProfile.objects.create(tenant=tenant, name=f"{slug} bot")
        Source.objects.bulk_create(
            Source(tenant=tenant, bot_profile=bot, name=f"{slug} page {i}", source_type="text", status="ready")
            for i in range(rows)
        )
        chats = Chat.objects.bulk_create(
            Chat(tenant=tenant, bot_profile=bot, title=f"chat {i}") for i in range(rows // 2)
        )
        now = timezone.now()
        UsageEvent.objects.bulk_create(
            UsageEvent(
                tenant=tenant,
                bot_profile=bot,
                chat=chat,
                model=("gpt-4o-mini", "local/extractive")[i % 2],
                prompt_tokens=500,
                completion_tokens=80,
                cost_usd="0.0001",
                created_at=now - timezone.timedelta(hours=i % (24 * 30)),
            )
            for i, chat in enumerate(chats)
        )
        _, raw_token = api_token_create(tenant=tenant, user=admin, name="bench")
    return tenant, admin, raw_token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--database-url")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="minirag-bench-") as data_dir:
        os.environ.update(embedded_environment(Path(data_dir), args.database_url))
        import django

        django.setup()
        from django.core.management import call_command
        from django.test import Client

        from tenants.models import User
        from tenants.tenancy import tenant_scope_disabled

        call_command("migrate", verbosity=0)
        if args.database_url:
            call_command("flush", interactive=False, verbosity=0)
        started = time.perf_counter()
        tenant, admin, raw_token = populate("acme", args.rows)
        populate("other", args.rows)
        elapsed = time.perf_counter() - started
        print(f"Two tenants with {args.rows} sources and {args.rows // 2} chats each ({elapsed:.1f} s)")

        with tenant_scope_disabled("bench: operator account"):
            User.objects.create_superuser("ops@bench.test", "bench-password")
        operator, tenant_admin = Client(), Client()
        assert operator.login(username="ops@bench.test", password="bench-password")
        assert tenant_admin.login(username=admin.email, password="bench-password")
        only_acme = f"tenant__id__exact={tenant.pk}"
        pages = [
            ("sources list", "/dashboard/sources/source/", only_acme),
            ("sources search", "/dashboard/sources/source/?q=page+17", f"q=page+17&{only_acme}"),
            ("chats list", "/dashboard/chat/chat/", only_acme),
            ("usage page (30 days)", "/dashboard/usage/", "tenant=acme"),
        ]
        print(f"{'page':24} {'operator p50/p95 ms':>20} {'tenant admin p50/p95 ms':>24} {'ratio':>6}")
        for label, path, operator_query in pages:
            operator_url = f"{path.split('?')[0]}?{operator_query}"
            operator_ms = summary(timed(lambda url=operator_url: operator.get(url), args.repeat))
            admin_ms = summary(timed(lambda url=path: tenant_admin.get(url), args.repeat))
            print(
                f"{label:24} {operator_ms[0]:9.1f} / {operator_ms[1]:6.1f}   {admin_ms[0]:11.1f} / {admin_ms[1]:6.1f}"
                f"   {admin_ms[0] / operator_ms[0]:5.2f}"
            )
        api = Client(headers={"Authorization": f"Bearer {raw_token}"})
        api_ms = summary(timed(lambda: api.get("/v1/sources?limit=100"), args.repeat))
        print(f"{'API /v1/sources (100)':24} {'':>20} {api_ms[0]:11.1f} / {api_ms[1]:6.1f}")


if __name__ == "__main__":
    main()
