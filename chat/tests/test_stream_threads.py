"""An open answer stream does not keep its request's thread alive (minirag/request_threads.py):
the thread Django's handler gave the request is retired once it has lived through a gap between two
events, the request's later synchronous work gets a thread of its own, and the answer is still
streamed and stored whole."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import AsyncGenerator
from typing import Any

import litellm
import pytest
from asgiref.sync import SyncToAsync, ThreadSensitiveContext, sync_to_async
from django.core.asgi import get_asgi_application
from django.db import connections
from litellm.llms.custom_llm import CustomLLM
from litellm.utils import custom_llm_setup

from chat import services
from chat.models import Message
from chat.tests.conftest import add_knowledge, chat_turn_scope, use_model
from conftest import build_world
from minirag.request_threads import (
    idle_request_threads,
    lent_request_thread,
    request_thread_executor,
    retire_request_thread,
    without_idle_request_thread,
)
from tenants.tenancy import tenant_scope


def _current_thread() -> threading.Thread:
    return threading.current_thread()


def test_the_thread_is_retired_after_a_gap_and_the_next_call_gets_a_new_one() -> None:
    async def scenario() -> dict[str, Any]:
        seen: dict[str, Any] = {}

        async def events() -> AsyncGenerator[str, None]:
            seen["view"] = await sync_to_async(_current_thread)()  # the request's first call: its thread
            yield "sources"
            seen["before first delta"] = await sync_to_async(_current_thread)()  # the same thread, kept
            yield "delta 1"
            await asyncio.sleep(0.05)  # the model writes: nothing for the thread to do
            yield "delta 2"
            seen["store"] = await sync_to_async(_current_thread)()
            yield "done"
            seen["executor at the end"] = request_thread_executor()

        async with ThreadSensitiveContext():  # as Django's ASGI handler does for every request
            out = [event async for event in without_idle_request_thread(events())]
        seen["events"] = out
        return seen

    seen = asyncio.run(scenario())
    assert seen["events"] == ["sources", "delta 1", "delta 2", "done"]
    assert seen["before first delta"] is seen["view"]  # not retired right after the view's call
    seen["view"].join(timeout=5)
    assert not seen["view"].is_alive(), "the view's thread sat through a gap: retired, and it exited"
    assert seen["store"] is not seen["view"] and seen["store"] is not threading.main_thread()
    # The thread that stored the answer right before `done` is the request's until it ends.
    assert seen["executor at the end"] is not None


def test_a_lent_thread_is_borrowed_at_the_first_call_and_goes_back_after_a_gap() -> None:
    """Under the served handler (minirag/asgi_handler.py) a request's thread is lent: borrowed at
    its first thread-sensitive call, given back to the kept threads when the stream retires it
    (the next request may then use it), and borrowed again to store the answer."""

    async def scenario() -> dict[str, Any]:
        seen: dict[str, Any] = {}

        async def events() -> AsyncGenerator[str, None]:
            seen["before any call"] = request_thread_executor()
            seen["view"] = await sync_to_async(_current_thread)()
            seen["lent"] = request_thread_executor()
            yield "sources"
            yield "delta 1"
            await asyncio.sleep(0.05)
            yield "delta 2"
            seen["kept mid-answer"] = seen["lent"] in idle_request_threads
            seen["store"] = await sync_to_async(_current_thread)()
            yield "done"

        async with lent_request_thread():
            seen["events"] = [event async for event in without_idle_request_thread(events())]
        async with lent_request_thread():
            seen["next request"] = await sync_to_async(_current_thread)()
        return seen

    seen = asyncio.run(scenario())
    assert seen["events"] == ["sources", "delta 1", "delta 2", "done"]
    assert seen["before any call"] is None and seen["lent"] is not None and seen["kept mid-answer"]
    # Kept, not stopped: the thread storing the answer is borrowed anew (the most recently given
    # back goes out first, so here the view's own), and the next request gets it again.
    assert seen["store"].is_alive() and seen["next request"] is seen["store"]


def test_nothing_is_retired_outside_a_thread_sensitive_context_or_when_the_caller_owns_the_executor() -> None:
    from concurrent.futures import ThreadPoolExecutor

    async def scenario() -> tuple[Any, Any, bool]:
        outside = request_thread_executor()
        owned = ThreadPoolExecutor(max_workers=1)
        try:
            async with ThreadSensitiveContext(executor=owned):
                await sync_to_async(_current_thread)()
                inside = request_thread_executor()
                retired = retire_request_thread(owned)
                # Still the caller's: a thread-sensitive call goes on using it.
                assert SyncToAsync.context_to_thread_executor.get(SyncToAsync.thread_sensitive_context.get()) is owned
                await sync_to_async(_current_thread)()
        finally:
            owned.shutdown()
        return outside, inside, retired

    outside, inside, retired = asyncio.run(scenario())
    assert outside is None and inside is None and retired is False


class PausesMidAnswer(CustomLLM):
    """A provider that writes three words, waits until `carry_on` is set, then writes three more:
    the stream is open and idle for as long as the test needs."""

    carry_on: asyncio.Event | None = None

    def astreaming(self, *args: Any, **kwargs: Any) -> Any:
        async def words() -> Any:
            for number, word in enumerate(("Orders ", "ship ", "within ", "two ", "working ", "days.")):
                if number == 3:
                    assert self.carry_on is not None
                    await self.carry_on.wait()
                last = number == 5
                yield {
                    "text": word,
                    "is_finished": last,
                    "finish_reason": "stop" if last else "",
                    "usage": None,
                    "index": 0,
                }

        return words()


@pytest.fixture
def pausing_provider() -> Any:
    handler = PausesMidAnswer()
    entry = {"provider": "pausing", "custom_handler": handler}
    litellm.custom_provider_map.append(entry)
    custom_llm_setup()
    yield handler
    litellm.custom_provider_map.remove(entry)


@pytest.mark.django_db(transaction=True)
def test_a_streamed_answer_through_the_asgi_handler_holds_no_idle_thread(
    pausing_provider: PausesMidAnswer, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = build_world("threadless")
    add_knowledge(world, "Shipping", "Orders ship within two working days. Shipping is free over 50 euros.")
    use_model(world, "pausing/model")
    view_threads: list[threading.Thread] = []
    real_prepare_turn = services.prepare_turn

    def prepare_turn(**kwargs: Any) -> Any:
        view_threads.append(threading.current_thread())  # the view runs in the request's thread
        return real_prepare_turn(**kwargs)

    monkeypatch.setattr(services, "prepare_turn", prepare_turn)
    application = get_asgi_application()
    body = json.dumps({"bot_profile_id": str(world.bot.pk), "message": "How long does shipping take?", "stream": True})

    async def scenario() -> tuple[list[str], bool]:
        pausing_provider.carry_on = asyncio.Event()
        received: list[str] = []
        paused = asyncio.Event()
        finished = asyncio.Event()
        messages = [{"type": "http.request", "body": body.encode(), "more_body": False}]

        async def receive() -> dict:
            if messages:
                return messages.pop(0)
            await finished.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.body":
                received.append(message.get("body", b"").decode())
                if sum(chunk.count("event: delta") for chunk in received) >= 3:
                    paused.set()
                if not message.get("more_body"):
                    finished.set()

        request = asyncio.create_task(application(chat_turn_scope(world, body, streamed=True), receive, send))
        await asyncio.wait_for(paused.wait(), 30)
        # Mid-answer, the model silent: the thread that ran the view has gone (it exits on its own,
        # at once; without the retirement it would live until the request ends).
        await asyncio.to_thread(view_threads[0].join, 5)
        alive_mid_answer = view_threads[0].is_alive()
        assert not finished.is_set()
        pausing_provider.carry_on.set()
        await asyncio.wait_for(request, 30)
        await sync_to_async(connections.close_all)()
        return received, alive_mid_answer

    received, alive_mid_answer = asyncio.run(scenario())
    assert len(view_threads) == 1
    assert not alive_mid_answer
    events = re.findall(r"event: (\w+)\ndata: ([^\n]*)", "".join(received))
    assert [name for name, _ in events][-1] == "done"
    said = "".join(json.loads(data)["content"] for name, data in events if name == "delta")
    assert said == "Orders ship within two working days."
    with tenant_scope(world.tenant):
        stored = Message.objects.get(pk=json.loads(events[-1][1])["message_id"])
    assert stored.outcome == "answered" and stored.content == said


def test_a_thread_still_busy_when_its_request_ends_is_not_kept() -> None:
    """A request cancelled while its call runs (its client left mid-view) leaves its thread busy:
    that thread is not kept, or the next request borrowing it would wait behind the call."""
    from minirag.request_threads import LentRequestThread

    release = threading.Event()
    lent = LentRequestThread()
    running = lent.submit(release.wait, 10)
    busy = lent.current
    lent.give_back()
    assert busy is not None and busy not in idle_request_threads
    release.set()
    assert running.result(timeout=5) is True
    idle = LentRequestThread()
    idle.submit(int).result(timeout=5)
    kept = idle.current
    idle.give_back()
    assert kept in idle_request_threads


@pytest.mark.django_db
def test_a_bot_without_a_named_connection_gets_its_endpoint_without_a_trip_to_a_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its endpoint is in its own row: worked out on the event loop (where a database read would
    raise SynchronousOnlyOperation). Only a named connection is read, on a thread."""
    from bots.services import bot_model_endpoint
    from chat import turns

    world = build_world("endpoints")
    use_model(world, "openai/gpt-4o-mini", api_base="https://llm.example/v1")
    assert world.bot.connection_id is None

    async def no_thread(*args: Any) -> None:
        raise AssertionError("the endpoint went to a thread")

    monkeypatch.setattr(turns, "_endpoint_through_connection", no_thread)
    endpoint = asyncio.run(turns._endpoint(world.bot, "openai/gpt-4o-mini"))
    assert endpoint == bot_model_endpoint(world.bot, "openai/gpt-4o-mini")
    assert endpoint.api_base == "https://llm.example/v1"
