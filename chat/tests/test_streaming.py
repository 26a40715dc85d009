"""Server-sent events of a turn: exact framing and order (parsed from the raw bytes), refusals,
failures before and during generation, and a client that disconnects mid-answer."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import litellm
import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.core.asgi import get_asgi_application
from django.db import connections
from litellm.llms.custom_llm import CustomLLM
from litellm.utils import custom_llm_setup

from chat.models import Message, UsageEvent
from chat.tests.conftest import ModelSpy, add_knowledge, chat_turn_scope, use_model
from conftest import TenantWorld, build_world
from tenants.tenancy import tenant_scope

pytestmark = pytest.mark.django_db

# The whole body must be a sequence of exactly this: no other lines, no multi-line data.
EVENT = re.compile(r"event: (?P<name>[a-z]+)\ndata: (?P<data>[^\n]*)\n\n")
HEARTBEAT = ": keep-alive\n\n"


def parse_stream(raw: bytes) -> list[tuple[str, dict]]:
    text = raw.decode("utf-8").replace(HEARTBEAT, "")
    events, position = [], 0
    for match in EVENT.finditer(text):
        assert match.start() == position, f"unexpected bytes before an event: {text[position : match.start()]!r}"
        events.append((match["name"], json.loads(match["data"])))
        position = match.end()
    assert position == len(text), f"trailing bytes: {text[position:]!r}"
    return events


def stream_turn(world: TenantWorld, message: str, **body: Any) -> tuple[Any, list[tuple[str, dict]]]:
    response = world.client().post(
        "/v1/chat",
        {"bot_profile_id": str(world.bot.pk), "message": message, "stream": True, **body},
        format="json",
        HTTP_ACCEPT="text/event-stream",
    )
    assert response.status_code == 200, response.content
    return response, parse_stream(async_to_sync(_read_all)(response))


async def _read_all(response: Any) -> bytes:
    # An async stream, read as the ASGI server would; its database work runs in this thread, inside
    # the test's transaction (thread-sensitive sync_to_async).
    return b"".join([chunk async for chunk in response.streaming_content])


@pytest.fixture
def shipping(alpha: TenantWorld) -> None:
    add_knowledge(alpha, "Shipping", "Orders ship within two working days. Shipping is free for orders over 50 euros.")


def test_a_streamed_turn_is_sources_then_deltas_then_done(alpha: TenantWorld, shipping: None) -> None:
    response, events = stream_turn(alpha, "How long does shipping take?")
    assert response["Content-Type"].startswith("text/event-stream")
    assert response["Cache-Control"] == "no-cache" and response["X-Accel-Buffering"] == "no"
    names = [name for name, _ in events]
    assert names[0] == "sources" and names[-1] == "done"
    assert set(names[1:-1]) == {"delta"} and len(names) > 4  # word by word
    sources = events[0][1]["sources"]
    assert sources[0]["source_name"] == "Shipping"
    answer = "".join(data["content"] for name, data in events if name == "delta")
    done = events[-1][1]
    assert set(done) == {"chat_id", "message_id", "usage"}
    assert set(done["usage"]) == {"model", "prompt_tokens", "completion_tokens", "total_tokens"}
    with tenant_scope(alpha.tenant):
        stored = Message.objects.get(pk=done["message_id"])  # stored before `done` was sent
    assert stored.content == answer and "two working days" in answer and "[1]" in answer
    assert stored.outcome == "answered" and str(stored.chat_id) == done["chat_id"]


def test_a_streamed_refusal_is_one_delta(alpha: TenantWorld, shipping: None, model_spy: ModelSpy) -> None:
    _response, events = stream_turn(alpha, "What is the boiling point of mercury?")
    assert [name for name, _ in events] == ["sources", "delta", "done"]
    assert events[0][1] == {"sources": []}
    assert events[1][1] == {"content": alpha.bot.refusal_message}
    assert model_spy.calls == []


def test_a_provider_failure_before_any_text_is_an_error_event(
    alpha: TenantWorld, shipping: None, model_spy: ModelSpy
) -> None:
    use_model(alpha, "gpt-4o-mini")
    model_spy.mock(mock_response="litellm.RateLimitError")
    _response, events = stream_turn(alpha, "How long does shipping take?")
    assert [name for name, _ in events] == ["sources", "error"]
    assert "unavailable" in events[1][1]["detail"]
    with tenant_scope(alpha.tenant):
        assert Message.objects.filter(content="How long does shipping take?", role="user").exists()


class FailsAfterThreeWords(CustomLLM):
    """A provider that starts answering, then breaks (what a dropped connection looks like)."""

    def astreaming(self, *args: Any, **kwargs: Any) -> Any:
        async def words() -> Any:
            for word in ("Orders ", "ship ", "within "):
                yield {"text": word, "is_finished": False, "finish_reason": "", "usage": None, "index": 0}
            raise litellm.APIConnectionError("connection reset by peer", llm_provider="flaky", model="flaky/model")

        return words()


@pytest.fixture
def flaky_provider() -> Any:
    entry = {"provider": "flaky", "custom_handler": FailsAfterThreeWords()}
    litellm.custom_provider_map.append(entry)
    custom_llm_setup()
    yield "flaky/model"
    litellm.custom_provider_map.remove(entry)


def test_a_failure_mid_answer_keeps_what_was_said(alpha: TenantWorld, shipping: None, flaky_provider: str) -> None:
    use_model(alpha, flaky_provider)
    _response, events = stream_turn(alpha, "How long does shipping take?")
    assert [name for name, _ in events] == ["sources", "delta", "delta", "delta", "error"]
    assert "unavailable" in events[-1][1]["detail"]
    with tenant_scope(alpha.tenant):
        assistant = Message.objects.get(role="assistant", chat__messages__content="How long does shipping take?")
        assert (assistant.outcome, assistant.content) == ("partial", "Orders ship within ")
        assert UsageEvent.objects.filter(chat=assistant.chat, outcome="error").exists()


def test_a_mocked_provider_streams_and_reports_usage(alpha: TenantWorld, shipping: None, model_spy: ModelSpy) -> None:
    use_model(alpha, "gpt-4o-mini")
    model_spy.mock(mock_response="Orders ship within two working days [1].")
    _response, events = stream_turn(alpha, "How long does shipping take?")
    assert "".join(d["content"] for n, d in events if n == "delta") == "Orders ship within two working days [1]."
    usage = events[-1][1]["usage"]
    assert usage["model"] == "gpt-4o-mini" and usage["completion_tokens"] > 0 and usage["prompt_tokens"] > 0
    assert model_spy.calls[0]["stream"] is True


# --- A client that leaves mid-answer ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_client_disconnect_stores_the_answer_so_far(model_spy: ModelSpy) -> None:
    world = build_world("gamma")
    add_knowledge(world, "Shipping", "Orders ship within two working days. Shipping is free over 50 euros.")
    use_model(world, "gpt-4o-mini")
    long_answer = " ".join(f"word{n}" for n in range(200))
    model_spy.mock(mock_response=long_answer, chunk_delay=0.01)  # ≈ 5 s for the whole answer
    application = get_asgi_application()
    body = json.dumps({"bot_profile_id": str(world.bot.pk), "message": "How long does shipping take?", "stream": True})

    async def scenario() -> list[str]:
        received: list[str] = []
        deltas_seen = asyncio.Event()
        disconnect = asyncio.Event()
        messages = [{"type": "http.request", "body": body.encode(), "more_body": False}]

        async def receive() -> dict:
            if messages:
                return messages.pop(0)
            await disconnect.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.body" and message.get("body"):
                chunk = message["body"].decode()
                received.append(chunk)
                if chunk.count("event: delta") and sum(c.count("event: delta") for c in received) >= 5:
                    deltas_seen.set()

        scope = chat_turn_scope(world, body)
        request = asyncio.create_task(application(scope, receive, send))
        await asyncio.wait_for(deltas_seen.wait(), 30)
        disconnect.set()  # the visitor closes the tab
        await asyncio.wait_for(request, 30)
        await sync_to_async(connections.close_all)()
        return received

    received = asyncio.run(scenario())
    said = "".join(
        json.loads(data)["content"]
        for name, data in re.findall(r"event: (\w+)\ndata: ([^\n]*)", "".join(received))
        if name == "delta"
    )
    assert said and len(said) < len(long_answer)
    with tenant_scope(world.tenant):
        stored = Message.objects.get(role="assistant", chat__messages__content="How long does shipping take?")
    assert stored.outcome == "partial"
    assert long_answer.startswith(stored.content) and len(stored.content) >= len(said)
