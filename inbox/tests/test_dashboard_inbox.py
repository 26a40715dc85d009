"""The dashboard's inbox (/dashboard/inbox/): the list's order and filters, the transcript, taking
over, replying and handing back with plain forms and with fetch, the waiting counter on every
page, who gets in (members only while they may read every chat, and then only the inbox), and
that another workspace's chats are a 404."""

from __future__ import annotations

import pytest
from django.test import Client

from chat.models import Chat, Message
from conftest import TenantWorld
from inbox.tests.conftest import set_handoff, visitor, visitor_chat
from minirag.tests.test_dashboard import log_in_operator, login, tenant_client
from tenants.models import Tenant
from tenants.tenancy import tenant_scope

pytestmark = pytest.mark.django_db
FETCH = {"HTTP_X_REQUESTED_WITH": "fetch"}


def _ask_for_person(world: TenantWorld, visitor_id: str) -> str:
    chat_id = visitor_chat(world, visitor_id)
    response = visitor(world, visitor_id).post(f"/v1/chat/{chat_id}/handoff", {}, format="json")
    assert response.status_code == 200, response.content
    return chat_id


def test_the_list_puts_waiting_visitors_first_then_handled_then_recent(alpha: TenantWorld) -> None:
    set_handoff(alpha)
    recent = visitor_chat(alpha, "v-recent")
    first_waiting = _ask_for_person(alpha, "v-first")
    second_waiting = _ask_for_person(alpha, "v-second")
    handled = _ask_for_person(alpha, "v-handled")
    assert alpha.client("admin").post(f"/v1/chat/{handled}/takeover").status_code == 200
    client = tenant_client(alpha)

    page = client.get("/dashboard/inbox/").content.decode()
    order = [page.index(f"chat={chat_id}") for chat_id in (first_waiting, second_waiting, handled, recent)]
    assert order == sorted(order)
    assert "2 waiting for a person" in page
    assert 'data-inbox-counter>Inbox <span class="mr-badge mr-badge-error">2 waiting</span>' in page

    only_waiting = client.get("/dashboard/inbox/list/?handling=needs_human").content.decode()
    assert first_waiting in only_waiting and second_waiting in only_waiting
    assert handled not in only_waiting and recent not in only_waiting
    # Every dashboard page carries the counter.
    assert b"2 waiting</span>" in client.get("/dashboard/bots/botprofile/").content


def test_filters_by_bot_outcome_and_feedback(alpha: TenantWorld) -> None:
    answered = visitor_chat(alpha, "v-answered")
    refused = visitor_chat(alpha, "v-refused", message="What is the airspeed velocity of an unladen swallow?")
    with tenant_scope(alpha.tenant):
        assert Message.objects.filter(chat_id=refused, outcome=Message.Outcome.REFUSED).exists()
        Message.objects.filter(chat_id=answered, role=Message.Role.ASSISTANT).update(feedback=Message.Feedback.NEGATIVE)
    client = tenant_client(alpha)

    def listed(query: str) -> set[str]:
        body = client.get(f"/dashboard/inbox/list/?{query}").content.decode()
        return {chat_id for chat_id in (answered, refused) if chat_id in body}

    assert listed("") == {answered, refused}
    assert listed("outcome=refused") == {refused}
    assert listed("outcome=answered") == {answered}
    assert listed("feedback=negative") == {answered}
    assert listed(f"bot={alpha.bot.pk}") == {answered, refused}
    assert listed("bot=00000000-0000-0000-0000-000000000000") == {answered, refused}  # unknown: ignored
    assert listed("handling=human") == set()


def test_an_admin_takes_over_replies_and_hands_back_with_plain_forms(alpha: TenantWorld) -> None:
    set_handoff(alpha)
    chat_id = _ask_for_person(alpha, "v-1")
    client = tenant_client(alpha, "admin")

    page = client.get(f"/dashboard/inbox/?chat={chat_id}").content.decode()
    assert "Waiting for a person" in page and "Take over" in page
    assert "data-inbox-reply" in page and "hidden" in page.split("data-inbox-reply", 1)[1].split(">", 1)[0]

    taken = client.post(f"/dashboard/inbox/{chat_id}/takeover/")
    assert taken.status_code == 302 and taken["Location"].endswith(f"chat={chat_id}")
    replied = client.post(f"/dashboard/inbox/{chat_id}/reply/", {"content": "Hello, a person here."})
    assert replied.status_code == 302
    with tenant_scope(alpha.tenant):
        chat = Chat.objects.get(pk=chat_id)
        operator_message = Message.objects.get(chat=chat, role=Message.Role.OPERATOR)
    assert chat.handling == Chat.Handling.HUMAN and chat.assigned_to_id == alpha.admin.pk
    assert operator_message.content == "Hello, a person here."

    transcript = client.get(f"/dashboard/inbox/{chat_id}/").content.decode()
    assert "You answer" in transcript and "Hello, a person here." in transcript
    assert "Hand back to the bot" in transcript
    with tenant_scope(alpha.tenant):
        answer = Message.objects.get(chat_id=chat_id, role=Message.Role.ASSISTANT)
    assert f"/dashboard/sources/curatedanswer/add/?message={answer.pk}" in transcript  # teach the bot

    assert client.post(f"/dashboard/inbox/{chat_id}/release/").status_code == 302
    with tenant_scope(alpha.tenant):
        assert Chat.objects.get(pk=chat_id).handling == Chat.Handling.BOT


def test_fetch_gets_204_or_a_detail(alpha: TenantWorld) -> None:
    set_handoff(alpha)
    chat_id = _ask_for_person(alpha, "v-1")
    client = tenant_client(alpha)

    too_early = client.post(f"/dashboard/inbox/{chat_id}/reply/", {"content": "Hi"}, **FETCH)
    assert too_early.status_code == 409 and "Take the chat over first" in too_early.json()["detail"]
    assert client.post(f"/dashboard/inbox/{chat_id}/takeover/", **FETCH).status_code == 204
    empty = client.post(f"/dashboard/inbox/{chat_id}/reply/", {"content": "   "}, **FETCH)
    assert empty.status_code == 422 and empty.json()["detail"]
    assert client.post(f"/dashboard/inbox/{chat_id}/reply/", {"content": "Hi"}, **FETCH).status_code == 204
    assert client.get(f"/dashboard/inbox/{chat_id}/reply/").status_code == 405
    assert client.post(f"/dashboard/inbox/{chat_id}/delete/", **FETCH).status_code == 404


def test_another_workspaces_chat_is_a_404(alpha: TenantWorld, beta: TenantWorld) -> None:
    set_handoff(beta)
    beta_chat = _ask_for_person(beta, "v-beta")
    client = tenant_client(alpha)
    assert beta_chat not in client.get("/dashboard/inbox/").content.decode()
    assert client.get(f"/dashboard/inbox/?chat={beta_chat}").status_code == 404
    assert client.get(f"/dashboard/inbox/{beta_chat}/").status_code == 404
    for action in ("takeover", "release", "reply"):
        assert client.post(f"/dashboard/inbox/{beta_chat}/{action}/", {"content": "x"}, **FETCH).status_code == 404
    with tenant_scope(beta.tenant):
        assert Chat.objects.get(pk=beta_chat).handling == Chat.Handling.NEEDS_HUMAN


def test_members_answer_visitors_only_while_they_may_read_every_chat(alpha: TenantWorld) -> None:
    set_handoff(alpha)
    chat_id = _ask_for_person(alpha, "v-1")
    member = Client()
    assert login(member, alpha.member.email, alpha.password).status_code == 302
    assert member.get("/dashboard/").url == "/dashboard/inbox/"
    assert chat_id in member.get("/dashboard/inbox/").content.decode()
    assert member.post(f"/dashboard/inbox/{chat_id}/takeover/", **FETCH).status_code == 204
    # Nothing else of the dashboard.
    for url in (
        "/dashboard/bots/botprofile/",
        "/dashboard/usage/",
        "/dashboard/health/",
        "/dashboard/chat/chat/",
        "/dashboard/sources/source/progress/",
        f"/dashboard/bots/botprofile/{alpha.bot.pk}/try/",
    ):
        assert member.get(url).status_code == 403, url

    Tenant.objects.filter(pk=alpha.tenant.pk).update(members_see_all_chats=False)
    assert member.get("/dashboard/inbox/").status_code == 302  # to the login page
    refused = login(Client(), alpha.member.email, alpha.password)
    assert refused.status_code == 200 and b"members answer visitors in its inbox" in refused.content


def test_a_platform_operator_reads_a_workspaces_inbox_without_answering(alpha: TenantWorld, client: Client) -> None:
    operator_client = log_in_operator(client)
    set_handoff(alpha)
    chat_id = _ask_for_person(alpha, "v-1")
    page = operator_client.get(f"/dashboard/inbox/?tenant=alpha&chat={chat_id}").content.decode()
    assert chat_id in page and "Take over" not in page and "data-inbox-reply" not in page
    refused = operator_client.post(f"/dashboard/inbox/{chat_id}/takeover/?tenant=alpha", **FETCH)
    assert refused.status_code == 403
