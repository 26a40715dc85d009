"""Talking to a person in the widget, in real headless Chromium on a host page of another origin:
the visitor asks for a person, staff (driven through the API with an admin token, as the inbox
would) takes over, types and replies, and the widget follows the chat's event stream live."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import socket
import threading
import time
import urllib.request
import zoneinfo
from collections.abc import Iterator
from typing import Any

import pytest
from django_eventstream import views as eventstream_views

from chat.models import Chat, Message
from inbox.events import chat_channel
from inbox.presence import presence_mark
from minirag.tests.widget.conftest import Chromium, WidgetSite, dump, run_axe
from tenants.tenancy import tenant_scope

REFUSED = "What is the airspeed velocity of an unladen swallow?"
ANSWERED = "When does the office open?"
REPLY = "Hello, Ada here. Which order is it about?"


@pytest.fixture(autouse=True)
def fresh_listener_manager() -> Iterator[None]:
    """django-eventstream starts its Redis subscriber once per manager, on the first event loop that
    listens: a manager of its own makes sure it starts on the live server's loop."""
    original = eventstream_views.listener_manager
    eventstream_views.listener_manager = eventstream_views.ListenerManager()
    yield
    eventstream_views.listener_manager = original


def set_handoff(site: WidgetSite, mode: str, **fields: Any) -> None:
    response = site.world.client("admin").patch(
        f"/v1/bot-profiles/{site.world.bot.pk}", {"handoff": mode, **fields}, format="json"
    )
    assert response.status_code == 200, response.content


def name_the_admin(site: WidgetSite, name: str = "Ada") -> None:
    response = site.world.client("owner").patch(
        f"/v1/users/{site.world.admin.pk}", {"display_name": name}, format="json"
    )
    assert response.status_code == 200, response.content


def staff(site: WidgetSite, path: str, body: dict[str, Any] | None = None) -> Any:
    """An operator's POST through the API (plain HTTP: the scenarios run in the browser's thread,
    where Django's ORM may not)."""
    request = urllib.request.Request(
        site.api_url + path,
        method="POST",
        data=json.dumps(body or {}).encode(),
        headers={"Authorization": f"Bearer {site.world.tokens['admin']}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def chat_id_of(page: Any, site: WidgetSite) -> str:
    return page.evaluate(f"JSON.parse(localStorage['minirag:{site.world.bot.pk}']).chatId")


def wait_until_live(site: WidgetSite, chat_id: str) -> None:
    """The server subscribes to Redis (where events travel between processes) when the first stream
    of the process opens, asynchronously: staff act once the widget's stream really listens."""
    manager = eventstream_views.listener_manager
    channel = chat_channel(site.world.tenant.pk, chat_id)
    deadline = time.monotonic() + 10
    while not (manager.listeners_by_channel.get(channel) and manager.redis_listener.pubsub.subscribed):
        assert time.monotonic() < deadline, "the widget's event stream never went live"
        time.sleep(0.02)


def ask(page: Any, question: str) -> None:
    page.fill("textarea", question)
    page.keyboard.press("Enter")


def answers(page: Any) -> int:
    return page.locator(".message.assistant").count()


def chat_row(site: WidgetSite, chat_id: str) -> Chat:
    with tenant_scope(site.world.tenant):
        return Chat.objects.get(pk=chat_id)


def test_a_visitor_asks_for_a_person_who_takes_over_replies_live_and_hands_back(
    site: WidgetSite, chromium: Chromium
) -> None:
    set_handoff(site, "offered")
    name_the_admin(site)
    presence_mark(tenant_id=site.world.tenant.pk, user_id=site.world.admin.pk)  # the inbox is open
    url = site.page("/handoff", body=site.script_tag())

    def scenario(page: Any) -> dict[str, Any]:
        typing_posts: list[str] = []
        page.on("request", lambda r: r.url.endswith("/typing") and r.method == "POST" and typing_posts.append(r.url))
        page.goto(url)
        page.click(".launcher")
        # The bot's setting came with widget-config: the control shows before any chat exists.
        bar_before_chat = page.locator(".bar .link").inner_text()
        ask(page, REFUSED)
        # The bot refused: a person is offered right under its answer.
        offer = page.wait_for_selector(".message.assistant .offer")
        offer.click()
        page.wait_for_selector(".status >> text=A person will join shortly.")
        waiting = page.locator(".bar").inner_text()
        chat_id = chat_id_of(page, site)
        wait_until_live(site, chat_id)

        staff(site, f"/v1/chat/{chat_id}/takeover")
        page.wait_for_selector(".status >> text=You're chatting with Ada")
        staff(site, f"/v1/chat/{chat_id}/typing")
        typing = page.wait_for_selector(".is-typing").inner_text()
        started = time.monotonic()
        staff(site, f"/v1/chat/{chat_id}/replies", {"content": REPLY})
        page.wait_for_selector(f".message.operator >> text={REPLY}", timeout=1000)
        reply_seconds = time.monotonic() - started
        operator = page.locator(".message.operator").first
        label = operator.locator(".who").inner_text()
        live = page.locator(".dialog > [role=status]").filter(has_text=REPLY)
        live.wait_for(state="attached")  # announced once, a moment after it arrived
        announced = live.inner_text()
        typing_gone = page.locator(".is-typing").count() == 0

        # The visitor types (a signal to the person at most every 3 s) and answers: stored for the
        # person, no typing dots, no assistant bubble, and their own message shown once.
        assistant_bubbles = answers(page)
        # The first keystroke sends the signal (waited for: under load its request event can come
        # after the typing has finished); the eleven after it, within 3 s, send none.
        with page.expect_request(lambda r: r.url.endswith("/typing") and r.method == "POST"):
            page.type("textarea", "It is order 42", delay=20)
        with page.expect_response(lambda r: r.url.endswith("/v1/chat") and r.request.method == "POST") as turn:
            page.keyboard.press("Enter")
        turn_status = turn.value.status
        page.wait_for_timeout(300)  # the stream's echo of the visitor's message has arrived
        dots = page.locator(".typing").count()
        mine = page.locator(".message.user >> text=It is order 42").count()
        bubbles_after = answers(page)
        page.screenshot(path="/tmp/minirag-widget-handoff.png")

        # A reload restores the transcript with the person's message, and follows the chat again.
        page.reload()
        page.wait_for_selector(f".message.operator >> text={REPLY}")
        page.wait_for_selector(".bar >> text=You're chatting with Ada")
        restored = {
            "label": page.locator(".message.operator .who").first.inner_text(),
            "bar": page.locator(".bar").inner_text(),
            "users": page.locator(".message.user").count(),
        }
        wait_until_live(site, chat_id)
        staff(site, f"/v1/chat/{chat_id}/replies", {"content": "Found it: it ships today."})
        page.wait_for_selector(".message.operator >> text=Found it: it ships today.")

        # "Back to the assistant": the next question is the bot's again.
        page.click(".bar .link")
        page.wait_for_selector(".status >> text=You're back with the assistant.")
        bar_after = page.locator(".bar .link").inner_text()
        ask(page, ANSWERED)
        page.wait_for_selector(".message.assistant >> nth=1 >> .feedback-up")
        return {
            "bar_before_chat": bar_before_chat,
            "waiting": waiting,
            "chat_id": chat_id,
            "typing": typing,
            "reply_seconds": reply_seconds,
            "label": label,
            "announced": announced,
            "typing_gone": typing_gone,
            "typing_posts": len(typing_posts),
            "turn_status": turn_status,
            "dots": dots,
            "mine": mine,
            "bubbles": [assistant_bubbles, bubbles_after],
            "restored": restored,
            "bar_after": bar_after,
            "last_answer": page.locator(".message.assistant .body").last.inner_text(),
        }

    result = chromium.run(scenario)
    assert result["bar_before_chat"] == "Talk to a person", dump(result)
    assert "Waiting for a person…" in result["waiting"] and "Back to the assistant" in result["waiting"]
    assert result["typing"] == "Ada is typing…"
    assert result["reply_seconds"] < 1, dump(result)
    assert result["label"] == "Ada · Support" and result["typing_gone"]
    assert result["announced"] == f"Ada · Support: {REPLY}"
    assert result["typing_posts"] == 1, dump(result)  # a dozen keystrokes, one signal
    assert result["turn_status"] == 200 and result["dots"] == 0 and result["mine"] == 1
    assert result["bubbles"][0] == result["bubbles"][1] == 1
    assert result["restored"] == {
        "label": "Ada · Support",
        "bar": "You're chatting with Ada\nBack to the assistant",
        "users": 2,
    }, dump(result)
    assert result["bar_after"] == "Talk to a person"
    assert "nine in the morning" in result["last_answer"]
    with tenant_scope(site.world.tenant):
        messages = list(Message.objects.filter(chat_id=result["chat_id"]).order_by("created_at"))
    assert [m.role for m in messages] == ["user", "assistant", "operator", "user", "operator", "user", "assistant"]
    assert messages[3].content == "It is order 42" and messages[2].author_name == "Ada"
    assert chat_row(site, result["chat_id"]).handling == "bot"


def test_nobody_online_asks_for_an_email_and_a_bad_address_is_shown_at_the_field(
    site: WidgetSite, chromium: Chromium
) -> None:
    set_handoff(site, "on_request")  # nobody holds the inbox open
    url = site.page("/handoff-email", body=site.script_tag())

    def scenario(page: Any) -> dict[str, Any]:
        page.goto(url)
        page.click(".launcher")
        # No chat yet: the visitor is asked for their question, and the chat it starts is handed over.
        page.click(".bar .link")
        first = page.wait_for_selector(".status").inner_text()
        ask(page, ANSWERED)
        form = page.wait_for_selector("form.card")
        text = form.query_selector("p").inner_text()
        focused = page.evaluate("document.querySelector('minirag-widget').shadowRoot.activeElement.type")
        page.fill("form.card input", "vera@example")
        with page.expect_response(lambda r: r.url.endswith("/handoff") and r.status == 422):
            page.click("form.card button")
        page.wait_for_selector("form.card [role=alert] >> text=Please enter a valid email address.")
        invalid = page.get_attribute("form.card input", "aria-invalid")
        page.screenshot(path="/tmp/minirag-widget-handoff-email.png")
        violations = run_axe(page)
        page.fill("form.card input", "vera@example.com")
        page.click("form.card button")
        thanks = page.wait_for_selector(".status >> text=Thanks!").inner_text()
        chat_id = chat_id_of(page, site)
        bar = page.locator(".bar").inner_text()
        page.click(".bar .link")  # back to the assistant, by the visitor
        page.wait_for_selector(".status >> text=You're back with the assistant.")
        return {
            "first": first,
            "text": text,
            "focused": focused,
            "invalid": invalid,
            "violations": violations,
            "thanks": thanks,
            "chat_id": chat_id,
            "bar": bar,
            "offers": page.locator(".offer").count(),
        }

    result = chromium.run(scenario)
    assert result["first"] == "Write your question below: a person will read it.", dump(result)
    assert result["text"] == (
        "Nobody is available right now. Leave your email and we'll answer there as soon as someone is back."
    )
    assert result["focused"] == "email" and result["invalid"] == "true"
    assert result["violations"] == [], dump(result["violations"])
    assert result["thanks"] == "Thanks! We'll answer at vera@example.com."
    assert result["bar"] == "Waiting for a person…\nBack to the assistant"
    assert result["offers"] == 0  # on_request: asked for, never offered
    chat = chat_row(site, result["chat_id"])
    assert chat.contact_email == "vera@example.com" and chat.handling == "bot" and chat.handoff_requested_at


def test_a_rating_of_not_helpful_offers_a_person_in_german_with_the_opening_time(
    site: WidgetSite, chromium: Chromium
) -> None:
    # Closed today, open the other days: nobody is available, and the widget says when they are.
    zone = zoneinfo.ZoneInfo("Europe/Berlin")
    today = dt.datetime.now(zone).strftime("%a").lower()
    days = {day: ["09:00", "17:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun") if day != today}
    set_handoff(site, "offered", office_hours={"timezone": "Europe/Berlin", "days": days})
    url = site.page("/handoff-de", body=site.script_tag(attrs='data-lang="de"'))

    def scenario(page: Any) -> dict[str, Any]:
        page.goto(url)
        page.click(".launcher")
        ask(page, ANSWERED)
        answer = page.wait_for_selector(".message.assistant >> .feedback-up")
        offers_after_answer = page.locator(".offer").count()
        page.click(".message.assistant .feedback-down")
        page.click(".message.assistant .offer")
        text = page.wait_for_selector("form.card p").inner_text()
        return {"offers": offers_after_answer, "text": text, "answered": bool(answer)}

    result = chromium.run(scenario, locale="de-DE", timezone_id="Europe/Berlin")
    assert result["offers"] == 0, dump(result)  # a grounded answer offers no one until it is rated
    opening = (dt.datetime.now(zone) + dt.timedelta(days=1)).replace(hour=9, minute=0)
    weekday = ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag")[opening.weekday()]
    assert result["text"].startswith("Gerade ist niemand erreichbar. Hinterlassen Sie Ihre E-Mail-Adresse"), dump(
        result
    )
    assert f"({weekday}, {opening.day}. " in result["text"] and " 9:00)." in result["text"], dump(result)


def test_with_handoff_off_nothing_offers_a_person(site: WidgetSite, chromium: Chromium) -> None:
    url = site.page("/handoff-off", body=site.script_tag())

    def scenario(page: Any) -> dict[str, Any]:
        page.goto(url)
        page.click(".launcher")
        ask(page, REFUSED)
        page.wait_for_selector(".message.assistant .feedback-down").click()
        page.wait_for_timeout(300)
        return {"bar": page.locator(".bar").is_visible(), "offers": page.locator(".offer").count()}

    assert chromium.run(scenario) == {"bar": False, "offers": 0}


class CuttableRelay:
    """A TCP relay to the API whose open connections the test can cut at once: a network drop in
    the middle of the widget's event stream (what a flaky mobile connection or a proxy does)."""

    def __init__(self, api_url: str) -> None:
        self._target = ("127.0.0.1", int(api_url.rsplit(":", 1)[1]))
        self._server = socket.create_server(("127.0.0.1", 0))
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True, name="relay").start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self._server.close()
        self.cut()


def test_a_dropped_stream_resumes_where_it_stopped(site: WidgetSite, chromium: Chromium) -> None:
    set_handoff(site, "on_request")
    name_the_admin(site)
    relay = CuttableRelay(site.api_url)
    url = site.page(
        "/handoff-drop",
        body=f'<script src="{site.api_url}/dashboard/widget/minirag-widget.js" data-bot-id="{site.world.bot.pk}" '
        f'data-api-url="{relay.url}" data-api-token="{site.token}"></script>',
    )

    def scenario(page: Any) -> dict[str, Any]:
        streams: list[str] = []
        page.on("request", lambda r: "/events" in r.url and streams.append(r.url))
        page.goto(url)
        page.click(".launcher")
        ask(page, ANSWERED)
        page.wait_for_selector(".message.assistant .feedback-up")
        # Once the stream is open, the widget reads what it may have missed before: done before the drop.
        with page.expect_response(lambda r: "/messages?limit=100" in r.url):
            page.click(".bar .link")
        chat_id = chat_id_of(page, site)
        wait_until_live(site, chat_id)
        staff(site, f"/v1/chat/{chat_id}/takeover")
        page.wait_for_selector(".status >> text=You're chatting with Ada")
        # The connection drops; the person writes while the widget is away; it comes back and resumes.
        relay.cut()
        staff(site, f"/v1/chat/{chat_id}/replies", {"content": "Written while you were away."})
        page.wait_for_selector(".message.operator >> text=Written while you were away.")
        return {"streams": streams, "operators": page.locator(".message.operator").count()}

    try:
        result = chromium.run(scenario)
    finally:
        relay.close()
    assert len(result["streams"]) == 2 and "lastEventId=" not in result["streams"][0], dump(result)
    assert "?lastEventId=tenant-" in result["streams"][1] and result["operators"] == 1
