"""Chat history, feedback, widget (bot) token access, and exports in JSON and CSV."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from chat.tests.conftest import ModelSpy, add_knowledge, ask, use_model
from conftest import TenantWorld

pytestmark = pytest.mark.django_db

CHAT_KEYS = {
    "id",
    "tenant_id",
    "bot_profile_id",
    "title",
    "message_count",
    "total_prompt_tokens",
    "total_completion_tokens",
    "created_at",
    "updated_at",
}


@pytest.fixture
def conversation(alpha: TenantWorld) -> dict[str, Any]:
    add_knowledge(alpha, "Hours", "The shop is open Monday to Friday from 9:00 to 18:00.")
    first = ask(alpha, "When does the shop open?").json()
    second = ask(alpha, '=HYPERLINK("http://evil.example") and on Monday?', chat_id=first["chat_id"]).json()
    return {"chat_id": first["chat_id"], "answers": [first["message"]["id"], second["message"]["id"]]}


def read_csv(response: Any) -> list[list[str]]:
    raw = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(raw)))


def test_list_get_and_messages(alpha: TenantWorld, conversation: dict) -> None:
    listing = alpha.client("member").get("/v1/chat")
    assert listing.status_code == 200
    assert listing.json()[0]["id"] == conversation["chat_id"]  # most recently active first
    assert CHAT_KEYS <= set(listing.json()[0])
    assert int(listing["X-Total-Count"]) == 3  # the fixture's two chats and this one
    assert (
        alpha.client().get(f"/v1/chat?bot_profile_id={alpha.bot.pk}&limit=1").json()[0]["id"] == conversation["chat_id"]
    )
    assert alpha.client().get("/v1/chat?limit=101").status_code == 422  # chat lists cap at 100

    chat = alpha.client().get(f"/v1/chat/{conversation['chat_id']}").json()
    assert chat["message_count"] == 4 and chat["title"] == "When does the shop open?"
    messages = alpha.client().get(f"/v1/chat/{conversation['chat_id']}/messages").json()
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]  # oldest first
    assert messages[1]["sources"][0]["source_name"] == "Hours"


def test_feedback(alpha: TenantWorld, conversation: dict) -> None:
    chat_id, answer = conversation["chat_id"], conversation["answers"][0]
    url = f"/v1/chat/{chat_id}/messages/{answer}/feedback"
    response = alpha.client("member").patch(url, {"feedback": "positive"}, format="json")
    assert response.status_code == 200 and response.json()["feedback"] == "positive"
    assert alpha.client().patch(url, {"feedback": None}, format="json").json()["feedback"] is None
    assert alpha.client().patch(url, {"feedback": "meh"}, format="json").status_code == 422
    user_message = alpha.client().get(f"/v1/chat/{chat_id}/messages").json()[0]["id"]
    on_user = alpha.client().patch(
        f"/v1/chat/{chat_id}/messages/{user_message}/feedback", {"feedback": "negative"}, format="json"
    )
    assert on_user.status_code == 422 and "assistant" in on_user.json()["detail"]
    assert (
        alpha.client()
        .patch(f"/v1/chat/{chat_id}/messages/nope/feedback", {"feedback": None}, format="json")
        .status_code
        == 404
    )


def test_a_widget_token_reaches_only_its_bot_and_its_own_chats(alpha: TenantWorld, conversation: dict) -> None:
    widget = alpha.client("bot")
    mine = widget.post(
        "/v1/chat", {"bot_profile_id": str(alpha.bot.pk), "message": "When does the shop open?"}, format="json"
    )
    assert mine.status_code == 200
    chat_id, answer = mine.json()["chat_id"], mine.json()["message"]["id"]
    assert widget.get(f"/v1/chat/{chat_id}").status_code == 200
    assert len(widget.get(f"/v1/chat/{chat_id}/messages").json()) == 2
    assert (
        widget.patch(
            f"/v1/chat/{chat_id}/messages/{answer}/feedback", {"feedback": "negative"}, format="json"
        ).status_code
        == 200
    )
    # A chat the widget did not start is as good as missing; lists, exports and stats are closed.
    assert widget.get(f"/v1/chat/{conversation['chat_id']}").status_code == 404
    for path in ("/v1/chat", "/v1/chat/export", f"/v1/chat/{chat_id}/export", "/v1/stats/overview"):
        assert widget.get(path).status_code == 403, path
    other = alpha.client("admin").post("/v1/bot-profiles", {"name": "Other"}, format="json").json()["id"]
    refused = widget.post("/v1/chat", {"bot_profile_id": other, "message": "hi"}, format="json")
    assert refused.status_code == 403 and "its own bot" in refused.json()["detail"]


def test_single_export_json_and_csv(alpha: TenantWorld, conversation: dict) -> None:
    chat_id = conversation["chat_id"]
    exported = alpha.client().get(f"/v1/chat/{chat_id}/export").json()
    assert set(exported) == {"chat", "messages", "exported_at"}
    assert exported["chat"]["id"] == chat_id and len(exported["messages"]) == 4

    response = alpha.client().get(f"/v1/chat/{chat_id}/export?format=csv")
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == f'attachment; filename="chat-{chat_id}.csv"'
    rows = read_csv(response)
    assert rows[0] == ["message_id", "role", "content", "feedback", "prompt_tokens", "completion_tokens", "created_at"]
    assert [row[1] for row in rows[1:]] == ["user", "assistant", "user", "assistant"]
    assert rows[3][2].startswith("'=HYPERLINK")  # a visitor's formula is not run by a spreadsheet
    assert alpha.client().get(f"/v1/chat/{chat_id}/export?format=xml").status_code == 422


def test_bulk_export_with_filters(alpha: TenantWorld, conversation: dict) -> None:
    body = alpha.client().get("/v1/chat/export").json()
    assert {"chats", "exported_at"} == set(body) and len(body["chats"]) == 3
    assert all(set(item) == {"chat", "messages"} for item in body["chats"])
    rows = read_csv(alpha.client().get(f"/v1/chat/export?format=csv&bot_profile_id={alpha.bot.pk}&limit=1"))
    assert rows[0] == [
        "chat_id",
        "chat_title",
        "message_id",
        "role",
        "content",
        "feedback",
        "prompt_tokens",
        "completion_tokens",
        "created_at",
    ]
    assert {row[0] for row in rows[1:]} == {conversation["chat_id"]} and len(rows) == 5
    assert alpha.client().get("/v1/chat/export?from_date=2999-01-01").json()["chats"] == []
    for bad in ("from_date=yesterday", "to_date=2026-13-01", "from_date=2026-02-01&to_date=2026-01-01", "limit=1001"):
        response = alpha.client().get(f"/v1/chat/export?{bad}")
        assert response.status_code == 422, bad


def test_the_chat_command_streams_answers_with_sources(alpha: TenantWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    import io as stdio

    from django.core.management import call_command

    add_knowledge(alpha, "Hours", "The shop is open Monday to Friday from 9:00 to 18:00.")
    out = stdio.StringIO()
    call_command(
        "chat", "--tenant", "alpha", "--bot", str(alpha.bot.pk), "--message", "When is the shop open?", stdout=out
    )
    text = out.getvalue()
    assert "bot> The shop is open Monday to Friday from 9:00 to 18:00. [1]" in text
    assert "[1] Hours" in text

    monkeypatch.setattr("sys.stdin", stdio.StringIO("When is the shop open?\nAnd on Monday?\n\n"))
    out = stdio.StringIO()
    call_command("chat", "--tenant", "alpha", "--bot", str(alpha.bot.pk), stdout=out)
    assert out.getvalue().count("bot> ") == 2
    chats = alpha.client().get("/v1/chat").json()
    assert chats[0]["message_count"] == 4  # both questions went into one conversation


def test_the_chat_command_errors_are_one_line_and_a_failed_answer_is_an_error(
    alpha: TenantWorld, beta: TenantWorld, model_spy: ModelSpy, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io as stdio

    from django.core.management import call_command
    from django.core.management.base import CommandError

    def chat(*args: str) -> tuple[str, str]:
        out, err = stdio.StringIO(), stdio.StringIO()
        call_command("chat", "--tenant", "alpha", *args, stdout=out, stderr=err)
        return out.getvalue(), err.getvalue()

    bot = str(alpha.bot.pk)
    for args, message in [
        (("--bot", bot, "--message", "  "), "--message: The message is empty."),
        (("--bot", bot, "--message", "x" * 32_001), "--message: The message is longer than 32000 characters."),
        (("--bot", str(beta.bot.pk), "--message", "Hi"), "Bot profile not found."),
        (("--bot", bot, "--user", "ghost@alpha.example", "--message", "Hi"), "No such active user in this tenant."),
    ]:
        with pytest.raises(CommandError) as raised:
            chat(*args)
        assert str(raised.value) == message

    # Interactive: a question the API would refuse is reported and the session goes on.
    monkeypatch.setattr("sys.stdin", stdio.StringIO("x" * 32_001 + "\nWhen is the shop open?\n\n"))
    out, err = chat("--bot", bot)
    assert "longer than 32000 characters" in err and out.count("bot> ") == 1

    add_knowledge(alpha, "Hours", "The shop is open Monday to Friday from 9:00 to 18:00.")
    use_model(alpha, "gpt-4o-mini")
    model_spy.mock(mock_response="litellm.RateLimitError")
    with pytest.raises(CommandError, match=r"^The answer failed: .*unavailable"):
        chat("--bot", bot, "--message", "When is the shop open?")
