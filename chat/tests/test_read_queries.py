"""What `GET /v1/chat/{id}/messages` asks the database (issue 19): the widget polls it, so every
column it reads for nothing is CPU on every poll."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conftest import TenantWorld
from tenants.rls import without_scope


@pytest.mark.django_db
def test_a_chats_messages_read_the_chat_alone_then_its_messages_in_order(alpha: TenantWorld) -> None:
    client = alpha.client("bot", HTTP_X_MINIRAG_VISITOR="visitor-1")
    turn = client.post(
        "/v1/chat",
        {"message": "How long do refunds at alpha take?", "bot_profile_id": str(alpha.bot.pk)},
        format="json",
    )
    chat_id = turn.json()["chat_id"]
    with CaptureQueriesContext(connection) as captured:
        response = client.get(f"/v1/chat/{chat_id}/messages")
    assert response.status_code == 200 and [m["role"] for m in response.json()] == ["user", "assistant"]
    statements = [without_scope(query["sql"]) for query in captured.captured_queries]
    chat_reads = [sql for sql in statements if 'FROM "chat_chat"' in sql]
    assert len(chat_reads) == 1, statements
    assert "JOIN" not in chat_reads[0] and "ORDER BY" not in chat_reads[0]  # no bot, no assignee, no order
    assert [sql for sql in statements if 'FROM "chat_message"' in sql and "ORDER BY" in sql]
    # Another visitor of the same widget still gets the 404 of a chat that does not exist.
    other = alpha.client("bot", HTTP_X_MINIRAG_VISITOR="visitor-2").get(f"/v1/chat/{chat_id}/messages")
    assert other.status_code == 404
