"""Curated answers on the dashboard: the list, writing one from a bot's answer or an unanswered
question, changing and removing it — each through the same services as the API."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client

from chat.models import Message
from conftest import TenantWorld
from minirag.tests.test_dashboard import admin_url, operator_client, tenant_client  # noqa: F401 - a fixture
from minirag.vectorstore import collection_name, get_vector_store
from sources.models import CuratedAnswer, Source
from tenants.tenancy import tenant_scope, tenant_scope_disabled

pytestmark = pytest.mark.django_db

REFUSED_QUESTION = "What is the airspeed velocity of an unladen swallow?"  # asked, and refused, in the fixture
RIGHT_ANSWER = "About 11 metres per second, or 24 miles an hour, for a European swallow."


def refused_answer(world: TenantWorld) -> Message:
    with tenant_scope(world.tenant):
        return Message.objects.select_related("chat").get(role=Message.Role.ASSISTANT, outcome="refused")


def page(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return html.unescape(response.content.decode())


def ask(world: TenantWorld, question: str) -> dict[str, Any]:
    response = world.client().post(
        "/v1/chat", {"bot_profile_id": str(world.bot.pk), "message": question}, format="json"
    )
    return response.json()


def test_the_list_shows_each_tenant_its_own_and_operators_every_one(
    alpha: TenantWorld,
    beta: TenantWorld,
    operator_client: Client,  # noqa: F811 - the imported fixture
) -> None:
    listed = page(tenant_client(alpha), admin_url(CuratedAnswer, "changelist"))
    assert "Do alpha gift cards expire?" in listed and "Alpha gift cards never expire." in listed
    assert "alpha bot" in listed and "Pending" in listed  # its status (the fixture's never commits)
    assert "beta" not in listed.lower()
    everyone = page(operator_client, admin_url(CuratedAnswer, "changelist"))
    assert "Do alpha gift cards expire?" in everyone and "Do beta gift cards expire?" in everyone
    assert "Alpha Inc" in everyone and "Beta Inc" in everyone  # the tenant column
    # Another tenant's curated answer is a 404, like a missing one.
    client = tenant_client(alpha)
    for view in ("change", "delete"):
        assert client.get(admin_url(CuratedAnswer, view, beta.curated_answer.pk)).status_code == 404


def test_writing_the_right_answer_from_a_bots_answer_in_a_chat(
    alpha: TenantWorld, django_capture_on_commit_callbacks: Any
) -> None:
    client = tenant_client(alpha)
    refused = refused_answer(alpha)
    add_url = f"{admin_url(CuratedAnswer, 'add')}?{urlencode({'message': refused.pk})}"
    transcript = page(client, admin_url(refused.chat, "change", refused.chat.pk))
    assert f'<a href="{add_url}">Write the right answer</a>' in transcript

    form = page(client, add_url)
    assert f"\n{REFUSED_QUESTION}</textarea>" in form  # the question the visitor asked
    assert "What the bot answered" in form and f"\n{alpha.bot.refusal_message}</textarea>" in form
    assert f'<option value="{alpha.bot.pk}" selected>' in form

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            add_url,
            {"bot_profile": alpha.bot.pk, "question": REFUSED_QUESTION, "answer": RIGHT_ANSWER, "message": refused.pk},
        )
    assert response.status_code == 302, response.content[:3000]
    with tenant_scope(alpha.tenant):
        curated = CuratedAnswer.objects.exclude(pk=alpha.curated_answer.pk).get()
    assert (curated.question, curated.answer, curated.message_id) == (REFUSED_QUESTION, RIGHT_ANSWER, str(refused.pk))
    assert curated.status == "ready" and curated.authority == "mandatory"
    assert curated.created_by_name == (alpha.owner.display_name or alpha.owner.email)

    turn = ask(alpha, REFUSED_QUESTION)
    assert turn["sources"][0]["source_id"] == str(curated.pk)
    assert "About 11 metres per second" in turn["message"]["content"]
    # Its page shows the answer it corrects, with the way to the chat.
    shown = page(client, admin_url(CuratedAnswer, "change", curated.pk))
    assert alpha.bot.refusal_message in shown and "Open the chat" in shown


def test_writing_the_right_answer_to_an_unanswered_question(alpha: TenantWorld) -> None:
    client = tenant_client(alpha)
    add_url = f"{admin_url(CuratedAnswer, 'add')}?{urlencode({'bot': alpha.bot.pk, 'question': REFUSED_QUESTION})}"
    usage = page(client, "/dashboard/usage/")
    assert f'href="{add_url.replace("+", "%20")}">Write the right answer</a>' in usage.replace("&amp;", "&")
    unanswered = page(client, "/dashboard/chat/unansweredquestion/")
    assert "Write the right answer" in unanswered
    form = page(client, add_url)
    assert f"\n{REFUSED_QUESTION}</textarea>" in form and f'<option value="{alpha.bot.pk}" selected>' in form
    assert "What the bot answered" not in form  # no answer to show
    # Refusals are shown on the form, field by field, and nothing is saved.
    refused = client.post(add_url, {"bot_profile": alpha.bot.pk, "question": REFUSED_QUESTION, "answer": "  "})
    assert refused.status_code == 200 and "This field is required." in refused.content.decode()
    with tenant_scope(alpha.tenant):
        assert CuratedAnswer.objects.count() == 1  # the fixture's


def test_changing_and_removing_one(alpha: TenantWorld, django_capture_on_commit_callbacks: Any) -> None:
    client = tenant_client(alpha)
    curated = alpha.curated_answer
    url = admin_url(CuratedAnswer, "change", curated.pk)
    form = page(client, url)
    assert "\nDo alpha gift cards expire?</textarea>" in form and "\nAlpha gift cards never expire.</textarea>" in form
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url, {"question": "Do alpha gift cards expire?", "answer": "They expire after three years."}
        )
    assert response.status_code == 302, response.content[:3000]
    with tenant_scope(alpha.tenant):
        changed = CuratedAnswer.objects.get(pk=curated.pk)
        chunk = changed.chunks.get()
    assert changed.answer == "They expire after three years." and changed.status == "ready"
    assert chunk.content == "# Do alpha gift cards expire?\nThey expire after three years."
    # Its source's page says where to change it.
    source_page = page(client, admin_url(Source, "change", curated.pk))
    assert f'href="{url}">Change the question or the answer</a>' in source_page

    confirm = page(client, admin_url(CuratedAnswer, "delete", curated.pk))
    assert "Do alpha gift cards expire?" in confirm
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(admin_url(CuratedAnswer, "delete", curated.pk), {"post": "yes"}).status_code == 302
    with tenant_scope(alpha.tenant):
        assert not Source.objects.filter(pk=curated.pk).exists()
    store = get_vector_store()
    model = alpha.bot.embedding_model
    assert store.count(collection_name(model), tenant_id=alpha.tenant.pk, source_ids=[curated.pk]) == 0


def test_an_operator_writes_one_for_a_tenants_bot(
    alpha: TenantWorld,
    beta: TenantWorld,
    operator_client: Client,  # noqa: F811 - the imported fixture
    django_capture_on_commit_callbacks: Any,
) -> None:
    refused = refused_answer(beta)
    add_url = f"{admin_url(CuratedAnswer, 'add')}?{urlencode({'message': refused.pk})}"
    form = page(operator_client, add_url)
    assert f'<option value="{beta.bot.pk}" selected>Beta Inc: beta bot</option>' in form
    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post(
            add_url,
            {"bot_profile": beta.bot.pk, "question": REFUSED_QUESTION, "answer": RIGHT_ANSWER, "message": refused.pk},
        )
    assert response.status_code == 302, response.content[:3000]
    with tenant_scope_disabled("test: where did it go"):
        created = CuratedAnswer.all_tenants.filter(tenant=beta.tenant).exclude(pk=beta.curated_answer.pk).get()
    assert created.bot_profile_id == beta.bot.pk and created.message_id == str(refused.pk)
    # Another tenant's answer cannot be corrected for this tenant's bot: refused on the form.
    mismatched = operator_client.post(
        add_url,
        {"bot_profile": alpha.bot.pk, "question": REFUSED_QUESTION, "answer": RIGHT_ANSWER, "message": refused.pk},
    )
    assert mismatched.status_code == 200 and "Message not found." in mismatched.content.decode()


def test_a_tenants_staff_cannot_correct_another_tenants_answer(alpha: TenantWorld, beta: TenantWorld) -> None:
    client = tenant_client(alpha)
    foreign = refused_answer(beta)
    form = page(client, f"{admin_url(CuratedAnswer, 'add')}?{urlencode({'message': foreign.pk})}")
    assert "What the bot answered" not in form and REFUSED_QUESTION not in form  # nothing of it is shown
    response = client.post(
        admin_url(CuratedAnswer, "add"),
        {"bot_profile": alpha.bot.pk, "question": "Why?", "answer": "Because.", "message": foreign.pk},
    )
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    with tenant_scope(alpha.tenant):
        assert CuratedAnswer.objects.count() == 1
