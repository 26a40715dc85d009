"""`manage.py ingest`: synchronous ingestion with progress, clear errors."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from conftest import LocalSite, TenantWorld
from sources.models import Source
from sources.services import source_create
from tenants.tenancy import tenant_scope

pytestmark = pytest.mark.django_db


def test_ingest_one_source_and_all(alpha: TenantWorld, site: LocalSite) -> None:
    site.add("/", "<html><body><main><p>" + "Our opening hours are nine to five. " * 20 + "</p></main></body></html>")
    with tenant_scope(alpha.tenant):
        page = source_create(
            tenant=alpha.tenant, bot_profile=alpha.bot, name="Home", source_type="url", config={"url": site.url("/")}
        )
    out = io.StringIO()
    call_command("ingest", "--tenant", "alpha", "--source", str(page.pk), stdout=out)
    assert "✓ Home" in out.getvalue() and "Ingested 1 source(s)." in out.getvalue()
    with tenant_scope(alpha.tenant):
        assert Source.objects.get(pk=page.pk).status == "ready"

    out = io.StringIO()
    call_command("ingest", "--tenant", "alpha", "--all", stdout=out)
    output = out.getvalue()
    assert "Ingested 4 source(s)." in output  # the fixture's text, upload and curated answer, and the page
    assert "✓ Home: 2 chunks (0 embedded, 2 reused)" in output  # unchanged: nothing embedded again


def test_ingest_reports_failures_with_a_non_zero_exit(alpha: TenantWorld, site: LocalSite) -> None:
    with tenant_scope(alpha.tenant):
        broken = source_create(
            tenant=alpha.tenant,
            bot_profile=alpha.bot,
            name="Broken",
            source_type="url",
            config={"url": site.url("/missing")},
        )
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 source"):
        call_command("ingest", "--tenant", "alpha", "--source", str(broken.pk), stdout=out)
    assert "✗ Broken" in out.getvalue() and "404" in out.getvalue()


def test_ingest_refuses_unknown_or_foreign_sources(alpha: TenantWorld, beta: TenantWorld) -> None:
    with pytest.raises(CommandError, match="No active source"):
        call_command("ingest", "--tenant", "alpha", "--source", str(beta.text_source.pk))
    with pytest.raises(CommandError, match="No active source"):
        call_command("ingest", "--tenant", "alpha", "--source", "nope")


def test_ingest_bot_filter_must_name_a_bot_of_this_tenant(alpha: TenantWorld, beta: TenantWorld) -> None:
    for bot in ("nope", str(beta.bot.pk)):
        with pytest.raises(CommandError, match="Bot profile not found"):
            call_command("ingest", "--tenant", "alpha", "--all", "--bot", bot)
    with pytest.raises(CommandError, match="--bot goes with --all"):
        call_command("ingest", "--tenant", "alpha", "--source", str(alpha.text_source.pk), "--bot", str(alpha.bot.pk))
    out = io.StringIO()
    call_command("ingest", "--tenant", "alpha", "--all", "--bot", str(alpha.bot.pk), stdout=out)
    assert "Ingested 3 source(s)." in out.getvalue()  # the fixture's text, upload and curated answer
