"""Talking to a person, through the API: the whole state machine, who may do what, the webhook,
office hours and presence (real PostgreSQL and Redis; the offline models)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from chat.models import Chat, Message, UsageEvent
from chat.tests.conftest import ModelSpy
from conftest import TenantWorld, api_client
from inbox.office_hours import office_hours_clean, office_hours_next_opening, office_hours_open
from inbox.presence import presence_mark
from inbox.selectors import operators_online
from inbox.tests.conftest import set_handoff, visitor, visitor_chat
from tenants.tenancy import tenant_scope
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db


def usage_count(world: TenantWorld) -> int:
    with tenant_scope(world.tenant):
        return UsageEvent.objects.count()


def chat_row(world: TenantWorld, chat_id: str) -> Chat:
    with tenant_scope(world.tenant):
        return Chat.objects.get(pk=chat_id)


def read_stream(response: Any) -> list[tuple[str, dict]]:
    async def read() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])

    events = []
    for block in async_to_sync(read)().decode().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_visitor_asks_staff_takes_over_replies_and_hands_back(alpha: TenantWorld, model_spy: ModelSpy) -> None:
    set_handoff(alpha)
    widget = visitor(alpha)
    chat_id = visitor_chat(alpha)
    turn_calls = len(model_spy.calls)

    # The visitor asks for a person; nobody is online, so the answer says to ask for an email.
    response = widget.post(f"/v1/chat/{chat_id}/handoff", {}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["chat"]["handling"] == "needs_human" and body["chat"]["handoff_requested_at"]
    assert body["available"] is False and body["ask_for_email"] is True and body["within_office_hours"] is True
    # Asking again is no change, and keeps the email it brings.
    again = widget.post(f"/v1/chat/{chat_id}/handoff", {"email": "vera@example.com"}, format="json").json()
    assert again["chat"]["contact_email"] == "vera@example.com" and again["ask_for_email"] is False
    assert again["chat"]["handoff_requested_at"] == body["chat"]["handoff_requested_at"]
    bad = widget.post(f"/v1/chat/{chat_id}/handoff", {"email": "not an address"}, format="json")
    assert bad.status_code == 422 and "email" in bad.json()["errors"]
    with tenant_scope(alpha.tenant):
        hooks = list(WebhookDelivery.objects.filter(event="chat.handoff_requested"))
    assert len(hooks) == 1  # fired once, for the one hand-off
    assert hooks[0].payload["chat_id"] == chat_id and hooks[0].payload["requested_by"] == "visitor"

    # While waiting, the visitor's message is stored for the person: 202, no model, no usage.
    usage = usage_count(alpha)
    waiting = widget.post(
        "/v1/chat", {"bot_profile_id": str(alpha.bot.pk), "chat_id": chat_id, "message": "Anyone?"}, format="json"
    )
    assert waiting.status_code == 202, waiting.content
    assert waiting.json()["message"]["role"] == "user" and waiting.json()["handling"] == "needs_human"

    # An admin takes over and replies.
    admin = alpha.client("admin")
    taken = admin.post(f"/v1/chat/{chat_id}/takeover")
    assert taken.status_code == 200, taken.content
    assert taken.json()["handling"] == "human" and taken.json()["assigned_to_id"] == str(alpha.admin.pk)
    assert taken.json()["taken_over_at"] and taken.json()["assigned_to_name"]
    reply = admin.post(f"/v1/chat/{chat_id}/replies", {"content": "Hello, Ada here. How can I help?"}, format="json")
    assert reply.status_code == 201, reply.content
    assert reply.json()["role"] == "operator" and reply.json()["author_name"] == taken.json()["assigned_to_name"]
    assert "@" not in reply.json()["author_name"]  # never the operator's email

    # The visitor's next message, streamed: `sources` and `done`, no `delta`, nothing from a model.
    streamed = widget.post(
        "/v1/chat",
        {"bot_profile_id": str(alpha.bot.pk), "chat_id": chat_id, "message": "My order is 42.", "stream": True},
        format="json",
        HTTP_ACCEPT="text/event-stream",
    )
    assert streamed.status_code == 200
    events = read_stream(streamed)
    assert [name for name, _ in events] == ["sources", "done"]
    done = events[1][1]
    assert set(done) == {"chat_id", "message_id", "usage"}  # the v1 `done`, exactly
    assert done["chat_id"] == chat_id and done["usage"]["total_tokens"] == 0
    assert usage_count(alpha) == usage and len(model_spy.calls) == turn_calls

    # The transcript holds all of it, in order; the visitor reads the operator's name.
    messages = widget.get(f"/v1/chat/{chat_id}/messages").json()
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "operator", "user"]
    assert messages[-1]["id"] == done["message_id"] and messages[-2]["author_name"]
    assert widget.get(f"/v1/chat/{chat_id}").json()["message_count"] == len(messages)

    # "Back to the assistant": the visitor releases the chat and the bot answers again.
    released = widget.post(f"/v1/chat/{chat_id}/release")
    assert released.status_code == 200 and released.json()["handling"] == "bot" and released.json()["released_at"]
    answered = widget.post(
        "/v1/chat",
        {"bot_profile_id": str(alpha.bot.pk), "chat_id": chat_id, "message": "How long do refunds take?"},
        format="json",
    )
    assert answered.status_code == 200 and answered.json()["message"]["role"] == "assistant"
    assert usage_count(alpha) == usage + 1 and len(model_spy.calls) > turn_calls
    # The operator's words reached the model as the assistant's turn, never with an unknown role.
    assert {m["role"] for m in model_spy.last_messages} <= {"system", "user", "assistant"}


def test_replies_need_a_takeover_and_release_is_idempotent(alpha: TenantWorld) -> None:
    set_handoff(alpha)
    chat_id = visitor_chat(alpha)
    owner = alpha.client("owner")
    refused = owner.post(f"/v1/chat/{chat_id}/replies", {"content": "hi"}, format="json")
    assert refused.status_code == 409 and "takeover" in refused.json()["detail"]
    assert owner.post(f"/v1/chat/{chat_id}/replies", {"content": "   "}, format="json").status_code == 422
    # An operator may step in without a request.
    assert owner.post(f"/v1/chat/{chat_id}/takeover").json()["handling"] == "human"
    assert chat_row(alpha, chat_id).handoff_requested_at is None
    # Another operator takes it over from the first.
    assert alpha.client("admin").post(f"/v1/chat/{chat_id}/takeover").json()["assigned_to_id"] == str(alpha.admin.pk)
    assert owner.post(f"/v1/chat/{chat_id}/release").json()["handling"] == "bot"
    assert owner.post(f"/v1/chat/{chat_id}/release").status_code == 200


def test_handoff_is_refused_when_the_bot_has_it_off(alpha: TenantWorld) -> None:
    chat_id = visitor_chat(alpha)
    response = visitor(alpha).post(f"/v1/chat/{chat_id}/handoff", {}, format="json")
    assert response.status_code == 409 and "off" in response.json()["detail"]
    assert chat_row(alpha, chat_id).handling == "bot"


def test_who_may_do_what(alpha: TenantWorld, beta: TenantWorld) -> None:
    set_handoff(alpha)
    chat_id = visitor_chat(alpha)
    # Another visitor of the same site, and a widget call without the visitor id: not their chat.
    for stranger in (visitor(alpha, "visitor-2"), api_client(alpha.tokens["bot"])):
        for route in ("handoff", "release", "typing"):
            assert stranger.post(f"/v1/chat/{chat_id}/{route}", {}, format="json").status_code == 404, route
        assert stranger.get(f"/v1/chat/{chat_id}/events").status_code == 404
    # The visitor cannot act as an operator.
    widget = visitor(alpha)
    assert widget.post(f"/v1/chat/{chat_id}/takeover").status_code == 403
    assert widget.post(f"/v1/chat/{chat_id}/replies", {"content": "x"}, format="json").status_code == 403
    assert widget.post("/v1/inbox/presence").status_code == 403
    # Another tenant: 404 with every credential.
    for who in ("owner", "bot"):
        for route in ("handoff", "takeover", "replies", "release", "typing"):
            response = beta.client(who).post(f"/v1/chat/{chat_id}/{route}", {"content": "x"}, format="json")
            assert response.status_code in (403, 404) if who == "bot" else response.status_code == 404, route
    # Members operate while they may read every chat (the default) ...
    member = alpha.client("member")
    assert member.post(f"/v1/chat/{chat_id}/takeover").status_code == 200
    assert member.post(f"/v1/chat/{chat_id}/replies", {"content": "Hi!"}, format="json").status_code == 201
    assert member.post(f"/v1/chat/{chat_id}/release").status_code == 200
    # ... and not once an owner limits members to their own chats (the visitor's chat is then a 404).
    assert (
        alpha.client("owner").patch("/v1/tenants/me", {"members_see_all_chats": False}, format="json").status_code
        == 200
    )
    assert member.post(f"/v1/chat/{chat_id}/takeover").status_code == 404
    assert member.post("/v1/inbox/presence").status_code == 403
    assert member.get("/v1/inbox/status").status_code == 403
    assert alpha.client("admin").post(f"/v1/chat/{chat_id}/takeover").status_code == 200


def test_office_hours_and_presence_decide_availability(alpha: TenantWorld) -> None:
    # Open every day, all day, in a real time zone: only presence decides.
    all_week = {day: ["00:00", "23:59"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    set_handoff(alpha, "offered", office_hours={"timezone": "Europe/Berlin", "days": all_week})
    assert alpha.client("member").get(f"/v1/bot-profiles/{alpha.bot.pk}").json()["office_hours"]["days"]["sun"]
    chat_id = visitor_chat(alpha)
    assert alpha.client("admin").post("/v1/inbox/presence").json()["operators_online"] == 1
    with tenant_scope(alpha.tenant):
        assert operators_online(tenant=alpha.tenant) == [alpha.admin.pk]
    body = visitor(alpha).post(f"/v1/chat/{chat_id}/handoff", {}, format="json").json()
    assert body["available"] is True and body["ask_for_email"] is False and body["next_available_at"] is None
    status = alpha.client("owner").get("/v1/inbox/status").json()
    assert status == {"waiting": 1, "handled": 0, "operators_online": 1}

    # Closed today: nobody is available, whoever is online, and the answer says when it opens.
    visitor(alpha).post(f"/v1/chat/{chat_id}/release")
    with tenant_scope(alpha.tenant):
        today = dt.datetime.now(dt.UTC).astimezone(__import__("zoneinfo").ZoneInfo("Asia/Tokyo")).strftime("%a").lower()
    other_days = {day: ["09:00", "17:00"] for day in all_week if day != today}
    set_handoff(alpha, "offered", office_hours={"timezone": "Asia/Tokyo", "days": other_days})
    body = visitor(alpha).post(f"/v1/chat/{chat_id}/handoff", {}, format="json").json()
    assert body["available"] is False and body["within_office_hours"] is False and body["ask_for_email"] is True
    opening = dt.datetime.fromisoformat(body["next_available_at"].replace("Z", "+00:00"))
    assert dt.timedelta(0) < opening - dt.datetime.now(dt.UTC) <= dt.timedelta(days=2)
    assert opening.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Tokyo")).strftime("%H:%M") == "09:00"


def test_other_tenants_operators_do_not_count_as_online(alpha: TenantWorld, beta: TenantWorld) -> None:
    presence_mark(tenant_id=beta.tenant.pk, user_id=beta.owner.pk)
    presence_mark(tenant_id=alpha.tenant.pk, user_id=beta.owner.pk)  # a forged key names no alpha operator
    with tenant_scope(alpha.tenant):
        assert operators_online(tenant=alpha.tenant) == []


def test_office_hours_rules() -> None:
    hours = office_hours_clean(
        {"timezone": "Europe/Berlin", "days": {"fri": ["09:00", "17:30"], "mon": ["08:00", "12:00"]}}
    )
    assert list(hours["days"]) == ["mon", "fri"]
    friday_noon = dt.datetime(2026, 12, 4, 11, 0, tzinfo=dt.UTC)  # 12:00 in Berlin
    assert office_hours_open(hours, friday_noon)
    friday_evening = dt.datetime(2026, 12, 4, 17, 0, tzinfo=dt.UTC)  # 18:00 in Berlin
    assert not office_hours_open(hours, friday_evening)
    assert office_hours_next_opening(hours, friday_evening) == dt.datetime(2026, 12, 7, 7, 0, tzinfo=dt.UTC)
    assert office_hours_next_opening(hours, friday_noon) is None
    assert office_hours_open({}, friday_evening) and office_hours_clean(None) == {}
    for bad in (
        {"timezone": "Mars/Olympus", "days": {"mon": ["09:00", "17:00"]}},
        {"timezone": "UTC", "days": {"someday": ["09:00", "17:00"]}},
        {"timezone": "UTC", "days": {"mon": ["17:00", "09:00"]}},
        {"timezone": "UTC", "days": {"mon": ["9am", "5pm"]}},
        {"timezone": "UTC", "days": {}},
        "always",
    ):
        with pytest.raises(Exception) as error:
            office_hours_clean(bad)
        assert getattr(error.value, "status_code", None) == 422, bad


def test_office_hours_are_validated_through_the_api(alpha: TenantWorld) -> None:
    response = alpha.client("admin").patch(
        f"/v1/bot-profiles/{alpha.bot.pk}", {"office_hours": {"timezone": "Nowhere/City", "days": {}}}, format="json"
    )
    assert response.status_code == 422 and "office_hours.timezone" in response.json()["errors"]
    response = alpha.client("admin").patch(f"/v1/bot-profiles/{alpha.bot.pk}", {"handoff": "sometimes"}, format="json")
    assert response.status_code == 422
    assert (
        alpha.client("member")
        .patch(f"/v1/bot-profiles/{alpha.bot.pk}", {"handoff": "offered"}, format="json")
        .status_code
        == 403
    )


def test_the_chat_tells_the_widget_whether_a_person_may_be_offered(alpha: TenantWorld) -> None:
    set_handoff(alpha, "offered")
    response = visitor(alpha).post(
        "/v1/chat",
        {"bot_profile_id": str(alpha.bot.pk), "message": "What is the airspeed velocity of an unladen swallow?"},
        format="json",
    )
    body = response.json()
    assert set(body) == {"chat_id", "message", "sources", "usage"}  # the v1 answer, exactly
    assert body["message"]["outcome"] == "refused"
    chat = visitor(alpha).get(f"/v1/chat/{body['chat_id']}").json()
    assert chat["handoff"] == "offered" and chat["handling"] == "bot"


def test_exports_and_stats_carry_operator_messages_and_handoff_times(alpha: TenantWorld) -> None:
    set_handoff(alpha)
    chat_id = visitor_chat(alpha)
    visitor(alpha).post(f"/v1/chat/{chat_id}/handoff", {"email": "vera@example.com"}, format="json")
    owner = alpha.client("owner")
    owner.post(f"/v1/chat/{chat_id}/takeover")
    owner.post(f"/v1/chat/{chat_id}/replies", {"content": "On it."}, format="json")
    exported = owner.get(f"/v1/chat/{chat_id}/export").json()
    assert exported["chat"]["handoff_requested_at"] and exported["chat"]["taken_over_at"]
    assert exported["messages"][-1]["role"] == "operator" and exported["messages"][-1]["author_name"]
    csv_text = b"".join(owner.get(f"/v1/chat/{chat_id}/export?format=csv").streaming_content).decode()
    header, *rows = csv_text.strip().splitlines()
    assert header == "message_id,role,content,feedback,prompt_tokens,completion_tokens,created_at"  # v1 columns
    assert rows[-1].split(",")[1:3] == ["operator", "On it."]
    bulk = b"".join(owner.get("/v1/chat/export?format=csv").streaming_content).decode().splitlines()[0]
    assert bulk == "chat_id,chat_title,message_id,role,content,feedback,prompt_tokens,completion_tokens,created_at"
    handoffs = alpha.client("member").get("/v1/stats/handoffs?days=7").json()
    assert handoffs["requested"] == handoffs["taken_over"] == handoffs["handled_now"] == 1
    assert handoffs["operator_messages"] == 1 and handoffs["waiting_now"] == 0
    assert handoffs["avg_seconds_to_takeover"] is not None and handoffs["avg_seconds_to_takeover"] >= 0
    other_bot = alpha.client("member").get(f"/v1/stats/handoffs?bot_profile_id={uuid.uuid4()}").json()
    assert other_bot["requested"] == other_bot["operator_messages"] == 0
    with tenant_scope(alpha.tenant):
        assert Message.objects.get(chat_id=chat_id, role="operator").author_id == alpha.owner.pk


def test_a_widgets_handoffs_count_against_its_message_limits(alpha: TenantWorld) -> None:
    set_handoff(alpha)
    limited = alpha.client("owner").patch(
        f"/v1/api-tokens/{alpha.token_rows['bot'].pk}",
        {"rate_limits": {"visitor_messages_per_minute": 3}},
        format="json",
    )
    assert limited.status_code == 200, limited.content
    chat_id = visitor_chat(alpha)  # the first message
    widget = visitor(alpha)
    assert widget.post(f"/v1/chat/{chat_id}/handoff", {}, format="json").status_code == 200
    assert widget.post(f"/v1/chat/{chat_id}/release").status_code == 200  # not counted
    assert widget.post(f"/v1/chat/{chat_id}/handoff", {}, format="json").status_code == 200
    refused = widget.post(f"/v1/chat/{chat_id}/handoff", {}, format="json")
    assert refused.status_code == 429 and refused["Retry-After"]
    with tenant_scope(alpha.tenant):
        assert WebhookDelivery.objects.filter(event="chat.handoff_requested").count() == 2
