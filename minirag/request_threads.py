"""A long response stream that does not keep its request's thread alive.

Django's ASGI handler runs each request inside asgiref's `ThreadSensitiveContext`: the first
thread-sensitive `sync_to_async` call of the request (the synchronous view, the ORM) creates a
one-thread executor for that request, and its thread lives until the request ends. For a streamed
answer that is the whole stream: a minute or more of an idle thread per open stream. With a
thousand streams open (bench/streams.py) those threads were about 110 KB per stream of the
server's memory (their stacks and their share of the allocator's arenas), never given back.

`without_idle_request_thread` wraps a response's async generator. At an event, when the request's
executor is the one that was already there at the previous event (it lived through a whole gap
between two events: the stream is waiting for something else, such as the model), it is retired.
One created right before an event is left alone: that is the call storing the answer before
`done`, and the request ends next and takes it along (starting yet another thread would be waste).
The request's next thread-sensitive call, if any, gets a new executor exactly as its first did, and
Django's handler shuts that one down when the request ends. So the synchronous work of a request
still runs one call at a time, each call on one thread; what changes is that work after a gap may
run on another thread than the view did, which holds nothing it needs: the retired thread closes
its database connections (gives them back to the pool) before it exits.

Only for async generators whose own thread-sensitive calls are awaited one at a time (no task of
the request keeps one running while the generator yields): that is what makes the executor idle
when an event comes out. The chat turn stream (chat/turns.py) is such a generator: the task that
reads the model's deltas beside it (`_with_heartbeats`) makes no thread-sensitive call.

Threads kept between requests (`lent_request_thread`, entered by the served handler,
minirag/asgi_handler.py, for every request): left to itself, Django's handler starts a thread for
each request and another one to join it when the request ends. Instead, the request's
`ThreadSensitiveContext` is given a `LentRequestThread`: it borrows an idle one-thread executor at
the request's first thread-sensitive call (a turn waiting at the admission gate holds none) and
gives it back when the request ends, or when an open stream retires it (then the next call
borrows again). Up to `IDLE_REQUEST_THREADS` idle ones are kept, as a WSGI server keeps its
threads. What a request leaves in a kept thread is nothing the next one sees: Django's per-request
state (database connections included) lives in the request's context variables, not the thread.

This reads asgiref's bookkeeping (`SyncToAsync.thread_sensitive_context` and
`context_to_thread_executor`, there since asgiref 3.3, unchanged in 3.13); should it move, nothing
is retired and streams keep their thread as before (chat/tests/test_stream_threads.py notices).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, MutableMapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import aclosing, asynccontextmanager
from typing import Any, TypeVar

from asgiref.sync import SyncToAsync, ThreadSensitiveContext
from django.db import connections

T = TypeVar("T")

# Idle request threads kept for the next requests: about as many as need one at once under load
# (bench/load.py's 32 users); more are started when needed and stopped when they come back to a
# full set. Each costs ≈ 100 KB while it waits.
IDLE_REQUEST_THREADS = 32


def _close_connections() -> None:
    """In the thread being retired: give its database connections back (thread-local in Django),
    except one inside a transaction (a test's, never a request's at this point)."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


class _IdleRequestThreads:
    """The kept one-thread executors. Lent and taken back on event loops' threads, possibly several
    (a test's server in a thread beside the test's own loop): only atomic list operations. The
    most recently used goes out first: its stack is still in memory."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._idle: list[ThreadPoolExecutor] = []

    def lend(self) -> ThreadPoolExecutor:
        try:
            return self._idle.pop()
        except IndexError:
            return ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")

    def take_back(self, executor: ThreadPoolExecutor) -> None:
        if len(self._idle) < self.keep:
            self._idle.append(executor)
        else:
            executor.shutdown(wait=False)  # never blocks the event loop: the thread exits on its own

    def __len__(self) -> int:
        return len(self._idle)

    def __contains__(self, executor: object) -> bool:
        return executor in self._idle


idle_request_threads = _IdleRequestThreads(IDLE_REQUEST_THREADS)


class LentRequestThread(Executor):
    """One request's thread-sensitive executor: a kept thread, borrowed at the first call and held
    until `give_back` (asgiref sends a request's calls one at a time)."""

    def __init__(self) -> None:
        self.current: ThreadPoolExecutor | None = None
        self._last: Future[Any] | None = None  # the thread's latest call: it runs them in order

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        if self.current is None:
            self.current = idle_request_threads.lend()
        future = self.current.submit(fn, *args, **kwargs)
        self._last = future
        return future

    def give_back(self) -> None:
        """The thread goes back to the kept ones, unless a call still runs on it: its request was
        cancelled while waiting for the call (its client left mid-view, or a live stream blocked in
        a read), and a thread cannot be cancelled. Such a thread is stopped once the call ends,
        instead of making the next request that borrows it wait behind the call."""
        executor, last = self.current, self._last
        self.current = self._last = None
        if executor is None:
            return
        if last is None or last.done():
            idle_request_threads.take_back(executor)
        else:
            executor.shutdown(wait=False)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.give_back()


@asynccontextmanager
async def lent_request_thread() -> AsyncIterator[None]:
    """What Django's handler does around a request (`async with ThreadSensitiveContext()`), with
    the request's thread lent instead of started (see the module docstring)."""
    lent = LentRequestThread()
    try:
        async with ThreadSensitiveContext(executor=lent):
            yield
    finally:
        lent.give_back()


def _request_context() -> tuple[Any, MutableMapping[Any, Executor]] | None:
    """The innermost `ThreadSensitiveContext` and asgiref's map of its executor, or None: outside
    such a context, when the context's caller gave it an executor of its own (not ours to retire;
    a `LentRequestThread` is), or if asgiref no longer keeps them there (then nothing is retired:
    streams keep their thread, as before)."""
    context = SyncToAsync.thread_sensitive_context.get(None)
    executors = getattr(SyncToAsync, "context_to_thread_executor", None)
    if context is None or executors is None:
        return None
    given = getattr(context, "_executor", None)
    if given is not None and not isinstance(given, LentRequestThread):
        return None
    return context, executors


def request_thread_executor() -> Executor | None:
    """The executor running this request's thread-sensitive calls now, if any: the thread a
    `LentRequestThread` holds, or the one asgiref created for the innermost `ThreadSensitiveContext`
    (Django's handler enters one per request). None before the request's first call, after a
    retirement, and in the cases `_request_context` excludes."""
    found = _request_context()
    executor = found[1].get(found[0]) if found else None
    return executor.current if isinstance(executor, LentRequestThread) else executor


def retire_request_thread(executor: Executor) -> bool:
    """Take `executor` (this request's idle thread) from the request, so that the request's next
    thread-sensitive call gets another: a lent thread goes back to the kept ones, one asgiref
    started is stopped. False when it is not (or no longer) the request's own: nothing done."""
    found = _request_context()
    if found is None or request_thread_executor() is not executor:
        return False
    context, executors = found
    executor.submit(_close_connections)  # runs first: an executor does its queued work in order
    request_executor = executors[context]
    if isinstance(request_executor, LentRequestThread):
        request_executor.give_back()
    else:
        del executors[context]
        executor.shutdown(wait=False)  # never blocks the event loop: the thread exits on its own
    return True


async def without_idle_request_thread(events: AsyncGenerator[T, None]) -> AsyncGenerator[T, None]:
    """`events`, unchanged; the request's thread retired once it has lived through a gap between
    two events (see the module docstring). Closing this generator closes `events`."""
    seen: Executor | None = None  # the request's executor at the previous event
    async with aclosing(events):
        async for event in events:
            current = request_thread_executor()
            if current is not None and current is seen:
                retire_request_thread(current)  # idle now: the stream's calls are all awaited
                current = None
            seen = current
            yield event
