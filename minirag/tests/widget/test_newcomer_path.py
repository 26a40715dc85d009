"""The path of a company that sets MiniRAG up alone, in real Chromium, as the owner of a fresh
workspace: the start page's checklist leads to a new bot, a file is uploaded and read (the list
follows it live), Try it answers with a citation, the widget code is created on the bot page for
the company's site, the look is set without code, and the code pasted on a page of that other
origin answers there, looking as set. Screenshots at 1366 and 390 px are kept as test artefacts
(var/test-artifacts/newcomer/, or MINIRAG_TEST_ARTIFACTS)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from bots.models import BotProfile
from minirag.tests.widget.conftest import Chromium, HostPages, InFlight
from tenants.services import tenant_bootstrap
from tenants.tenancy import tenant_scope, tenant_scope_disabled

ARTIFACTS = Path(
    os.environ.get("MINIRAG_TEST_ARTIFACTS") or Path(__file__).resolve().parents[3] / "var" / "test-artifacts"
)
SHOTS = ARTIFACTS / "newcomer"
EMAIL, PASSWORD, SLUG = "founder@bakery.example", "a-long-owner-password", "bakery"
HOURS = b"# Opening hours\n\nThe bakery opens at seven in the morning and closes at six in the evening, every day.\n"
QUESTION = "When does the bakery open?"


@pytest.fixture
def fresh_workspace(transactional_db: Any) -> None:
    with tenant_scope_disabled("test: a new workspace"):
        tenant_bootstrap(name="Bakery", slug=SLUG, owner_email=EMAIL, owner_password=PASSWORD)


def log_in(page: Any, base: str) -> None:
    page.goto(f"{base}/dashboard/")
    page.fill("input[name=username]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    if page.locator("input[name=workspace]").count():
        page.fill("input[name=workspace]", SLUG)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/dashboard/")


def test_a_company_sets_up_its_assistant_alone(
    fresh_workspace: None, api_server: tuple[str, InFlight], host_pages: HostPages, chromium: Chromium
) -> None:
    base, in_flight = api_server
    SHOTS.mkdir(parents=True, exist_ok=True)

    def set_up(page: Any) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        log_in(page, base)
        page.screenshot(path=str(SHOTS / "start-empty-1366.png"), full_page=True)
        # The checklist's next step is the first one: create the assistant.
        page.click(".mr-step-next .mr-button-primary")
        page.fill("input[name=name]", "Bakery helper")
        page.click("input[name=_continue]")
        page.wait_for_url(re.compile(r".*/bots/botprofile/[0-9a-f-]+/change/.*"))
        seen["bot_url"] = page.url.split("?")[0]

        # Knowledge: the bot page's "Upload a file" opens the form for files only.
        page.click("text=Upload a file")
        assert page.locator("input[name=url]").count() == 0 and page.locator("textarea[name=content]").count() == 0
        page.set_input_files(
            "input[name=file]", files=[{"name": "opening_hours.md", "mimeType": "text/markdown", "buffer": HOURS}]
        )
        seen["suggested_name"] = page.input_value("input[name=name]")
        page.click("input[name=_save]")
        page.wait_for_url("**/sources/source/**")
        page.wait_for_selector('.mr-badge[data-status="ready"]', timeout=60_000)  # the list follows it live

        # Try it: the real widget on the dashboard answers with a citation.
        page.goto(seen["bot_url"].replace("/change/", "/try/"))
        page.wait_for_selector("minirag-widget[data-ready]", state="attached")
        page.fill("textarea", QUESTION)
        page.keyboard.press("Enter")
        page.wait_for_selector(".message.assistant .feedback-up", timeout=30_000)
        seen["try_answer"] = page.locator(".message.assistant .body").last.inner_text()

        # The widget code, made on the bot page for the company's site, and the look set without code.
        page.goto(seen["bot_url"])
        page.fill("#mr-token-origins", host_pages.origin)
        page.click("text=Create the code for my site")
        page.wait_for_selector("#embed-snippet")
        seen["snippet"] = page.locator("#embed-snippet").inner_text()
        page.fill("input[name=widget_title]", "Ask the bakery")
        page.fill("input[name=widget_accent_color]", "#8a3b12")
        page.fill("textarea[name=widget_welcome_message]", "Hello! Ask me about the bakery.")
        page.click("input[name=_continue]")
        page.wait_for_selector(".messagelist .success, .messagelist li")
        page.screenshot(path=str(SHOTS / "bot-1366.png"), full_page=True)
        page.goto(f"{base}/dashboard/")
        page.screenshot(path=str(SHOTS / "start-done-1366.png"), full_page=True)
        return seen

    seen = chromium.run(set_up, width=1366, height=900)
    assert seen["suggested_name"] == "opening hours"
    assert "seven" in seen["try_answer"]
    assert host_pages.origin not in seen["snippet"] and "nrag_live_" in seen["snippet"]
    with tenant_scope_disabled("test: the new bot"):
        bot = BotProfile.all_tenants.get(name="Bakery helper")
    with tenant_scope(bot.tenant_id):
        bot.refresh_from_db()
    assert bot.widget["title"] == "Ask the bakery" and bot.widget["accent_color"] == "#8a3b12"

    # The code, pasted on the company's own page (another origin), answers there with the stored look.
    shop = host_pages.add(
        "/bakery",
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Bakery</title></head>"
        f"<body><h1>Our bakery</h1>{seen['snippet']}</body></html>",
    )

    def visit(page: Any) -> dict[str, Any]:
        page.goto(shop)
        page.wait_for_selector("minirag-widget[data-ready]", state="attached")
        page.click("minirag-widget >> .launcher")
        page.wait_for_selector("minirag-widget >> .dialog")
        title = page.locator("minirag-widget >> .title").inner_text()
        welcome = page.locator("minirag-widget >> .log").inner_text()
        accent = page.evaluate(
            "() => getComputedStyle(document.querySelector('minirag-widget').shadowRoot.querySelector('.launcher'))"
            ".backgroundColor"
        )
        page.fill("minirag-widget >> textarea", QUESTION)
        page.keyboard.press("Enter")
        page.wait_for_selector("minirag-widget >> .message.assistant .feedback-up", timeout=30_000)
        answer = page.locator("minirag-widget >> .message.assistant .body").last.inner_text()
        page.screenshot(path=str(SHOTS / "site-1366.png"))
        return {"title": title, "welcome": welcome, "accent": accent, "answer": answer}

    visited = chromium.run(visit, width=1366, height=900)
    assert visited["title"] == "Ask the bakery" and "Hello! Ask me about the bakery." in visited["welcome"]
    assert visited["accent"] == "rgb(138, 59, 18)"
    assert "seven" in visited["answer"]

    def phone(page: Any) -> dict[str, Any]:
        log_in(page, base)
        page.screenshot(path=str(SHOTS / "start-390.png"), full_page=True)
        page.goto(seen["bot_url"])
        page.screenshot(path=str(SHOTS / "bot-390.png"), full_page=True)
        width = page.evaluate("() => document.documentElement.scrollWidth")
        # Try it on a phone: the widget greets with the stored welcome, not a blank screen.
        page.goto(seen["bot_url"].replace("/change/", "/try/"))
        page.wait_for_selector("minirag-widget[data-ready]", state="attached")
        if not page.locator("minirag-widget >> .dialog").is_visible():
            page.click("minirag-widget >> .launcher")
        page.wait_for_selector("minirag-widget >> .dialog")
        page.wait_for_timeout(400)  # past the opening animation
        page.screenshot(path=str(SHOTS / "try-390.png"))
        return {"width": width, "try": page.locator("minirag-widget >> .log").inner_text()}

    on_phone = chromium.run(phone, width=390, height=844, is_mobile=True, has_touch=True)
    assert on_phone["width"] <= 390 and "Hello! Ask me about the bakery." in on_phone["try"]
    for name in ("start-empty-1366", "bot-1366", "start-done-1366", "site-1366", "start-390", "bot-390", "try-390"):
        assert (SHOTS / f"{name}.png").stat().st_size > 0
    in_flight.wait_idle()
