"""A visitor and an operator, live, in two Chromium contexts: the visitor's widget on a host page of
another origin asks for a person; the operator, in the dashboard's inbox, sees the request arrive
without reloading, takes the chat over and replies; the visitor reads the reply within a second,
without reloading; the visitor's answer appears in the operator's transcript; the operator hands the
chat back and the bot answers again; a reload restores the whole conversation on both sides.
axe-core checks the inbox page."""

from __future__ import annotations

import time
from typing import Any

from minirag.tests.widget.axe import axe_violations, format_violations
from minirag.tests.widget.conftest import Chromium, WidgetSite, dump
from minirag.tests.widget.test_widget_handoff_browser import (  # noqa: F401 - an autouse fixture
    ANSWERED,
    ask,
    chat_id_of,
    fresh_listener_manager,
    name_the_admin,
    set_handoff,
)

QUESTION = "Can I change the delivery address of my order?"
REPLY = "Hello, Ada here. Yes: tell me the new address and I will change it."
VISITOR_ANSWER = "It is Hauptstrasse 5, Berlin."


def log_in(page: Any, site: WidgetSite) -> None:
    page.goto(f"{site.api_url}/dashboard/login/?next=/dashboard/inbox/")
    page.fill("input[name=username]", site.world.admin.email)
    page.fill("input[name=password]", site.world.password)
    page.click("input[type=submit]")
    page.wait_for_url("**/dashboard/inbox/")


def test_a_visitor_and_an_operator_talk_live(site: WidgetSite, chromium: Chromium) -> None:
    set_handoff(site, "on_request")
    name_the_admin(site)
    host_page = site.page("/shop", body=site.script_tag())

    def scenario(visitor: Any) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        operator_context = visitor.context.browser.new_context(viewport={"width": 1366, "height": 900})
        operator_context.set_default_timeout(15_000)
        operator = operator_context.new_page()
        operator_errors: list[str] = []
        operator.on("pageerror", lambda error: operator_errors.append(str(error)))
        try:
            # The operator opens the inbox (which makes them online) before anyone asks.
            log_in(operator, site)
            with operator.expect_response("**/v1/inbox/events"):
                operator.reload()
            seen["empty"] = operator.locator("[data-inbox-list]").inner_text()

            # The visitor asks the bot, then for a person.
            visitor.goto(host_page)
            visitor.click(".launcher")
            ask(visitor, QUESTION)
            visitor.wait_for_selector(".message.assistant .feedback-up")
            visitor.click(".bar .link")
            visitor.wait_for_selector(".status >> text=A person will join shortly.")
            chat_id = chat_id_of(visitor, site)
            seen["chat_id"] = chat_id

            # It arrives in the operator's inbox without a reload.
            waiting = operator.wait_for_selector(f".mr-inbox-needs_human a[href$='chat={chat_id}']")
            seen["counter"] = operator.locator("[data-inbox-counter]").inner_text()
            waiting.click()
            operator.wait_for_selector("[data-inbox-transcript] >> text=Waiting for a person")
            operator.click("[data-inbox-transcript] button:has-text('Take over')")
            operator.wait_for_selector("[data-inbox-reply]:not([hidden])")
            visitor.wait_for_selector(".status >> text=You're chatting with Ada")

            # The operator types (the visitor sees it) and replies: the visitor reads it at once.
            operator.type("#mr-reply", "Hello", delay=30)
            seen["typing"] = visitor.wait_for_selector(".is-typing").inner_text()
            operator.fill("#mr-reply", REPLY)
            started = time.monotonic()
            operator.click("[data-inbox-reply] button[type=submit]")
            visitor.wait_for_selector(f".message.operator >> text={REPLY}", timeout=1000)
            seen["reply_seconds"] = time.monotonic() - started
            seen["label"] = visitor.locator(".message.operator .who").first.inner_text()

            # The visitor's answer appears in the operator's transcript, live.
            ask(visitor, VISITOR_ANSWER)
            operator.wait_for_selector(f".mr-msg-user >> text={VISITOR_ANSWER}")

            # Reloads restore the whole conversation on both sides.
            operator.reload()
            seen["operator_after_reload"] = operator.locator(".mr-transcript").inner_text()
            seen["axe"] = axe_violations(operator)
            visitor.reload()
            visitor.wait_for_selector(f".message.operator >> text={REPLY}")
            seen["visitor_after_reload"] = visitor.locator(".log").inner_text()

            # The operator hands the chat back; the bot answers the visitor's next question.
            operator.click("[data-inbox-transcript] button:has-text('Hand back to the bot')")
            operator.wait_for_selector("[data-inbox-transcript] >> text=The bot answers")
            visitor.wait_for_selector(".status >> text=You're back with the assistant.")
            ask(visitor, ANSWERED)
            visitor.wait_for_selector(".message.assistant >> nth=1 >> .feedback-up")
            seen["bot_answer"] = visitor.locator(".message.assistant .body").last.inner_text()
            operator.reload()
            seen["operator_final"] = operator.locator(".mr-transcript").inner_text()
        finally:
            operator_context.close()
        assert not operator_errors, f"JavaScript errors in the dashboard: {operator_errors}"
        return seen

    seen = chromium.run(scenario)
    assert seen["empty"].startswith("Nobody is waiting for a person."), dump(seen)
    assert "1 waiting" in seen["counter"].lower(), dump(seen)  # the header shows it in capitals
    assert seen["typing"] == "Ada is typing…"
    assert not seen["axe"], format_violations(seen["axe"])
    assert seen["reply_seconds"] < 1, dump(seen)
    assert seen["label"] == "Ada · Support"
    for transcript in (seen["operator_after_reload"], seen["visitor_after_reload"]):
        assert QUESTION in transcript and REPLY in transcript and VISITOR_ANSWER in transcript, dump(seen)
    # The bot answers again (the handbook's opening hours), and the operator's transcript shows it.
    assert "opens at nine" in seen["bot_answer"] and "opens at nine" in seen["operator_final"], dump(seen)
