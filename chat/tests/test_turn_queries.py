"""How many database statements a chat turn makes — a test that fails when they grow (issue 19).
A new statement on every turn is a cost every visitor pays: raise a number here only on purpose."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conftest import TenantWorld
from tenants.rls import without_scope

# Measured 2026-12-06 with the visitor's widget token, on PostgreSQL (each statement carries its
# row-level-security scope in the same message, tenants/rls.py). A follow-up: the chat with its bot
# (read and locked in one statement); the history; the question stored and the chat's count; the
# bot's sources for the search (one read); the answer, its usage record and the chat's totals; the
# webhook subscribers and a delivery; and two savepoints (four statements). A first turn reads the
# token and the bot instead of the chat, has no history to read and one chat to create.
FIRST_TURN_STATEMENTS = 16
FOLLOW_UP_STATEMENTS = 14


def statements(world: TenantWorld, message: str, **body: Any) -> tuple[int, Any]:
    client = world.client("bot", HTTP_X_MINIRAG_VISITOR="visitor-1")
    with CaptureQueriesContext(connection) as captured:
        response = client.post(
            "/v1/chat", {"message": message, "bot_profile_id": str(world.bot.pk), **body}, format="json"
        )
    assert response.status_code == 200, response.content
    # Each statement once: the row-level-security scope travels in the same message (tenants/rls.py).
    statements = [without_scope(query["sql"]) for query in captured.captured_queries]
    assert not [sql for sql in statements if "set_config" in sql]
    return len(statements), response.json()


@pytest.mark.django_db
def test_a_turn_makes_no_more_statements_than_it_did(alpha: TenantWorld) -> None:
    first, body = statements(alpha, "How long do refunds at alpha take?")
    follow_up, _ = statements(alpha, "And shipping?", chat_id=body["chat_id"])
    print("COUNTS", first, follow_up)
    assert first <= FIRST_TURN_STATEMENTS and follow_up <= FOLLOW_UP_STATEMENTS
