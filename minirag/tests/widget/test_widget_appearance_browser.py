"""The bot's stored appearance in real Chromium: a host page on another origin shows the settings
saved on the bot (title, colours, position, launcher, welcome, starter questions, language, "powered
by"), the element's own attributes win over them, the widget's second file brings German, source cards
read as plain text, and the dashboard's preview and Try-it page show the same settings."""

from __future__ import annotations

from typing import Any

import pytest

from minirag.tests.widget.conftest import Chromium, WidgetSite, dump
from sources.services import source_create, source_ingest_request
from tenants.tenancy import tenant_scope

pytestmark = pytest.mark.usefixtures("widget_test_models")

STORED = {
    "title": "Alpha support",
    "accent_color": "#0f766e",
    "position": "bottom-left",
    "launcher": "help",
    "welcome_message": "Hello from the dashboard!",
    "starter_questions": ["When does the office open?", "How long do refunds take?"],
    "powered_by": True,
}


def store_appearance(site: WidgetSite, **settings: Any) -> None:
    response = site.world.client("admin").patch(
        f"/v1/bot-profiles/{site.world.bot.pk}", {"widget": settings}, format="json"
    )
    assert response.status_code == 200, response.json()


def bare_script(site: WidgetSite, attrs: str = "") -> str:
    """The script tag with the three required attributes only: every look comes from the stored settings."""
    return (
        f'<script src="{site.api_url}/dashboard/widget/minirag-widget.js" data-bot-id="{site.world.bot.pk}" '
        f'data-api-url="{site.api_url}" data-api-token="{site.token}" {attrs} async></script>'
    )


def look(page: Any) -> dict[str, Any]:
    page.wait_for_selector("minirag-widget[data-ready]", state="attached")
    launcher = page.locator(".launcher")
    closed = {
        "launcher_box": launcher.bounding_box(),
        "launcher_color": launcher.evaluate("e => getComputedStyle(e).backgroundColor"),
        "launcher_icon": launcher.locator("path").get_attribute("d"),
    }
    launcher.click()
    page.wait_for_selector("[role=dialog]")
    return {
        **closed,
        "title": page.locator(".title").inner_text(),
        "header_color": page.locator(".head").evaluate("e => getComputedStyle(e).backgroundColor"),
        "header_text": page.locator(".head").evaluate("e => getComputedStyle(e).color"),
        "welcome": page.locator(".message.assistant").all_inner_texts(),
        "chips": page.locator(".chip").all_inner_texts(),
        "powered": page.locator(".pb").inner_text() if page.locator(".pb").is_visible() else None,
        "placeholder": page.locator("textarea").get_attribute("placeholder"),
        "errors": page.locator(".error").count(),
    }


def test_a_host_page_shows_the_stored_appearance(site: WidgetSite, chromium: Chromium) -> None:
    store_appearance(site, **STORED)
    url = site.page("/stored", body=bare_script(site))

    def scenario(page: Any) -> dict[str, Any]:
        page.goto(url)
        result = look(page)
        page.screenshot(path="/tmp/minirag-widget-stored-appearance.png")
        page.locator(".chip").first.click()
        page.wait_for_selector(".message.assistant >> nth=1 >> .feedback-up")
        result["user_bubble"] = page.locator(".message.user").evaluate("e => getComputedStyle(e).backgroundColor")
        return result

    result = chromium.run(scenario)
    assert result["title"] == "Alpha support", dump(result)
    assert result["launcher_color"] == result["header_color"] == result["user_bubble"] == "rgb(15, 118, 110)"
    assert result["header_text"] == "rgb(255, 255, 255)"  # white on a dark accent
    assert result["launcher_box"]["x"] < 100  # bottom left
    assert result["launcher_icon"].startswith("M12 22a10 10")  # the question mark
    assert len(result["welcome"]) == 1 and result["welcome"][0].endswith("Hello from the dashboard!"), dump(result)
    assert result["chips"] == STORED["starter_questions"]
    assert result["powered"] == "Powered by MiniRAG"
    assert result["errors"] == 0


def test_attributes_on_the_element_win_over_the_stored_settings(site: WidgetSite, chromium: Chromium) -> None:
    store_appearance(site, **STORED)
    # A light accent from the page: the text on it turns dark to stay readable.
    element = site.element(
        "accent-color='#ffd60a' position='bottom-right' launcher='sparkle' powered-by='false' "
        "welcome-message='Welcome from the page' starter-questions='[\"Only this?\"]' "
        "avatar-url='https://avatars.invalid/ada.png'"
    )
    url = site.page(
        "/override",
        head=f'<script src="{site.api_url}/dashboard/widget/minirag-widget.js" async></script>',
        body=element,
    )

    def scenario(page: Any) -> dict[str, Any]:
        page.goto(url)
        result = look(page)
        # The avatar cannot be loaded here: the launcher keeps its icon, the header shows no broken image.
        page.wait_for_function(
            "() => !document.querySelector('minirag-widget').shadowRoot.querySelector('.launcher img')"
        )
        result["launcher_icon"] = page.locator(".launcher path").get_attribute("d")
        result["avatar_shown"] = page.locator(".avatar").is_visible()
        return result

    result = chromium.run(scenario)
    assert result["title"] == "Alpha help", dump(result)  # the element's title attribute
    assert result["launcher_color"] == result["header_color"] == "rgb(255, 214, 10)"
    assert result["header_text"] == "rgb(28, 36, 48)"
    assert result["launcher_box"]["x"] > 1100
    assert result["launcher_icon"].startswith("M12 3l2 6")  # the sparkle
    assert result["avatar_shown"] is False
    assert result["welcome"][0].endswith("Welcome from the page") and result["chips"] == ["Only this?"]
    assert result["powered"] is None


def test_the_page_css_accent_wins_over_the_stored_one(site: WidgetSite, chromium: Chromium) -> None:
    store_appearance(site, accent_color="#0f766e")
    url = site.page("/css", body=bare_script(site), style="minirag-widget { --minirag-accent: #7c2d12; }")

    def scenario(page: Any) -> str:
        page.goto(url)
        page.wait_for_selector("minirag-widget[data-ready]", state="attached")
        return page.locator(".launcher").evaluate("e => getComputedStyle(e).backgroundColor")

    assert chromium.run(scenario) == "rgb(124, 45, 18)"


def test_a_stored_language_brings_the_widget_in_german(site: WidgetSite, chromium: Chromium) -> None:
    store_appearance(site, lang="de")
    url = site.page("/de", body=bare_script(site))

    def scenario(page: Any) -> dict[str, Any]:
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.goto(url)
        page.wait_for_selector("minirag-widget[data-ready]", state="attached")
        label = page.locator(".launcher").get_attribute("aria-label")
        page.click(".launcher")
        return {
            "label": label,
            "title": page.locator(".title").inner_text(),
            "placeholder": page.locator("textarea").get_attribute("placeholder"),
            "extra": [url for url in requests if url.endswith("minirag-widget-extra.js")],
        }

    result = chromium.run(scenario)
    assert result["label"] == "Chat öffnen" and result["title"] == "Fragen Sie uns", dump(result)
    assert result["placeholder"] == "Stellen Sie eine Frage…"
    assert result["extra"] == [f"{site.api_url}/dashboard/widget/minirag-widget-extra.js"]


def test_without_its_stored_settings_the_widget_still_works_quietly(site: WidgetSite, chromium: Chromium) -> None:
    """A refused widget-config (here: a page the token does not allow) leaves the attributes and
    defaults in place and shows the visitor nothing until they ask."""
    store_appearance(site, **STORED)
    site.world.client("admin").patch(
        f"/v1/api-tokens/{site.token_id}", {"allowed_origins": ["https://shop.example.com"]}, format="json"
    )
    url = site.page("/quiet", body=site.script_tag())

    def scenario(page: Any) -> dict[str, Any]:
        warnings: list[str] = []
        page.on("console", lambda message: warnings.append(message.text) if message.type == "warning" else None)
        page.goto(url)
        result = look(page)
        result["warnings"] = warnings
        return result

    result = chromium.run(scenario)
    assert result["title"] == "Alpha help" and result["errors"] == 0, dump(result)
    assert result["launcher_color"] == "rgb(37, 87, 214)" and result["launcher_box"]["x"] > 1100
    assert result["chips"] == [] and result["powered"] is None
    assert any("stored appearance could not be read" in warning for warning in result["warnings"])


def test_source_cards_read_as_plain_text_with_percentages(site: WidgetSite, chromium: Chromium) -> None:
    world = site.world
    with tenant_scope(world.tenant):
        source = source_create(
            tenant=world.tenant,
            bot_profile=world.bot,
            name="Refund policy",
            source_type="text",
            content="## Refunds\n\n**Refunds** at Alpha take `five` working days [1] [1], see [the policy](https://alpha.example/refunds).",
        )
        source_ingest_request(tenant=world.tenant, source=source)
    url = site.page("/cards", body=site.script_tag())

    def scenario(page: Any) -> dict[str, Any]:
        page.goto(url)
        page.click(".launcher")
        page.fill("textarea", "How long do refunds at Alpha take?")
        page.keyboard.press("Enter")
        page.wait_for_selector(".message.assistant >> .feedback-up")
        details = page.locator(".message.assistant .sources")
        collapsed = details.get_attribute("open") is None
        page.locator(".message.assistant .sources summary").click()
        return {
            "collapsed": collapsed,
            "cards": page.locator(".source").all_inner_texts(),
            "scores": page.locator(".source .score").all_inner_texts(),
            "list_height": page.locator(".sources ol").evaluate("e => getComputedStyle(e).maxHeight"),
        }

    result = chromium.run(scenario)
    assert result["collapsed"], dump(result)
    card = next((card for card in result["cards"] if "Refund policy" in card), None)
    assert card is not None, dump(result)
    assert "Refunds at Alpha take five working days, see the policy." in card, card
    for mark in ("**", "`", "[1]", "##", "(https://"):
        assert mark not in card, (mark, card)
    for score in result["scores"]:
        number = score.removeprefix("relevance ").removesuffix("%")
        assert score.endswith("%") and number.isdigit() and 0 <= int(number) <= 100, score
    assert result["list_height"] == "220px"


def test_the_try_it_page_shows_the_stored_appearance(site: WidgetSite, chromium: Chromium) -> None:
    store_appearance(site, **STORED)
    world = site.world
    try_url = f"{site.api_url}/dashboard/bots/botprofile/{world.bot.pk}/try/"

    def scenario(page: Any) -> dict[str, Any]:
        page.goto(try_url)
        page.fill("input[name=username]", world.owner.email)
        page.fill("input[name=password]", world.password)
        page.click("input[type=submit]")
        page.wait_for_url(try_url)
        page.wait_for_selector("minirag-widget[data-ready]", state="attached")
        page.wait_for_selector(".chip")
        return {
            "title": page.locator(".title").inner_text(),
            "color": page.locator(".head").evaluate("e => getComputedStyle(e).backgroundColor"),
            "chips": page.locator(".chip").all_inner_texts(),
        }

    result = chromium.run(scenario)
    assert result == {
        "title": "Alpha support",
        "color": "rgb(15, 118, 110)",
        "chips": STORED["starter_questions"],
    }, dump(result)


def test_the_dashboard_preview_follows_the_form_as_one_types(site: WidgetSite, chromium: Chromium) -> None:
    world = site.world
    change_url = f"{site.api_url}/dashboard/bots/botprofile/{world.bot.pk}/change/"

    def scenario(page: Any) -> dict[str, Any]:
        page.goto(change_url)
        page.fill("input[name=username]", world.admin.email)
        page.fill("input[name=password]", world.password)
        page.click("input[type=submit]")
        page.wait_for_url(change_url)
        page.wait_for_selector("#mr-appearance-preview minirag-widget[data-ready]", state="attached")
        before = page.locator("#mr-appearance-preview .title").inner_text()
        page.fill("#id_widget_title", "Typed title")
        page.fill("#id_widget_welcome_message", "Typed welcome")
        page.fill("#id_widget_starter_questions", "First?\nSecond?")
        page.locator("#id_widget_accent_color").evaluate(
            "e => { e.value = '#7c2d12'; e.dispatchEvent(new Event('input', {bubbles: true})) }"
        )
        page.check("#id_widget_powered_by")
        page.select_option("#id_widget_lang", "fr")
        page.wait_for_function(
            "() => { const w = document.querySelector('#mr-appearance-preview minirag-widget');"
            " return w && w.hasAttribute('data-ready') && w.getAttribute('lang') === 'fr' }"
        )
        preview = page.locator("#mr-appearance-preview")
        page.screenshot(path="/tmp/minirag-widget-dashboard-preview.png", full_page=True)
        result = {
            "before": before,
            "title": preview.locator(".title").inner_text(),
            "welcome": preview.locator(".message.assistant").inner_text(),
            "chips": preview.locator(".chip").all_inner_texts(),
            "color": preview.locator(".head").evaluate("e => getComputedStyle(e).backgroundColor"),
            "powered": preview.locator(".pb").inner_text(),
            "placeholder": preview.locator("textarea").get_attribute("placeholder"),
            "errors": preview.locator(".error").count(),
            "inside": page.evaluate(
                "(() => { const s = document.querySelector('.mr-preview-stage').getBoundingClientRect();"
                " const l = document.querySelector('#mr-appearance-preview minirag-widget').shadowRoot"
                ".querySelector('.launcher').getBoundingClientRect();"
                " return l.left >= s.left && l.right <= s.right && l.bottom <= s.bottom && l.top >= s.top })()"
            ),
        }
        page.click("input[name=_continue]")
        page.wait_for_load_state()
        return result

    result = chromium.run(scenario)
    assert result["before"] == "Ask us", dump(result)
    assert result["title"] == "Typed title" and result["welcome"].endswith("Typed welcome")
    assert result["chips"] == ["First?", "Second?"] and result["color"] == "rgb(124, 45, 18)"
    assert result["powered"] == "Propulsé par MiniRAG" and result["placeholder"] == "Posez une question…"
    assert result["errors"] == 0 and result["inside"] is True
    widget = world.client().get(f"/v1/bot-profiles/{world.bot.pk}").json()["widget"]
    assert widget["title"] == "Typed title" and widget["lang"] == "fr" and widget["accent_color"] == "#7c2d12"
    assert widget["starter_questions"] == ["First?", "Second?"] and widget["powered_by"] is True
