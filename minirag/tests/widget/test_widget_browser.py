"""The widget in real headless Chromium, on a host page served from another origin than the API."""

from __future__ import annotations

from typing import Any

import pytest

from chat.models import Message
from minirag.tests.widget.conftest import Chromium, WidgetSite, dump, run_axe, use_model
from tenants.models import Tenant
from tenants.tenancy import tenant_scope

QUESTION = "When does the office open?"
pytestmark = pytest.mark.usefixtures("widget_test_models")


def open_and_ask(page: Any, question: str = QUESTION) -> None:
    page.click(".launcher")
    page.fill("textarea", question)
    page.keyboard.press("Enter")


def wait_for_answer(page: Any, count: int = 1) -> Any:
    page.wait_for_selector(f".message.assistant >> nth={count - 1} >> .feedback-up")
    return page.locator(".message.assistant").nth(count - 1)


@pytest.mark.parametrize("placement", ["head", "head-async", "body", "element"])
def test_it_mounts_every_documented_way(site: WidgetSite, chromium: Chromium, placement: str) -> None:
    head = site.script_tag(asynchronous=placement == "head-async") if placement.startswith("head") else ""
    body = {"body": site.script_tag(), "element": site.element()}.get(placement, "")
    if placement == "element":
        head = f'<script src="{site.api_url}/dashboard/widget/minirag-widget.js"></script>'
    url = site.page(f"/mount-{placement}", head=head, body=body)

    def scenario(page: Any) -> dict[str, Any]:
        page.goto(url)
        page.wait_for_selector("minirag-widget[data-ready]", state="attached")
        launcher = page.locator(".launcher")
        assert launcher.is_visible()
        box = launcher.bounding_box()
        return {"count": page.locator("minirag-widget").count(), "box": box}

    result = chromium.run(scenario)
    assert result["count"] == 1
    box = result["box"]
    assert box["x"] > 1100 and box["y"] > 650, box  # bottom right corner


def test_a_streamed_answer_with_citations_survives_a_reload(site: WidgetSite, chromium: Chromium) -> None:
    use_model(site, "widgettest/slow")
    url = site.page("/ask", body=site.script_tag())

    def scenario(page: Any) -> dict[str, Any]:
        page.goto(url)
        open_and_ask(page)
        # Words arrive one by one: the answer is visible while it is still being written.
        page.wait_for_selector(".message.assistant .body >> text=office")
        partial = page.locator(".message.assistant .body").inner_text()
        assert page.locator(".stop").is_visible()
        answer = wait_for_answer(page)
        final = answer.locator(".body").inner_text()
        # The sources are collapsed under the answer until the visitor opens them.
        collapsed = answer.locator(".sources").get_attribute("open") is None
        answer.locator(".sources summary").click()
        sources = answer.locator(".source")
        first_source = {
            "name": sources.first.locator(".name").inner_text(),
            "href": sources.first.locator("a").get_attribute("href"),
            "score": sources.first.locator(".score").inner_text(),
        }
        citation_buttons = answer.locator("button.cite").count()
        live = page.locator("[role=status]").inner_text()
        stored = page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('minirag:'))")
        page.screenshot(path="/tmp/minirag-widget-answer.png")
        page.reload()
        page.wait_for_selector("minirag-widget[data-ready]", state="attached")
        # The dialog was open: it opens again and restores the conversation from the API.
        restored = wait_for_answer(page)
        return {
            "partial": partial,
            "final": final,
            "collapsed": collapsed,
            "source": first_source,
            "sources": sources.count(),
            "cites": citation_buttons,
            "live": live,
            "stored": stored,
            "restored_user": page.locator(".message.user").inner_text(),
            "restored_answer": restored.locator(".body").inner_text(),
            "restored_sources": restored.locator(".source").count(),
        }

    result = chromium.run(scenario)
    assert len(result["partial"]) < len(result["final"]), dump(result)
    assert "nine in the morning" in result["final"]
    assert result["sources"] >= 1 and result["cites"] >= 1 and result["collapsed"]
    assert result["source"]["href"] == f"{site.origin}/handbook"
    assert result["source"]["name"].startswith("1. Alpha handbook <img")  # shown as text, not markup
    assert result["source"]["score"].startswith("relevance ")
    assert result["live"].startswith("The office opens")  # announced once, when complete
    assert result["stored"] == [f"minirag:{site.world.bot.pk}"]
    assert QUESTION in result["restored_user"]
    assert result["restored_answer"] == result["final"]
    assert result["restored_sources"] == result["sources"]


def test_feedback_reaches_the_api(site: WidgetSite, chromium: Chromium) -> None:
    url = site.page("/feedback", body=site.script_tag())

    def scenario(page: Any) -> str:
        page.goto(url)
        open_and_ask(page)
        answer = wait_for_answer(page)
        with page.expect_response(lambda r: r.request.method == "PATCH" and r.status == 200):
            answer.locator(".feedback-down").click()
        assert answer.locator(".feedback-down").get_attribute("aria-pressed") == "true"
        return answer.locator(".body").inner_text()

    text = chromium.run(scenario)
    with tenant_scope(site.world.tenant):
        rated = Message.objects.get(role="assistant", chat__started_by_token_id=site.token_id)
    assert rated.feedback == "negative" and "nine in the morning" in rated.content and "nine in the morning" in text


def test_an_error_event_keeps_the_partial_answer_and_offers_a_retry(site: WidgetSite, chromium: Chromium) -> None:
    use_model(site, "widgettest/broken")
    url = site.page("/broken", body=site.script_tag())

    def scenario(page: Any) -> dict[str, str]:
        page.goto(url)
        open_and_ask(page)
        error = page.wait_for_selector(".error")
        page.screenshot(path="/tmp/minirag-widget-error.png")
        return {
            "partial": page.locator(".message.assistant .body").inner_text(),
            "error": error.inner_text(),
            "role": error.get_attribute("role"),
            "retry": str(page.locator(".retry").is_visible()),
            "send": str(page.locator(".send").is_visible()),
        }

    result = chromium.run(scenario)
    assert result["partial"].startswith("The office opens")
    # The widget's own sentence, never the server's words (nor provider internals).
    assert result["error"].startswith("The assistant is unavailable right now. Please try again later.")
    assert "model" not in result["error"] and "widgettest" not in result["error"] and result["role"] == "alert"
    assert result["retry"] == "True" and result["send"] == "True"


def test_a_429_tells_the_visitor_how_long_to_wait(site: WidgetSite, chromium: Chromium) -> None:
    response = site.world.client("admin").patch(
        f"/v1/api-tokens/{site.token_id}", {"rate_limits": {"visitor_messages_per_minute": 1}}, format="json"
    )
    assert response.status_code == 200
    url = site.page("/limited", body=site.script_tag())

    def scenario(page: Any) -> str:
        page.goto(url)
        open_and_ask(page)
        wait_for_answer(page)
        page.fill("textarea", "And when does it close?")
        page.keyboard.press("Enter")
        return page.wait_for_selector(".error").inner_text()

    message = chromium.run(scenario)
    assert message.startswith("Too many messages. Please wait ") and "seconds" in message


def test_a_spent_budget_is_told_politely_without_a_countdown(site: WidgetSite, chromium: Chromium) -> None:
    # The platform's operator gives the workspace no budget at all: every chat is refused (429).
    Tenant.objects.filter(pk=site.world.tenant.pk).update(monthly_budget_usd=0)
    url = site.page("/spent", body=site.script_tag())

    def scenario(page: Any) -> str:
        page.goto(url)
        open_and_ask(page)
        return page.wait_for_selector(".error").inner_text()

    message = chromium.run(scenario)
    assert message.startswith("The assistant is unavailable right now. Please try again later.")
    assert "budget" not in message and "seconds" not in message


def test_a_token_that_does_not_allow_this_origin_is_refused_and_the_widget_says_so(
    site: WidgetSite, chromium: Chromium
) -> None:
    site.world.client("admin").patch(
        f"/v1/api-tokens/{site.token_id}", {"allowed_origins": ["https://shop.example.com"]}, format="json"
    )
    url = site.page(
        "/foreign",
        head="<script>window.__errors = []; addEventListener('minirag:error', e => window.__errors.push(e.detail));"
        "</script>",
        body=site.script_tag(),
    )

    def scenario(page: Any) -> dict[str, Any]:
        console: list[str] = []
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
        page.goto(url)
        open_and_ask(page)
        error = page.wait_for_selector(".error")
        page.wait_for_function("window.__errors.length > 0")
        return {
            "shown": error.inner_text(),
            "retry": page.locator(".retry").count(),
            "widget": page.locator("minirag-widget").evaluate("w => w.shadowRoot.textContent"),
            "events": page.evaluate("window.__errors"),
            "console": console,
        }

    result = chromium.run(scenario)
    # The visitor reads one friendly sentence, with no Retry button (retrying cannot help) ...
    assert result["shown"] == "This chat isn't available on this website.", dump(result)
    assert result["retry"] == 0
    assert "allowed_origins" not in result["widget"] and "token" not in result["widget"]
    # ... and the site's developer gets the technical cause: an event on the element, and the console.
    assert result["events"] == [
        {
            "status": 403,
            "code": "origin_refused",
            "detail": f"This bot token may not be used from {site.origin}: that origin is not in the token's "
            "allowed_origins.",
        }
    ], dump(result)
    assert any(line.startswith("error: MiniRAG widget: This bot token may not be used") for line in result["console"])
    with tenant_scope(site.world.tenant):
        assert not Message.objects.filter(chat__started_by_token_id=site.token_id).exists()


def test_keyboard_focus_trap_escape_and_stop(site: WidgetSite, chromium: Chromium) -> None:
    use_model(site, "widgettest/slow")
    url = site.page("/keyboard", body="<a href='#' id='before'>before</a>" + site.script_tag())

    def active(page: Any) -> str:
        return page.evaluate(
            "() => { const w = document.querySelector('minirag-widget'); const a = w.shadowRoot.activeElement;"
            " return document.activeElement === w && a ? (a.className || a.tagName) : document.activeElement.id }"
        )

    def scenario(page: Any) -> dict[str, Any]:
        page.goto(url)
        page.wait_for_selector("minirag-widget[data-ready]", state="attached")
        page.focus("#before")
        page.keyboard.press("Tab")
        assert active(page) == "launcher"
        page.keyboard.press("Enter")
        opened = active(page)
        seen = set()
        for _ in range(12):
            page.keyboard.press("Tab")
            seen.add(active(page))
        for _ in range(5):
            page.keyboard.press("Shift+Tab")
            seen.add(active(page))
        dialog = page.locator("[role=dialog]")
        label = dialog.get_attribute("aria-labelledby")
        page.focus("textarea")
        page.keyboard.type(QUESTION)
        page.keyboard.press("Enter")
        page.wait_for_selector(".message.assistant .body >> text=office")
        page.locator(".stop").click()
        page.wait_for_selector(".note")
        stopped = page.locator(".message.assistant .note").inner_text()
        page.keyboard.press("Escape")
        return {
            "opened": opened,
            "seen": sorted(seen),
            "label": label,
            "title": page.locator(f"#{label}").inner_text(),
            "stopped": stopped,
            "closed": not dialog.is_visible(),
            "after_escape": active(page),
            "expanded": page.locator(".launcher").get_attribute("aria-expanded"),
        }

    result = chromium.run(scenario)
    assert result["opened"] == "TEXTAREA"
    assert set(result["seen"]) <= {"icon new-chat", "icon close", "TEXTAREA", "send", "log"}, result["seen"]
    assert result["title"] == "Alpha help"
    assert result["stopped"] == "Stopped."
    assert result["closed"] and result["after_escape"] == "launcher" and result["expanded"] == "false"


def test_hostile_host_css_and_hostile_answers_change_nothing(site: WidgetSite, chromium: Chromium) -> None:
    use_model(site, "widgettest/hostile")
    plain = site.page("/plain", body=site.script_tag())
    hostile = site.page(
        "/hostile",
        body=site.script_tag(),
        style="* { all: unset !important; } div { display: none !important; } "
        "button { background: red !important; width: 3px !important; } html { font-size: 6px !important; }",
    )

    def layout(page: Any, url: str) -> dict[str, Any]:
        page.goto(url)
        page.wait_for_selector("minirag-widget[data-ready]", state="attached")
        if not page.locator("[role=dialog]").is_visible():  # it stays open from page to page
            page.click(".launcher")
        page.wait_for_selector("[role=dialog]")
        page.mouse.move(0, 0)  # no hover effect on the launcher
        return {
            "launcher": page.locator(".launcher").bounding_box(),
            "dialog": page.locator("[role=dialog]").bounding_box(),
            "font": page.locator("textarea").evaluate("e => getComputedStyle(e).fontSize"),
            "color": page.locator(".launcher").evaluate("e => getComputedStyle(e).backgroundColor"),
        }

    def scenario(page: Any) -> dict[str, Any]:
        baseline = layout(page, plain)
        attacked = layout(page, hostile)
        page.fill("textarea", QUESTION)
        page.keyboard.press("Enter")
        answer = wait_for_answer(page)
        page.screenshot(path="/tmp/minirag-widget-hostile.png")
        return {
            "baseline": baseline,
            "attacked": attacked,
            "pwned": page.evaluate("window.__pwned || 0"),
            "html": answer.locator(".body").inner_html(),
            "text": answer.locator(".body").inner_text(),
            "links": answer.locator(".body a").count(),
            "strong": answer.locator(".body strong").inner_text(),
        }

    # Reduced motion: no opening animation caught halfway (and the widget must honour it).
    result = chromium.run(scenario, reduced_motion="reduce")
    assert result["attacked"] == result["baseline"], dump(result)
    assert result["pwned"] == 0
    assert "<img" not in result["html"] and "<script" not in result["html"]
    assert '<img src=x onerror="window.__pwned=1">' in result["text"]  # shown as the text it is
    assert result["links"] == 0  # a javascript: link is text, not a link
    assert result["strong"] == "nine to five"


def test_mobile_layout_is_full_screen(site: WidgetSite, chromium: Chromium) -> None:
    url = site.page("/mobile", body=site.script_tag())

    def scenario(page: Any) -> dict[str, Any]:
        page.goto(url)
        open_and_ask(page)
        wait_for_answer(page)
        page.screenshot(path="/tmp/minirag-widget-mobile.png")
        return {
            "dialog": page.locator("[role=dialog]").bounding_box(),
            "launcher": page.locator(".launcher").is_visible(),
        }

    result = chromium.run(scenario, width=375, height=667, is_mobile=True, has_touch=True)
    assert result["dialog"] == {"x": 0, "y": 0, "width": 375, "height": 667}
    assert result["launcher"] is False


def test_no_serious_or_critical_accessibility_violations(site: WidgetSite, chromium: Chromium) -> None:
    url = site.page(
        "/a11y",
        body=site.script_tag(
            attrs="data-welcome-message='Hello! Ask me anything.' "
            'data-starter-questions=\'["When does the office open?", "How do refunds work?"]\''
        ),
    )

    def scenario(page: Any) -> dict[str, Any]:
        page.goto(url)
        page.wait_for_selector("minirag-widget[data-ready]", state="attached")
        closed = run_axe(page)
        page.click(".launcher")
        chips = page.locator(".chip").count()
        page.screenshot(path="/tmp/minirag-widget-welcome.png")
        page.locator(".chip").first.click()
        wait_for_answer(page, count=2)  # the welcome message is the first
        with_answer = run_axe(page)
        return {"closed": closed, "with_answer": with_answer, "chips": chips}

    result = chromium.run(scenario)
    assert result["chips"] == 2
    assert result["closed"] == [] and result["with_answer"] == [], dump(result)


def test_new_conversation_starts_a_new_chat(site: WidgetSite, chromium: Chromium) -> None:
    url = site.page("/new", body=site.script_tag())

    def scenario(page: Any) -> list[str]:
        page.goto(url)
        open_and_ask(page)
        wait_for_answer(page)
        first = page.evaluate(f"JSON.parse(localStorage['minirag:{site.world.bot.pk}']).chatId")
        page.click(".new-chat")
        assert page.locator(".message").count() == 0
        page.fill("textarea", "How long do refunds take?")
        page.keyboard.press("Enter")
        wait_for_answer(page)
        second = page.evaluate(f"JSON.parse(localStorage['minirag:{site.world.bot.pk}']).chatId")
        return [first, second]

    first, second = chromium.run(scenario)
    assert first and second and first != second


def test_auto_scroll_follows_the_answer_but_not_a_reader_who_scrolled_up(site: WidgetSite, chromium: Chromium) -> None:
    use_model(site, "widgettest/slow")
    # A short dialog, so that two answers (their sources collapsed) are taller than it.
    url = site.page("/scroll", body=site.script_tag(), style="minirag-widget { --minirag-height: 360px; }")
    at_end = "(() => { const l = document.querySelector('minirag-widget').shadowRoot.querySelector('.log');"
    at_end += " return l.scrollHeight - l.scrollTop - l.clientHeight < 48 })()"

    def scenario(page: Any) -> dict[str, Any]:
        page.goto(url)
        open_and_ask(page)
        wait_for_answer(page)  # a long answer with its sources: taller than the dialog
        followed = page.evaluate(at_end)
        jump_after_following = page.locator(".jump").is_visible()
        page.fill("textarea", "When does the office close?")
        page.keyboard.press("Enter")
        page.wait_for_selector(".message.assistant >> nth=1 >> .body >> text=office")
        page.locator(".log").evaluate("log => { log.scrollTop = 0 }")  # the reader goes back up
        wait_for_answer(page, count=2)
        stayed = page.locator(".log").evaluate("log => log.scrollTop")
        jump_visible = page.locator(".jump").is_visible()
        page.click(".jump")
        return {
            "followed": followed,
            "jump_after_following": jump_after_following,
            "stayed": stayed,
            "jump_visible": jump_visible,
            "back_at_end": page.evaluate(at_end),
        }

    result = chromium.run(scenario)
    assert result["followed"] and not result["jump_after_following"], result
    assert result["stayed"] == 0 and result["jump_visible"], result
    assert result["back_at_end"], result
