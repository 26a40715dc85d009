"""The dashboard's "Try it" page in real Chromium: a tenant owner logs in to /dashboard/, opens
their bot's Try-it page and gets a streamed, cited answer from the real widget, with a short-lived
token that works only on the dashboard's own origin."""

from __future__ import annotations

import threading
from typing import Any

from chat.models import Chat
from minirag.tests.widget.conftest import Chromium, WidgetSite
from sources.models import Source, SourceStatus
from tenants.models import ApiToken
from tenants.tenancy import tenant_scope


def test_a_tenant_owner_tries_the_bot_from_the_dashboard(site: WidgetSite, chromium: Chromium) -> None:
    world = site.world
    try_url = f"{site.api_url}/dashboard/bots/botprofile/{world.bot.pk}/try/"

    def scenario(page: Any) -> dict[str, Any]:
        page.goto(try_url)  # not logged in yet: the login page, then back here
        page.fill("input[name=username]", world.owner.email)
        page.fill("input[name=password]", world.password)
        page.click("input[type=submit]")
        page.wait_for_url(try_url)
        page.wait_for_selector("minirag-widget[data-ready]", state="attached")
        page.fill("textarea", "When does the office open?")
        page.keyboard.press("Enter")
        page.wait_for_selector(".message.assistant .feedback-up")
        answer = page.locator(".message.assistant .body").inner_text()
        page.click(".message.assistant .sources summary")  # collapsed under the answer until opened
        sources = page.locator(".message.assistant .sources").inner_text()
        return {"answer": answer, "sources": sources, "origin": page.evaluate("location.origin")}

    result = chromium.run(scenario)
    assert "nine" in result["answer"], result
    assert "handbook" in result["sources"].lower()
    with tenant_scope(world.tenant):
        preview = ApiToken.objects.get(is_dashboard_preview=True)
        assert preview.allowed_origins == [result["origin"]]
        assert preview.bot_profile_id == world.bot.pk and preview.expires_at is not None
        assert Chat.objects.filter(started_by_token=preview).count() == 1
    # The try-it token is not the site's: it stays out of the embed snippet.
    embed = world.client("admin").get(f"/v1/bot-profiles/{world.bot.pk}/embed").json()
    assert embed["token"]["id"] == str(site.token_id)


def test_the_source_list_follows_an_ingestion_live(site: WidgetSite, chromium: Chromium) -> None:
    world = site.world
    with tenant_scope(world.tenant):
        source = Source.objects.get(pk=world.text_source.pk)
        Source.objects.filter(pk=source.pk).update(
            status=SourceStatus.PROCESSING, chunks_done=1, chunks_total=4, chunk_count=0
        )
    list_url = f"{site.api_url}/dashboard/sources/source/"
    selector = f'[data-source-progress="{source.pk}"]'
    chunks = f'[data-source-chunks="{source.pk}"]'
    finished = threading.Event()

    def scenario(page: Any) -> dict[str, Any]:
        page.goto(list_url)
        page.fill("input[name=username]", world.admin.email)
        page.fill("input[name=password]", world.password)
        page.click("input[type=submit]")
        page.wait_for_url(list_url)
        before = page.locator(selector).inner_text()
        chunks_before = page.locator(chunks).inner_text()
        finished.set()  # the test thread now finishes the "ingestion"
        page.wait_for_selector(f'{selector} .mr-badge[data-status="ready"]', timeout=15_000)
        return {
            "before": before,
            "after": page.locator(selector).inner_text(),
            "chunks_before": chunks_before,
            "chunks_after": page.locator(chunks).inner_text(),  # the same poll rewrote the row's count
        }

    def finish_when_seen() -> None:
        assert finished.wait(60)
        with tenant_scope(world.tenant):
            Source.objects.filter(pk=source.pk).update(
                status=SourceStatus.READY, chunks_done=4, chunks_total=4, chunk_count=4
            )

    finisher = threading.Thread(target=finish_when_seen)
    finisher.start()
    result = chromium.run(scenario)
    finisher.join()
    assert "Processing" in result["before"] and "1/4 chunks" in result["before"]
    assert "Ready" in result["after"] and "chunks" not in result["after"]
    assert (result["chunks_before"], result["chunks_after"]) == ("0", "4")
