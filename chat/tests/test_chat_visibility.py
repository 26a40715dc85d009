"""Who reads which conversation: owners and admins every chat of their tenant; members every chat
too by default (the v1 contract), or only the chats they started themselves once an owner turns
`members_see_all_chats` off — on every route that shows conversation content; widget tokens only
the chats they started for the same visitor, whatever the setting."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from chat.models import Chat
from chat.tests.conftest import ask
from conftest import TenantWorld, api_client
from tenants.tenancy import tenant_scope

pytestmark = pytest.mark.django_db

REFUSED_QUESTION = "What is the airspeed velocity of an unladen swallow?"  # the fixture's owner asked it too


def limit_members(world: TenantWorld, see_all: bool = False) -> None:
    response = world.client("owner").patch("/v1/tenants/me", {"members_see_all_chats": see_all}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["members_see_all_chats"] is see_all


def chat_ids(response: Any) -> set[str]:
    assert response.status_code == 200, response.content
    return {chat["id"] for chat in response.json()}


@pytest.fixture
def chats(alpha: TenantWorld) -> dict[str, Any]:
    """The fixture's two chats (started by the owner), one the member starts (with a refused
    question in it) and one a widget visitor starts."""
    with tenant_scope(alpha.tenant):
        owners = {str(pk) for pk in Chat.objects.filter(started_by_user=alpha.owner).values_list("pk", flat=True)}
    assert len(owners) == 2
    started = ask(alpha, "How long do refunds take?", who="member").json()
    members = started["chat_id"]
    assert ask(alpha, REFUSED_QUESTION, who="member", chat_id=members).status_code == 200
    widget = api_client(alpha.tokens["bot"], HTTP_X_MINIRAG_VISITOR="visitor-1")
    visitors = widget.post(
        "/v1/chat", {"bot_profile_id": str(alpha.bot.pk), "message": "When does the office open?"}, format="json"
    ).json()["chat_id"]
    with tenant_scope(alpha.tenant):
        owner_answer = Chat.objects.get(pk=sorted(owners)[0]).messages.filter(role="assistant").first()
    return {
        "owner": owners,
        "member": members,
        "member_answer": started["message"]["id"],
        "visitor": visitors,
        "owner_chat": str(owner_answer.chat_id),
        "owner_answer": str(owner_answer.pk),
        "widget": widget,
    }


def test_by_default_members_read_every_chat_of_the_tenant(alpha: TenantWorld, chats: dict[str, Any]) -> None:
    assert alpha.tenant.members_see_all_chats is True
    everything = chats["owner"] | {chats["member"], chats["visitor"]}
    assert chat_ids(alpha.client("member").get("/v1/chat")) == everything
    assert alpha.client("member").get(f"/v1/chat/{chats['owner_chat']}/messages").status_code == 200


def test_a_limited_member_reads_only_their_own_chats_everywhere(alpha: TenantWorld, chats: dict[str, Any]) -> None:
    limit_members(alpha)
    member = alpha.client("member")
    listing = member.get("/v1/chat")
    assert chat_ids(listing) == {chats["member"]} and listing["X-Total-Count"] == "1"
    assert chat_ids(member.get("/v1/chat", {"bot_profile_id": str(alpha.bot.pk)})) == {chats["member"]}

    # Someone else's chat answers exactly like one that does not exist, on every route.
    missing = "00000000-0000-4000-8000-000000000000"
    for other in (chats["owner_chat"], chats["visitor"]):
        for path in ("", "/messages", "/export", "/export?format=csv"):
            response = member.get(f"/v1/chat/{other}{path}")
            assert response.status_code == 404, path
            assert response.json() == member.get(f"/v1/chat/{missing}{path}").json() == {"detail": "Chat not found."}
    feedback = member.patch(
        f"/v1/chat/{chats['owner_chat']}/messages/{chats['owner_answer']}/feedback",
        {"feedback": "negative"},
        format="json",
    )
    assert feedback.status_code == 404
    # Continuing someone else's chat would show its history to the model and its answer: 404 too.
    continued = ask(alpha, "And then?", who="member", chat_id=chats["owner_chat"])
    assert continued.status_code == 404 and continued.json() == {"detail": "Chat not found."}

    # Their own chat works on every route.
    own = chats["member"]
    assert member.get(f"/v1/chat/{own}").json()["id"] == own
    assert len(member.get(f"/v1/chat/{own}/messages").json()) == 4
    assert member.get(f"/v1/chat/{own}/export").json()["chat"]["id"] == own
    rated = member.patch(
        f"/v1/chat/{own}/messages/{chats['member_answer']}/feedback", {"feedback": "positive"}, format="json"
    )
    assert rated.status_code == 200 and rated.json()["feedback"] == "positive"
    assert ask(alpha, "When does the office open?", who="member", chat_id=own).status_code == 200

    # Bulk export, JSON and CSV: only their own.
    exported = member.get("/v1/chat/export").json()
    assert [item["chat"]["id"] for item in exported["chats"]] == [own]
    rows = list(
        csv.DictReader(io.StringIO(b"".join(member.get("/v1/chat/export?format=csv").streaming_content).decode()))
    )
    assert rows and {row["chat_id"] for row in rows} == {own}

    # Unanswered questions are visitors' words: only those asked in their own chats.
    unanswered = member.get("/v1/stats/unanswered").json()
    assert [(row["question"], row["count"]) for row in unanswered] == [(REFUSED_QUESTION, 1)]


def test_owners_and_admins_read_every_chat_whatever_the_setting(alpha: TenantWorld, chats: dict[str, Any]) -> None:
    limit_members(alpha)
    everything = chats["owner"] | {chats["member"], chats["visitor"]}
    for who in ("owner", "admin"):
        client = alpha.client(who)
        assert chat_ids(client.get("/v1/chat")) == everything
        assert client.get(f"/v1/chat/{chats['member']}/messages").status_code == 200
        assert {item["chat"]["id"] for item in client.get("/v1/chat/export").json()["chats"]} == everything
        unanswered = client.get("/v1/stats/unanswered").json()
        assert [(row["question"], row["count"]) for row in unanswered] == [(REFUSED_QUESTION, 2)]


def test_a_members_every_credential_counts_as_them(alpha: TenantWorld, chats: dict[str, Any]) -> None:
    """Chats the member started with their API token are theirs when they log in with a JWT,
    and the other way round: the rule is about the person, not the credential."""
    limit_members(alpha)
    jwt = (
        api_client()
        .post("/v1/auth/login", {"email": alpha.member.email, "password": alpha.password}, format="json")
        .json()["access_token"]
    )
    assert chat_ids(api_client(jwt).get("/v1/chat")) == {chats["member"]}
    started_with_jwt = (
        api_client(jwt)
        .post("/v1/chat", {"bot_profile_id": str(alpha.bot.pk), "message": "Is shipping free?"}, format="json")
        .json()["chat_id"]
    )
    assert chat_ids(alpha.client("member").get("/v1/chat")) == {chats["member"], started_with_jwt}


def test_widget_tokens_read_only_their_visitors_chats_whatever_the_setting(
    alpha: TenantWorld, chats: dict[str, Any]
) -> None:
    widget: APIClient = chats["widget"]
    for see_all in (True, False):
        limit_members(alpha, see_all=see_all)
        assert widget.get(f"/v1/chat/{chats['visitor']}/messages").status_code == 200
        assert widget.get(f"/v1/chat/{chats['member']}").status_code == 404
        assert widget.get(f"/v1/chat/{chats['owner_chat']}").status_code == 404
        assert widget.get("/v1/chat").status_code == 403


def test_turning_the_setting_back_on_shows_members_everything_again(alpha: TenantWorld, chats: dict[str, Any]) -> None:
    limit_members(alpha)
    assert chat_ids(alpha.client("member").get("/v1/chat")) == {chats["member"]}
    limit_members(alpha, see_all=True)
    assert len(chat_ids(alpha.client("member").get("/v1/chat"))) == 4


def test_the_setting_is_per_tenant(alpha: TenantWorld, beta: TenantWorld, chats: dict[str, Any]) -> None:
    limit_members(beta)
    assert len(chat_ids(alpha.client("member").get("/v1/chat"))) == 4
    assert chat_ids(beta.client("member").get("/v1/chat")) == set()  # beta's member started none


def test_members_have_no_dashboard_so_its_chat_pages_are_closed_to_them(
    alpha: TenantWorld, chats: dict[str, Any]
) -> None:
    """The dashboard's chat, message and unanswered-question pages are for owners and admins; a
    member's session (say, an admin demoted while logged in) is sent to the login page."""
    limit_members(alpha)
    session = Client()
    session.force_login(alpha.admin)
    page = reverse("admin:chat_chat_change", args=[chats["member"]])
    assert session.get(page).status_code == 200
    alpha.client("owner").patch(f"/v1/users/{alpha.admin.pk}", {"role": "member"}, format="json")
    for url in (
        page,
        reverse("admin:chat_chat_changelist"),
        reverse("admin:chat_message_changelist"),
        "/dashboard/usage/",
    ):
        answer = session.get(url)
        assert answer.status_code == 302 and answer["Location"].startswith(reverse("admin:login")), url
