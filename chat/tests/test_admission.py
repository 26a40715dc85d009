"""The admission gate of chat turns (chat/admission.py): first come, first served; a full line
refused at the door with 503 and Retry-After (JSON, also for streamed requests); a waiting turn
whose client leaves is gone from the line; a chat a person handles passes without a slot; and
every turn gives its slot back, however it ended."""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.core.signals import request_finished
from django.db import close_old_connections, connections
from django.test import override_settings

from chat import admission
from chat.admission import TurnGate, TurnsBusy
from chat.models import Chat, Message
from chat.tests.conftest import add_knowledge, chat_turn_scope
from conftest import TenantWorld, build_world
from minirag.asgi_handler import OneThreadASGIHandler
from tenants.tenancy import tenant_scope


@pytest.fixture(autouse=True)
def _fresh_gate() -> Iterator[None]:
    """Each test gets the gate its settings describe, and leaves none behind."""
    admission._gate = None
    yield
    admission._gate = None


# --- The gate itself -------------------------------------------------------------------------------


def test_slots_go_to_waiting_turns_in_arrival_order_whatever_order_they_start_waiting() -> None:
    gate = TurnGate(slots=1, queue_limit=10)
    first = gate.enter()
    assert first.holding
    waiting = [gate.enter() for _ in range(6)]
    assert gate.snapshot()["waiting"] == 6
    served: list[int] = []

    async def scenario() -> None:
        async def turn(ticket: admission.Ticket) -> None:
            await ticket.wait()
            served.append(ticket.number)
            await asyncio.sleep(0.01)
            ticket.release()

        shuffled = random.Random(7).sample(waiting, len(waiting))  # a fixed shuffle
        tasks = [asyncio.create_task(turn(ticket)) for ticket in shuffled]
        await asyncio.sleep(0.01)
        first.release()
        await asyncio.gather(*tasks)

    asyncio.run(scenario())
    assert served == [ticket.number for ticket in waiting]
    assert gate.snapshot() | {"service_seconds": 0} == {
        "slots": 1,
        "holding": 0,
        "waiting": 0,
        "service_seconds": 0,
    }


def test_the_line_follows_the_arrival_stamps_not_the_order_turns_reach_the_door() -> None:
    gate = TurnGate(slots=1, queue_limit=10)
    holder = gate.enter()
    scope_early: dict[str, Any] = {"type": "http"}
    scope_late: dict[str, Any] = {"type": "http"}
    admission.stamp_arrival(None, scope=scope_early)
    admission.stamp_arrival(None, scope=scope_late)
    admission.stamp_arrival(None)  # a request without a scope (WSGI) gets no number: harmless

    class Request:
        def __init__(self, scope: dict[str, Any]) -> None:
            self.scope = scope

    late = gate.enter(admission.arrival_number(Request(scope_late)))  # its middleware was quicker
    early = gate.enter(admission.arrival_number(Request(scope_early)))
    assert admission.arrival_number(object()) is None
    holder.release()
    assert early.holding and not late.holding
    early.release()
    assert late.holding
    late.release()


def test_turns_waiting_on_their_own_loops_in_other_threads_are_served_in_order() -> None:
    """The view's threads and the server's loop meet at the gate: waiters on different loops, a
    release from yet another thread."""
    gate = TurnGate(slots=2, queue_limit=50)
    holders = [gate.enter(), gate.enter()]
    tickets = [gate.enter() for _ in range(12)]
    granted: list[int] = []
    grant = gate._grant

    def recording_grant(ticket: admission.Ticket) -> bool:  # called under the gate's lock
        granted.append(ticket.number)
        return grant(ticket)

    gate._grant = recording_grant  # type: ignore[method-assign]

    def worker(ticket: admission.Ticket) -> None:
        asyncio.run(ticket.wait())
        time.sleep(random.random() / 100)  # some work, of varying length
        ticket.release()

    threads = [threading.Thread(target=worker, args=(ticket,)) for ticket in reversed(tickets)]
    for thread in threads:
        thread.start()
    for holder in holders:
        holder.release()
    for thread in threads:
        thread.join(10)
    assert not any(thread.is_alive() for thread in threads)
    assert granted == [ticket.number for ticket in tickets]
    assert gate.snapshot()["holding"] == 0 and gate.snapshot()["waiting"] == 0


def test_a_full_line_is_refused_with_a_wait_estimated_from_its_length_and_the_service_time() -> None:
    gate = TurnGate(slots=2, queue_limit=3)
    held = [gate.enter(), gate.enter()]
    line = [gate.enter() for _ in range(3)]
    with pytest.raises(TurnsBusy) as refused:
        gate.enter()
    assert refused.value.status_code == 503 and refused.value.wait >= 1
    assert "try again in" in str(refused.value.detail)
    # Turns that held a slot for 3 s each: four turns ahead (three waiting, this one), two at a time.
    gate._service = 3.0
    with pytest.raises(TurnsBusy) as refused:
        gate.enter()
    assert refused.value.wait == 6
    for ticket in (*held, *line):
        ticket.release()
    assert gate.snapshot()["holding"] == 0


def test_no_line_at_all_refuses_whenever_every_slot_is_taken() -> None:
    gate = TurnGate(slots=1, queue_limit=0)
    held = gate.enter()
    with pytest.raises(TurnsBusy):
        gate.enter()
    held.release()
    gate.enter().release()


def test_a_waiter_whose_client_left_leaves_the_line_and_the_slot_goes_to_the_next() -> None:
    gate = TurnGate(slots=1, queue_limit=10)
    held = gate.enter()
    leaving, staying = gate.enter(), gate.enter()

    async def scenario() -> bool:
        left = asyncio.create_task(leaving.wait())
        stays = asyncio.create_task(staying.wait())
        await asyncio.sleep(0.01)
        left.cancel()  # the request's task is cancelled when its client disconnects
        with pytest.raises(asyncio.CancelledError):
            await left
        assert gate.snapshot()["waiting"] == 1
        held.release()
        await asyncio.wait_for(stays, 2)
        return staying.holding

    assert asyncio.run(scenario())
    staying.release()
    assert gate.snapshot()["holding"] == 0 and gate.snapshot()["waiting"] == 0


def test_a_slot_granted_to_a_waiter_cancelled_at_that_moment_passes_on() -> None:
    gate = TurnGate(slots=1, queue_limit=10)
    held = gate.enter()
    unlucky, next_in_line = gate.enter(), gate.enter()

    async def scenario() -> None:
        waiting = asyncio.create_task(unlucky.wait())
        other = asyncio.create_task(next_in_line.wait())
        await asyncio.sleep(0.01)
        held.release()  # the slot is unlucky's: its future is resolved on the loop's next turn...
        waiting.cancel()  # ...but its client left first
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await asyncio.wait_for(other, 2)

    asyncio.run(scenario())
    assert next_in_line.holding and not unlucky.holding
    next_in_line.release()
    next_in_line.release()  # releasing twice is harmless
    assert gate.snapshot()["holding"] == 0


def test_a_turn_waiting_for_io_steps_aside_and_comes_back_before_later_arrivals() -> None:
    gate = TurnGate(slots=1, queue_limit=10)
    early = gate.enter()
    late = gate.enter()
    order: list[str] = []

    async def scenario() -> None:
        async def late_turn() -> None:
            await late.wait()
            order.append("late")
            await asyncio.sleep(0.05)
            late.release()

        task = asyncio.create_task(late_turn())
        async with early.paused():  # a follow-up rewritten by a model on the network, say
            await asyncio.sleep(0.01)
            assert late.holding  # the slot did not idle meanwhile
        order.append("early back")
        early.release()
        await task

    asyncio.run(scenario())
    assert order == ["late", "early back"]
    assert gate.snapshot()["holding"] == 0


def test_a_turn_back_from_io_goes_ahead_of_turns_that_arrived_after_it() -> None:
    gate = TurnGate(slots=1, queue_limit=10)
    early = gate.enter()
    asyncio.run(asyncio.wait_for(_paused_head_of_line(gate, early), 5))


async def _paused_head_of_line(gate: TurnGate, early: admission.Ticket) -> None:
    holder: dict[str, admission.Ticket] = {}

    async def io_then_back() -> None:
        async with early.paused():
            holder["later"] = gate.enter()  # arrives while the early turn waits for I/O
            holder["rival"] = gate.enter()
            await asyncio.sleep(0.01)

    back = asyncio.create_task(io_then_back())
    await asyncio.sleep(0.05)
    later, rival = holder["later"], holder["rival"]
    assert later.holding and not back.done()  # `early` waits behind the turn holding the slot
    later.release()
    await asyncio.wait_for(back, 2)
    assert early.holding and not rival.holding  # back before `rival`, which arrived after it
    early.release()
    await asyncio.wait_for(rival.wait(), 2)
    rival.release()
    assert gate.snapshot()["holding"] == 0


@override_settings(TURN_SLOTS=0)
def test_zero_slots_turn_the_gate_off() -> None:
    assert admission.turn_gate() is None


# --- Through the API --------------------------------------------------------------------------------


def _turn(world: TenantWorld, *, stream: bool, **body: Any) -> Any:
    headers = {"HTTP_ACCEPT": "text/event-stream"} if stream else {}
    return world.client("bot", HTTP_X_MINIRAG_VISITOR="visitor-1").post(
        "/v1/chat",
        {"bot_profile_id": str(world.bot.pk), "message": "How long do refunds take?", "stream": stream, **body},
        format="json",
        **headers,
    )


def _messages(world: TenantWorld) -> int:
    with tenant_scope(world.tenant):
        return Message.objects.count()


@pytest.mark.django_db
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@override_settings(TURN_SLOTS=1, TURN_QUEUE_LIMIT=0)
def test_over_the_limit_a_turn_is_refused_at_the_door_with_503_and_retry_after(
    alpha: TenantWorld, stream: bool
) -> None:
    gate = admission.turn_gate()
    assert gate is not None
    held = gate.enter()  # every slot taken, no line allowed
    before = _messages(alpha)
    try:
        response = _turn(alpha, stream=stream)
    finally:
        held.release()
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"  # not an event stream: none started
    assert int(response["Retry-After"]) >= 1
    assert "try again" in response.json()["detail"]
    assert _messages(alpha) == before  # refused before anything was stored
    assert gate.snapshot()["holding"] == 0 and gate.snapshot()["waiting"] == 0


@pytest.mark.django_db
@override_settings(TURN_SLOTS=1, TURN_QUEUE_LIMIT=0)
def test_a_message_to_a_chat_a_person_handles_passes_without_a_slot(alpha: TenantWorld) -> None:
    first = _turn(alpha, stream=False)
    assert first.status_code == 200, first.content
    chat_id = first.json()["chat_id"]
    with tenant_scope(alpha.tenant):
        Chat.objects.filter(pk=chat_id).update(handling=Chat.Handling.HUMAN)
    gate = admission.turn_gate()
    assert gate is not None
    held = gate.enter()
    try:
        for stream in (False, True):
            response = _turn(alpha, stream=stream, chat_id=chat_id)
            assert response.status_code == (200 if stream else 202), response.content
        refused = _turn(alpha, stream=False)  # a new chat still needs a slot
        assert refused.status_code == 503
    finally:
        held.release()
    assert gate.snapshot()["holding"] == 0


@pytest.mark.django_db
@override_settings(TURN_SLOTS=1, TURN_QUEUE_LIMIT=5)
def test_every_turn_gives_its_slot_back_however_it_ends(alpha: TenantWorld) -> None:
    add_knowledge(alpha, "Refunds", "Refunds take five working days from the day the parcel arrives.")
    gate = admission.turn_gate()
    assert gate is not None
    answered = _turn(alpha, stream=False)
    assert answered.status_code == 200, answered.content
    assert gate.snapshot()["holding"] == 0
    streamed = _turn(alpha, stream=True)
    assert streamed.status_code == 200
    b"".join(async_to_sync(_read_all)(streamed))
    assert gate.snapshot()["holding"] == 0
    unread = _turn(alpha, stream=True)  # a stream that never ran: released when it is closed
    assert gate.snapshot()["holding"] == 1
    # (As the test client does around its own closing: the test's transaction keeps its connection.)
    request_finished.disconnect(close_old_connections)
    try:
        unread.close()
    finally:
        request_finished.connect(close_old_connections)
    assert gate.snapshot()["holding"] == 0
    missing = alpha.client("bot").post(
        "/v1/chat",
        {"bot_profile_id": "00000000-0000-0000-0000-000000000000", "message": "Hello?"},
        format="json",
    )
    assert missing.status_code == 404
    invalid = _turn(alpha, stream=False, message="")
    assert invalid.status_code == 422
    assert gate.snapshot() | {"service_seconds": 0} == {
        "slots": 1,
        "holding": 0,
        "waiting": 0,
        "service_seconds": 0,
    }


async def _read_all(response: Any) -> list[bytes]:
    return [chunk async for chunk in response.streaming_content]


@pytest.mark.django_db
@override_settings(TURN_SLOTS=1, TURN_QUEUE_LIMIT=5)
def test_reading_chats_never_waits_at_the_gate(alpha: TenantWorld) -> None:
    gate = admission.turn_gate()
    assert gate is not None
    held = gate.enter()
    try:
        assert alpha.client().get("/v1/chat").status_code == 200
    finally:
        held.release()


# --- Through the ASGI application: arrival order, and a client that leaves -------------------------


class Request:
    """One request to the ASGI application, whose client can disconnect."""

    def __init__(self, application: Any, world: TenantWorld, message: str) -> None:
        self.body = json.dumps({"bot_profile_id": str(world.bot.pk), "message": message, "stream": True}).encode()
        self.status: int | None = None
        self.received = b""
        self.finished = asyncio.Event()
        self.leave = asyncio.Event()
        self._sent_body = False
        scope = chat_turn_scope(world, self.body, streamed=True)
        self.task = asyncio.create_task(application(scope, self.receive, self.send))

    async def receive(self) -> dict[str, Any]:
        if not self._sent_body:
            self._sent_body = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self.leave.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self.received += message.get("body", b"")
            if not message.get("more_body"):
                self.finished.set()


async def _until(condition: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


@pytest.mark.django_db(transaction=True)
@override_settings(TURN_SLOTS=1, TURN_QUEUE_LIMIT=10)
def test_waiting_turns_start_in_arrival_order_and_one_whose_client_left_is_gone() -> None:
    world = build_world("gamma")
    gate = admission.turn_gate()
    assert gate is not None
    application = OneThreadASGIHandler()  # as served (minirag/asgi.py)
    started: list[str] = []

    async def scenario() -> None:
        held = gate.enter()  # a turn in progress: everyone else waits
        requests: dict[str, Request] = {}
        for count, name in enumerate(("first", "leaves", "second", "third"), start=1):
            requests[name] = Request(application, world, f"Question from {name}?")
            await _until(lambda count=count: gate.snapshot()["waiting"] == count)

        async def note_start(name: str) -> None:
            await _until(lambda: requests[name].status is not None, 30)
            started.append(name)

        watchers = [asyncio.create_task(note_start(name)) for name in ("third", "second", "first")]
        requests["leaves"].leave.set()  # that visitor closes the tab while waiting
        await asyncio.wait_for(requests["leaves"].task, 10)
        assert gate.snapshot()["waiting"] == 3
        held.release()
        await asyncio.wait_for(asyncio.gather(*watchers), 60)
        for name in ("first", "second", "third"):
            await asyncio.wait_for(requests[name].finished.wait(), 60)
            requests[name].leave.set()
            await asyncio.wait_for(requests[name].task, 10)
        await sync_to_async(connections.close_all)()

    asyncio.run(scenario())
    assert started == ["first", "second", "third"]
    with tenant_scope(world.tenant):
        assert not Message.objects.filter(content="Question from leaves?").exists()  # nothing was stored
        assert Message.objects.filter(content="Question from third?", role="user").exists()
    assert gate.snapshot()["holding"] == 0 and gate.snapshot()["waiting"] == 0


@pytest.mark.django_db(transaction=True)
def test_the_door_s_lookup_gives_its_connection_back_before_the_turn_waits() -> None:
    """When every slot is taken, the door asks whether a person handles the chat (such a turn needs
    no slot); the turn may then wait for a long time, so that lookup must not keep a pooled
    connection: under a burst with reads (bench/load.py, 32 users) waiting turns held the whole
    pool and every request failed with 503."""
    from chat.views import _handled_by_person

    world = build_world("door")
    with tenant_scope(world.tenant):
        chat = Chat.objects.create(tenant=world.tenant, bot_profile=world.bot, handling=Chat.Handling.HUMAN)
    connections["default"].close()
    assert async_to_sync(_handled_by_person)(chat.pk) is True
    assert connections["default"].connection is None  # given back, in the thread that took it
