"""A chat's counters (`count_on_chat`, one statement written out by hand): what a turn adds to
them, and that the statement keeps the scoped manager's rules — the current tenant's row only,
nothing at all outside a tenant scope."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat.models import Chat
from chat.services import count_on_chat
from chat.tests.conftest import ModelSpy, add_knowledge, ask, use_model
from conftest import TenantWorld
from tenants.rls import without_scope
from tenants.tenancy import TenantScopeError, tenant_scope

pytestmark = pytest.mark.django_db


def new_chat(world: TenantWorld) -> Chat:
    with tenant_scope(world.tenant):
        return Chat.objects.create(tenant=world.tenant, bot_profile=world.bot, title="Counted", visitor_id="v")


def test_it_adds_to_the_counters_and_touches_the_chat(alpha: TenantWorld) -> None:
    chat = new_chat(alpha)
    with tenant_scope(alpha.tenant):
        count_on_chat(chat.pk, messages=1)
        count_on_chat(chat.pk, messages=1, prompt_tokens=120, completion_tokens=30)
        counted = Chat.objects.get(pk=chat.pk)
    assert (counted.message_count, counted.total_prompt_tokens, counted.total_completion_tokens) == (2, 120, 30)
    assert counted.updated_at > chat.updated_at


def test_it_changes_no_other_tenants_chat_and_nothing_outside_a_scope(alpha: TenantWorld, beta: TenantWorld) -> None:
    """Row-level security would keep another tenant's row out of reach on PostgreSQL anyway: the
    statement itself must name the scope's tenant too (SQLite has no row-level security)."""
    theirs = new_chat(beta)
    with tenant_scope(alpha.tenant), CaptureQueriesContext(connection) as captured:
        count_on_chat(theirs.pk, messages=5, prompt_tokens=500)
    (statement,) = [without_scope(query["sql"]) for query in captured.captured_queries]
    assert f"WHERE \"tenant_id\" = '{alpha.tenant.pk.hex}'" in statement, statement
    with pytest.raises(TenantScopeError):
        count_on_chat(theirs.pk, messages=5)
    with tenant_scope(beta.tenant):
        untouched = Chat.objects.get(pk=theirs.pk)
    assert (untouched.message_count, untouched.total_prompt_tokens, untouched.updated_at) == (0, 0, theirs.updated_at)


def test_a_conversation_counts_every_message_and_the_models_tokens(alpha: TenantWorld, model_spy: ModelSpy) -> None:
    add_knowledge(alpha, "Shipping", "Orders ship within two working days. We ship abroad to every EU country.")
    use_model(alpha, "gpt-4o-mini")
    model_spy.mock(mock_response="Within two working days [1].")
    first = ask(alpha, "How long does shipping take?").json()
    follow_up = ask(alpha, "Do you ship abroad to EU countries?", chat_id=first["chat_id"]).json()
    with tenant_scope(alpha.tenant):
        chat = Chat.objects.get(pk=first["chat_id"])
    usage = [first["usage"], follow_up["usage"]]
    assert chat.message_count == 4 and all(turn["completion_tokens"] > 0 for turn in usage)
    assert chat.total_prompt_tokens == sum(turn["prompt_tokens"] for turn in usage)
    assert chat.total_completion_tokens == sum(turn["completion_tokens"] for turn in usage)
