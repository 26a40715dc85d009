"""How many database statements a chat turn makes — a test that fails when they grow (issue 19).
A new statement on every turn is a cost every visitor pays: raise a number here only on purpose."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conftest import TenantWorld
from tenants.rls import without_scope
from tenants.tenancy import tenant_scope
from webhooks.models import Webhook

# Measured 2026-12-06 with the visitor's widget token, on PostgreSQL (each statement carries its
# row-level-security scope in the same message, tenants/rls.py). A follow-up: the chat with its bot
# and whether the tenant has an enabled webhook (read and locked in one statement); the history; the
# question stored and the chat's count; the bot's sources for the search (one read); the answer,
# its usage record and the chat's totals; the webhook subscribers and a delivery; and two
# savepoints (four statements). A first turn reads the token and the bot instead of the chat, has
# no history to read, and creates its chat already counting the question.
FIRST_TURN_STATEMENTS = 15
FOLLOW_UP_STATEMENTS = 14
# A tenant without an enabled webhook: no subscribers to look for, no delivery to record.
WITHOUT_WEBHOOKS = 2


def statements(world: TenantWorld, message: str, **body: Any) -> tuple[list[str], Any]:
    client = world.client("bot", HTTP_X_MINIRAG_VISITOR="visitor-1")
    with CaptureQueriesContext(connection) as captured:
        response = client.post(
            "/v1/chat", {"message": message, "bot_profile_id": str(world.bot.pk), **body}, format="json"
        )
    assert response.status_code == 200, response.content
    # Each statement once: the row-level-security scope travels in the same message (tenants/rls.py).
    statements = [without_scope(query["sql"]) for query in captured.captured_queries]
    assert not [sql for sql in statements if "set_config" in sql]
    return statements, response.json()


@pytest.mark.django_db
def test_a_turn_makes_no_more_statements_than_it_did(alpha: TenantWorld) -> None:
    first, body = statements(alpha, "How long do refunds at alpha take?")
    follow_up, _ = statements(alpha, "And shipping?", chat_id=body["chat_id"])
    assert len(first) <= FIRST_TURN_STATEMENTS and len(follow_up) <= FOLLOW_UP_STATEMENTS, (first, follow_up)
    assert any("webhooks_webhookdelivery" in sql for sql in follow_up)  # the subscribed webhook gets it


@pytest.mark.django_db
def test_a_tenant_without_an_enabled_webhook_makes_no_statement_for_webhooks(alpha: TenantWorld) -> None:
    assert alpha.webhook is not None
    with tenant_scope(alpha.tenant):
        Webhook.objects.filter(pk=alpha.webhook.pk).update(is_active=False)
    first, body = statements(alpha, "How long do refunds at alpha take?")
    follow_up, _ = statements(alpha, "And shipping?", chat_id=body["chat_id"])
    assert len(first) <= FIRST_TURN_STATEMENTS - WITHOUT_WEBHOOKS, first
    assert len(follow_up) <= FOLLOW_UP_STATEMENTS - WITHOUT_WEBHOOKS, follow_up
    # Only the turn's first read asks about webhooks (in a subquery); storing the answer does not.
    assert [sql for sql in first + follow_up if "webhooks_webhook" in sql and "EXISTS" not in sql] == []


@pytest.mark.django_db
def test_rows_read_by_their_key_are_read_without_an_order(alpha: TenantWorld) -> None:
    """The chat, its bot and the token are one row each: an ORDER BY would only cost the compiler
    (minirag/lookups.py `only_row`). The history is read in order."""
    first, body = statements(alpha, "How long do refunds at alpha take?")
    follow_up, _ = statements(alpha, "And shipping?", chat_id=body["chat_id"])
    by_key = [
        sql
        for sql in first + follow_up
        if sql.startswith("SELECT") and any(f'FROM "{table}"' in sql for table in ("chat_chat", "bots_botprofile"))
    ]
    assert len(by_key) == 2, by_key  # the first turn's bot, the follow-up's chat (with its bot)
    assert not [sql for sql in by_key if "ORDER BY" in sql]
    assert [sql for sql in follow_up if 'FROM "chat_message"' in sql and "ORDER BY" in sql]
