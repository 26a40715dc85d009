"""Admission control for chat turns: a first-come-first-served gate around their CPU-bound phase.

Why. A turn's CPU-bound phase — storing the question (`prepare_turn`), the search plan, embedding
the question with the offline model, the vector search, the prompt — used to run for every turn
at once. Under a burst of 200 chats that is processor sharing: 200 threads take turns on the same
cores (and on SQLite's write lock), each turn finishes its phase only when nearly all of them
have, so the first visitor waits as long as the last, and a plain `GET /v1/sources` waits behind
all of them too. With the gate, at most `MINIRAG_TURN_SLOTS` turns (default: the cores this
process may use) are in that phase at once and the others wait, in arrival order, costing no CPU.
A turn leaves the gate once its prompt is built: the model call (I/O: seconds of waiting for a
provider) runs outside it, for every admitted turn at once. So turns progress in arrival order,
the answer of an early visitor starts early, and reads compete with a few turns, not hundreds.

The door. A turn takes its place (`TurnGate.enter`) as its request reaches the view
(chat/views.py `AdmissionDoor`; the served handler, minirag/asgi_handler.py, passes it before the
middleware, Django's own handlers inside it), on the event loop, before the synchronous view runs —
so before authentication, parsing and storing the question, which are CPU work too and, left ungated, are
what 200 simultaneous requests share the cores on. Its place in line is the number its request
got on reaching the application (`stamp_arrival`, before the middleware, whose thread hops would
reorder requests that arrive within a few milliseconds of each other). When
`MINIRAG_TURN_QUEUE_LIMIT` turns already wait, it is refused at once with 503 and a `Retry-After`
estimated from the line's length and the time a turn recently held a slot (`TurnsBusy`) — never
queued forever. The refusal is an ordinary JSON answer, also for `stream: true` (no stream has
started). A message to a chat a person handles needs no slot (no model answers it; see the view).

Threads and loops. The gate's state is guarded by a `threading.Lock`: the door and the release
are thread-safe (a turn releases its slot from the event loop, a closed response from a worker
thread). Waiting is asynchronous: `Ticket.wait()` awaits a future on the waiter's own loop,
resolved with `call_soon_threadsafe` by whichever thread hands the slot over, so it is loop-safe,
even for the private loops `async_to_sync` makes in tests. A waiting turn costs no CPU and holds
no database connection; when its client disconnects, Django cancels the request's task, the wait
is cancelled, and the turn leaves the line (nothing was stored).

A slot is handed from the turn releasing it straight to the waiting turn that arrived first: a
newcomer never overtakes the line. A turn that must wait for I/O while admitted (a model that
rewrites a follow-up, an external search service, an embedding model on the network) steps
aside with `Ticket.paused()` and comes back with its original number, ahead of later arrivals.

The CPU work that runs off the event loop (embedding and search) runs on `turn_executor()`, a
dedicated pool of as many threads as slots: it never takes the event loop's default executor,
which other requests' short hops (asyncio.to_thread) need.

`MINIRAG_TURN_SLOTS=0` turns the gate off (every turn proceeds at once, none is refused).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from enum import Enum
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from rest_framework import status
from rest_framework.exceptions import APIException

P = ParamSpec("P")
R = TypeVar("R")

# The time a turn holds a slot, before any was measured (a first turn on a warm process, here).
INITIAL_SERVICE_SECONDS = 0.05
# Weight of the newest hold time in the running average that Retry-After is estimated from.
SERVICE_SMOOTHING = 0.2
MAX_RETRY_AFTER_SECONDS = 120


def default_turn_slots() -> int:
    """The default of MINIRAG_TURN_SLOTS: the cores this process may use (CPU pinning and
    container cpusets honoured, as sched_getaffinity reports them)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class TurnsBusy(APIException):
    """503: the line of waiting turns is full. DRF's handler adds `Retry-After` from `wait`."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "busy"

    def __init__(self, wait_seconds: int) -> None:
        unit = "second" if wait_seconds == 1 else "seconds"
        super().__init__(
            f"The assistant is answering many questions right now; please try again in {wait_seconds} {unit}."
        )
        self.wait = wait_seconds


class _State(Enum):
    QUEUED = "queued"  # in the line, waiting for a slot
    HOLDING = "holding"  # holds a slot
    PAUSED = "paused"  # admitted, stepped aside for I/O (holds nothing, is in no line)
    DONE = "done"  # released for good (or left the line)


class Ticket:
    """One turn's place at the gate: its arrival number, and whether it waits or holds a slot.
    `release()` is idempotent and may be called from any thread."""

    # A streamed answer's response keeps its ticket for as long as it streams: slots instead of
    # a __dict__ make it a tenth of the size (a thousand open streams hold a thousand tickets).
    __slots__ = ("_held", "_held_since", "_state", "_waiter", "gate", "number")

    def __init__(self, gate: TurnGate, number: int) -> None:
        self.gate = gate
        self.number = number  # arrival order: a lower number is served first
        self._state = _State.QUEUED
        self._waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None
        self._held_since = 0.0
        self._held = 0.0  # seconds in a slot so far (pauses excluded)

    def __lt__(self, other: Ticket) -> bool:  # the line is a heap of tickets
        return self.number < other.number

    @property
    def holding(self) -> bool:
        return self._state is _State.HOLDING

    async def wait(self) -> None:
        """Until this ticket holds a slot. Cancelled (the client left), it leaves the line — or, if
        the slot arrived at that very moment, passes it on."""
        gate = self.gate
        with gate._lock:
            if self._state is _State.HOLDING:
                return
            if self._state is not _State.QUEUED:
                raise RuntimeError(f"a {self._state.value} ticket cannot wait")
            loop = asyncio.get_running_loop()
            future: asyncio.Future[None] = loop.create_future()
            self._waiter = (loop, future)
        try:
            await future
        except asyncio.CancelledError:
            self.release()
            raise

    def release(self) -> None:
        """Give the slot to the first turn in line (or leave the line, or do nothing if done)."""
        self.gate._release(self)

    @contextlib.asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        """Step aside while waiting for I/O, then take a slot again before later arrivals."""
        if not self.gate._pause(self):
            yield  # not holding a slot (it was released): nothing to give back or take again
            return
        try:
            yield
        except BaseException:
            self.release()  # failed or cancelled (the client left) meanwhile: no slot to take again
            raise
        self.gate._resume(self)
        await self.wait()


# Arrival numbers: the order of the line. One counter for the stamp below and for the door.
_arrivals = itertools.count()
ARRIVAL_KEY = "minirag.arrival"


def stamp_arrival(sender: Any, scope: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """`request_started` receiver: number each request as it reaches the application, before the
    middleware (whose thread hops reorder simultaneous requests by a few milliseconds), so that
    the door serves turns in the order they arrived. Django sends the signal once the body is read,
    with the ASGI `scope` (a WSGI request has none: the door numbers it then)."""
    if scope is not None:
        scope[ARRIVAL_KEY] = next(_arrivals)


def arrival_number(request: Any) -> int | None:
    """The number `stamp_arrival` gave this request, if any."""
    scope = getattr(request, "scope", None)
    return scope.get(ARRIVAL_KEY) if isinstance(scope, dict) else None


class TurnGate:
    """At most `slots` turns in their CPU-bound phase at once; the others wait in arrival order,
    at most `queue_limit` of them (see the module docstring)."""

    def __init__(self, *, slots: int, queue_limit: int) -> None:
        if slots < 1:
            raise ValueError("a gate needs at least one slot")
        self.slots = slots
        self.queue_limit = max(0, queue_limit)
        self._lock = threading.Lock()
        self._free = slots
        self._line: list[Ticket] = []  # heap by number; left tickets are skipped when popped
        self._waiting = 0  # tickets in the line that still wait
        self._service = INITIAL_SERVICE_SECONDS  # recent time a turn holds a slot (running average)

    # --- what the view and the turn call ----------------------------------------------------------

    @property
    def busy(self) -> bool:
        """Whether a turn arriving now would have to wait (or be refused)."""
        with self._lock:
            return self._free == 0 or self._waiting > 0

    def enter(self, arrival: int | None = None) -> Ticket:
        """A place for a turn: holding a free slot at once, or in line by its `arrival` number
        (`arrival_number`; a new one, after every other, when None). Raises TurnsBusy (503) when
        `queue_limit` turns already wait."""
        with self._lock:
            ticket = Ticket(self, next(_arrivals) if arrival is None else arrival)
            if self._free > 0 and self._waiting == 0:
                self._free -= 1
                self._grant(ticket)
                return ticket
            if self._waiting >= self.queue_limit:
                raise TurnsBusy(self._retry_after())
            heapq.heappush(self._line, ticket)
            self._waiting += 1
            return ticket

    def snapshot(self) -> dict[str, float]:
        """What the gate holds now: for logs, tests and operators."""
        with self._lock:
            return {
                "slots": self.slots,
                "holding": self.slots - self._free,
                "waiting": self._waiting,
                "service_seconds": self._service,
            }

    # --- internals (all under self._lock) ---------------------------------------------------------

    def _retry_after(self) -> int:
        """Seconds until the line has moved by its own length: each turn ahead holds a slot for
        about the recent service time, `slots` at a time."""
        seconds = (self._waiting + 1) * self._service / self.slots
        return max(1, min(MAX_RETRY_AFTER_SECONDS, math.ceil(seconds)))

    def _grant(self, ticket: Ticket) -> bool:
        """Make `ticket` hold a slot and wake its waiter. False when its waiter's loop is gone (it
        can never resume): the caller passes the slot on."""
        ticket._state = _State.HOLDING
        ticket._held_since = time.monotonic()
        if ticket._waiter is None:
            return True  # it has not started waiting yet: wait() will find the slot
        loop, future = ticket._waiter
        ticket._waiter = None
        try:
            loop.call_soon_threadsafe(_resolve, future)
        except RuntimeError:  # its loop is closed
            ticket._state = _State.DONE
            return False
        return True

    def _hand_over(self) -> None:
        """A slot came free: to the first live ticket in line, or back to the pool."""
        while self._line:
            ticket = heapq.heappop(self._line)
            if ticket._state is not _State.QUEUED:
                continue  # it left the line earlier
            self._waiting -= 1
            if self._grant(ticket):
                return
        self._free += 1

    def _stop_holding(self, ticket: Ticket) -> None:
        ticket._held += time.monotonic() - ticket._held_since
        self._hand_over()

    def _release(self, ticket: Ticket) -> None:
        with self._lock:
            state, ticket._state = ticket._state, _State.DONE
            if state is _State.HOLDING:
                self._stop_holding(ticket)
            elif state is _State.QUEUED:
                self._waiting -= 1  # it stays in the heap, skipped when popped
                ticket._waiter = None
            if state is not _State.DONE and ticket._held:
                self._service += SERVICE_SMOOTHING * (ticket._held - self._service)

    def _pause(self, ticket: Ticket) -> bool:
        with self._lock:
            if ticket._state is not _State.HOLDING:
                return False
            ticket._state = _State.PAUSED
            self._stop_holding(ticket)
            return True

    def _resume(self, ticket: Ticket) -> None:
        """Back in line with its original number (or straight into a free slot): the queue limit
        does not apply, the turn was admitted already."""
        with self._lock:
            if ticket._state is not _State.PAUSED:
                return  # released meanwhile
            ticket._state = _State.QUEUED
            if self._free > 0 and self._waiting == 0:
                self._free -= 1
                self._grant(ticket)
                return
            heapq.heappush(self._line, ticket)
            self._waiting += 1


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
    # A future cancelled meanwhile: its waiter's CancelledError handler sees HOLDING and releases.


# --- The process's gate, from the settings ---------------------------------------------------------

_gate_lock = threading.Lock()
_gate: TurnGate | None = None
_executors: dict[int, ThreadPoolExecutor] = {}


def turn_gate() -> TurnGate | None:
    """The gate of this process (None when MINIRAG_TURN_SLOTS is 0: no admission control). Built
    from the settings on first use, and again if they change (tests)."""
    from django.conf import settings

    global _gate
    slots, limit = int(settings.TURN_SLOTS), int(settings.TURN_QUEUE_LIMIT)
    gate = _gate
    if gate is not None and gate.slots == slots and gate.queue_limit == max(0, limit):
        return gate
    if slots <= 0:
        return None
    with _gate_lock:
        if _gate is None or _gate.slots != slots or _gate.queue_limit != max(0, limit):
            _gate = TurnGate(slots=slots, queue_limit=limit)
        return _gate


def turn_executor() -> ThreadPoolExecutor:
    """Threads for the CPU-bound work of turns (embedding, search), one per slot (or per core when
    the gate is off): at most that many run at once, first submitted first."""
    from django.conf import settings

    workers = int(settings.TURN_SLOTS) if int(settings.TURN_SLOTS) > 0 else default_turn_slots()
    executor = _executors.get(workers)
    if executor is None:
        with _gate_lock:
            executor = _executors.get(workers)
            if executor is None:
                executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="minirag-turn")
                _executors[workers] = executor
    return executor


async def run_cpu_bound(function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """`function(*args, **kwargs)` on `turn_executor()`, off the event loop."""
    call: Any = sync_to_async(function, thread_sensitive=False, executor=turn_executor())
    return await call(*args, **kwargs)


@contextlib.asynccontextmanager
async def stepping_aside(ticket: Ticket | None) -> AsyncIterator[None]:
    """`ticket.paused()`, or nothing without a ticket (the gate is off, or the caller is not a turn)."""
    if ticket is None:
        yield
        return
    async with ticket.paused():
        yield
