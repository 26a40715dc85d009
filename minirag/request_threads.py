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

This reads asgiref's bookkeeping (`SyncToAsync.thread_sensitive_context` and
`context_to_thread_executor`, there since asgiref 3.3, unchanged in 3.13); should it move, nothing
is retired and streams keep their thread as before (chat/tests/test_stream_threads.py notices).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, MutableMapping
from concurrent.futures import Executor
from contextlib import aclosing
from typing import Any, TypeVar

from asgiref.sync import SyncToAsync
from django.db import connections

T = TypeVar("T")


def _close_connections() -> None:
    """In the thread being retired: give its database connections back (thread-local in Django),
    except one inside a transaction (a test's, never a request's at this point)."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


def _request_context() -> tuple[Any, MutableMapping[Any, Executor]] | None:
    """The innermost `ThreadSensitiveContext` and asgiref's map of the executors it created, or
    None: outside such a context, when the context was given its executor by its caller (that one
    is not ours to retire), or if asgiref no longer keeps them there (then nothing is retired:
    streams keep their thread, as before)."""
    context = SyncToAsync.thread_sensitive_context.get(None)
    executors = getattr(SyncToAsync, "context_to_thread_executor", None)
    if context is None or executors is None or getattr(context, "_executor", None) is not None:
        return None
    return context, executors


def request_thread_executor() -> Executor | None:
    """The executor of this request's thread-sensitive calls, if one exists now: the one asgiref
    created for the innermost `ThreadSensitiveContext` (Django's handler enters one per request).
    None before the request's first call, and in the cases `_request_context` excludes."""
    found = _request_context()
    return found[1].get(found[0]) if found else None


def retire_request_thread(executor: Executor) -> bool:
    """Stop `executor` (this request's idle thread-sensitive executor) and forget it, so that the
    request's next thread-sensitive call starts a new thread. False when it is not (or no longer)
    the request's own executor: nothing done."""
    found = _request_context()
    if found is None or found[1].get(found[0]) is not executor:
        return False
    context, executors = found
    del executors[context]
    executor.submit(_close_connections)  # runs before the thread exits: shutdown lets queued work finish
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
