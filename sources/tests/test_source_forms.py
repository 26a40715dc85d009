"""The dashboard's "add knowledge" forms: a chooser of kinds, then a form with only what that kind
needs and its limits stated; a page added without a name takes its title; an over-size upload is
answered in words, never in raw JSON; the bot page leads to all of it."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile

from bots.models import BotProfile
from conftest import LocalSite, TenantWorld
from minirag.asgi_limits import BodySizeLimitMiddleware
from minirag.tests.test_dashboard import admin_url, form_data, tenant_client
from sources.models import Source, SourceStatus
from tenants.tenancy import tenant_scope

pytestmark = pytest.mark.django_db


def add_url(kind: str, world: TenantWorld) -> str:
    return admin_url(Source, "add") + f"?source_type={kind}&bot_profile={world.bot.pk}"


def field_names(page: Any) -> set[str]:
    return set(page.context["adminform"].form.fields)


def test_the_chooser_offers_each_kind_and_each_form_asks_only_for_what_it_needs(alpha: TenantWorld) -> None:
    client = tenant_client(alpha)
    chooser = client.get(admin_url(Source, "add") + f"?bot_profile={alpha.bot.pk}").content.decode()
    for label in ("Uploaded file", "Web page", "Site crawl", "Text", "Sitemap", "External search"):
        assert label in chooser
    assert f"?source_type=upload&amp;bot_profile={alpha.bot.pk}" in chooser and "10 MB" in chooser

    upload = client.get(add_url("upload", alpha))
    assert {"file", "name", "authority"} <= field_names(upload)
    assert not {"url", "content", "max_pages", "api_token"} & field_names(upload)
    html = upload.content.decode()
    assert 'data-max-bytes="10485760"' in html and "Up to 10 MB" in html and "Leave empty to use the file" in html
    assert "Mandatory: rules the bot must follow" in html and "Guideline: preferred practice" in html
    assert upload.context["adminform"].form.initial["bot_profile"] == str(alpha.bot.pk)
    text = client.get(add_url("text", alpha))
    assert {"name", "content"} <= field_names(text) and not {"file", "url"} & field_names(text)
    crawl = client.get(add_url("crawl", alpha))
    assert {"url", "max_pages", "max_depth", "path_prefix"} <= field_names(crawl)
    assert "up to 1000" in crawl.content.decode()


def test_a_page_added_without_a_name_takes_its_title(
    alpha: TenantWorld, site: LocalSite, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.ALLOW_PRIVATE_NETWORKS = True
    address = site.add(
        "/returns",
        "<html><head><title>Returns and refunds</title></head><body><main><p>"
        + "Refunds take five working days. " * 20
        + "</p></main></body></html>",
    )
    client = tenant_client(alpha)
    url = add_url("url", alpha)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, form_data(client, url, url=address, name="", ingest_now="on"))
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    with tenant_scope(alpha.tenant):
        source = Source.objects.get(config__url=address)
    assert (source.status, source.name) == (SourceStatus.READY, "Returns and refunds")


def test_an_over_size_upload_reads_as_words_on_the_dashboard_and_json_on_the_api() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:  # never reached: refused first
        raise AssertionError("the application was called")

    limit = django_settings.UPLOAD_MAX_BYTES
    middleware = BodySizeLimitMiddleware(app, max_bytes=limit + 1024, upload_max_bytes=limit)

    def refused(path: str) -> tuple[int, dict[bytes, bytes], bytes]:
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "path": path, "headers": [(b"content-length", str(40 * 1024 * 1024).encode())]}
        asyncio.run(middleware(scope, None, send))
        return sent[0]["status"], dict(sent[0]["headers"]), sent[1]["body"]

    status, headers, body = refused("/dashboard/sources/source/add/")
    assert status == 413 and headers[b"content-type"].startswith(b"text/html")
    assert b"Files can be at most 10 MB" in body and b"byte limit" not in body
    status, headers, body = refused("/v1/sources/upload")
    assert status == 413 and headers[b"content-type"] == b"application/json" and b"byte limit" in body


def test_the_bot_page_leads_to_knowledge_and_speaks_plainly(alpha: TenantWorld) -> None:
    client = tenant_client(alpha)
    page = client.get(admin_url(BotProfile, "change", alpha.bot.pk)).content.decode()
    # The fixture's upload and curated answer wait to be ingested (their queueing waits for a commit).
    assert "1 of 3 sources ready, 1 passage to answer from" in page
    for label, kind in (("Upload a file", "upload"), ("Add a web page", "url"), ("Write text", "text")):
        assert label in page and f"source_type={kind}&amp;bot_profile={alpha.bot.pk}" in page
    assert "Not needed for the offline local models" in page  # no red cross for a key nobody needs
    assert "historylink" not in page  # Django's change log, which knows nothing of API changes
    assert "/v1/" not in re.sub(r"<script.*?</script>|data-api-url=\"[^\"]*\"", "", page, flags=re.S)
    listing = client.get(admin_url(BotProfile, "changelist")).content.decode()
    assert "Not needed for the offline local models" in listing and "icon-no.svg" not in listing


def test_an_upload_from_the_bot_page_keeps_its_authority(
    alpha: TenantWorld, django_capture_on_commit_callbacks: Any
) -> None:
    client = tenant_client(alpha)
    url = add_url("upload", alpha)
    rules = SimpleUploadedFile("house-rules.md", b"# House rules\n\nNo dogs in the dining room.")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, form_data(client, url, file=rules, authority="mandatory"))
    assert response.status_code == 302
    with tenant_scope(alpha.tenant):
        source = Source.objects.get(name="house-rules.md")
    assert source.authority == "mandatory" and source.status == SourceStatus.READY
