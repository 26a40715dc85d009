"""Django's ASGI handler, with a synchronous view's whole request on one thread.

Under ASGI Django runs the middleware asynchronously and hands every synchronous part to a thread
on its own: each `process_request` / `process_response` of each classic middleware (security,
sessions, common, CSRF, authentication, messages, clickjacking, CORS) and then the view — about
twenty hops between the event loop and the request's thread for one `GET /v1/sources`, each
copying the request's context both ways. That was ≈ 15% of a read's CPU under load.

Almost every view of MiniRAG is synchronous (DRF). For those, this handler runs the same
middleware, in the same order, synchronously — as Django's WSGI handler does — in one call on the
request's thread, together with the request's signals and, for a response that is not streamed,
its closing: one crossing per request, where Django's own path made three even around one call
(≈ 0.1 ms of CPU each when idle, more under load). Async views (the live event streams) keep
Django's asynchronous path unchanged.

A view that is asynchronous only for a door in front of a synchronous view (the chat turn's
admission gate, chat/views.py `admitted_turns`: it carries `door` and `synchronous_view`) is
served the same way once its door let it through: the door runs on the event loop first — a turn
waits there with no thread, and a client that leaves while it waits cancels the wait — then the
middleware and the synchronous view in one crossing (7 crossings for a streamed turn where
Django's path made 23). A response the door gives instead (a 503) goes through the middleware as a
view's would, and so does the door's failure (raised in the view's place).

Every request borrows its thread from a set kept between requests, at its first synchronous call,
instead of starting one and another to join it (minirag/request_threads.py `lent_request_thread`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.http import FileResponse, HttpRequest
from django.http.response import HttpResponseBase
from django.urls import Resolver404, ResolverMatch, get_resolver, set_script_prefix

from minirag.request_threads import lent_request_thread

T = TypeVar("T")

# Where a door's response (instead of the view's) waits on the request for the synchronous chain.
DOOR_RESPONSE_ATTRIBUTE = "minirag_door_response"
# Where a door's failure waits for the chain, which raises it in the view's place.
DOOR_ERROR_ATTRIBUTE = "minirag_door_error"
# Where the handler's own resolving of the path (it chose the path by it) waits for the chain.
ROUTE_ATTRIBUTE = "minirag_route"


class _SynchronousChain(BaseHandler):
    """Django's synchronous middleware chain; for a view behind a door, the synchronous view behind
    it, or the door's own response (then the middleware still sees it, as it would the view's)."""

    def resolve_request(self, request: HttpRequest) -> ResolverMatch:
        match = getattr(request, ROUTE_ATTRIBUTE, None)
        if match is None or hasattr(request, "urlconf"):  # a middleware chose another URLconf
            match = super().resolve_request(request)
        else:  # resolved once already, by the handler (≈ 0.3 ms a request)
            request.resolver_match = match
        behind = getattr(match.func, "synchronous_view", None)
        if behind is not None:
            door_response = getattr(request, DOOR_RESPONSE_ATTRIBUTE, None)
            door_error = getattr(request, DOOR_ERROR_ATTRIBUTE, None)
            if door_error is not None:
                match.func = functools.wraps(behind)(functools.partial(_raise, door_error))
            elif door_response is not None:
                match.func = functools.wraps(behind)(lambda *args, **kwargs: door_response)
            else:
                match.func = behind
        return match


def _raise(error: BaseException, *args: Any, **kwargs: Any) -> NoReturn:
    raise error


class OneThreadASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        # The same middleware, built as Django's WSGI handler builds it.
        self._synchronous = _SynchronousChain()
        self._synchronous.load_middleware(is_async=False)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)  # refused, as Django's handler refuses it
            return
        script_name = get_script_prefix(scope)
        path_info = scope["path"].removeprefix(script_name) if script_name else scope["path"]
        # Django's handler enters a ThreadSensitiveContext of its own here, which starts a thread
        # for the request and another to join it at the end: this one lends a kept thread.
        async with lent_request_thread():
            synchronous, match = self._route(path_info)
            if synchronous:
                await self._handle_synchronous_view(scope, receive, send, script_name, match)
            else:
                await self.handle(scope, receive, send)  # Django's own

    @staticmethod
    def _route(path_info: str) -> tuple[bool, ResolverMatch | None]:
        """Whether the view `path_info` goes to is a synchronous one or one behind a door (an async
        view with `door` and `synchronous_view`, chat/views.py `admitted_turns`), and its match
        (None for an unknown path, whose 404 is synchronous too). Static files stay on the
        asynchronous path, where their middleware serves them."""
        if path_info.startswith(settings.STATIC_URL):
            return False, None
        try:
            match = get_resolver().resolve(path_info)
        except Resolver404:
            return True, None
        return hasattr(match.func, "door") or not iscoroutinefunction(match.func), match

    async def _handle_synchronous_view(
        self, scope: dict[str, Any], receive: Any, send: Any, script_name: str, match: ResolverMatch | None
    ) -> None:
        """Django's `handle` for a synchronous view: the request's signals, middleware and view in
        one call on the request's thread, and its response closed there too when it is whole (not
        streamed), before it is sent. One crossing to the thread instead of three (request_started,
        the view, request_finished). Nothing listens for a disconnect while the view runs: it runs
        to its end either way (a thread cannot be cancelled); a streamed response stops when its
        client leaves, as under Django's `handle`. A view behind a `door` passes it first, on the
        event loop (`_through_door`); then the same, with the door's `leave` after."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        door = getattr(match.func, "door", None) if match is not None else None
        try:
            set_script_prefix(script_name)
            request = None
            if door is not None:
                # (A request Django cannot make is made again, and its error answered, in `_respond`.)
                request = self.create_request(scope, body_file)[0]
                if request is not None and not await self._through_door(door, request, receive):
                    return  # the client left while waiting at the door
            response = None
            try:
                response = await sync_to_async(self._respond, thread_sensitive=True)(scope, body_file, match, request)
            finally:
                if door is not None and request is not None:
                    door.leave(request, response)
            if response.streaming:
                if door is not None and request is not None:
                    _let_go_of(request, response)
                    request = None
                # A stream (a live event stream may never end by itself) stops when its client leaves.
                await self._unless_the_client_leaves(self.send_response(response, send), receive)
                await sync_to_async(response.close, thread_sensitive=True)()
            else:
                with contextlib.suppress(asyncio.CancelledError):  # the client left: nothing to send to
                    await self.send_response(response, send)
        finally:
            body_file.close()

    async def _unless_the_client_leaves(self, work: Coroutine[Any, Any, T], receive: Any) -> asyncio.Future[T]:
        """`work`, cancelled if the client leaves first (as Django's `handle` runs a request): the
        finished or cancelled task."""
        task = asyncio.ensure_future(work)
        leaving = asyncio.ensure_future(self.listen_for_disconnect(receive))
        try:
            await asyncio.wait((task, leaving), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for running in (task, leaving):
                running.cancel()
            await asyncio.gather(task, leaving, return_exceptions=True)
        return task

    async def _through_door(self, door: Any, request: HttpRequest, receive: Any) -> bool:
        """`door.enter(request)` while listening for the client leaving: False when it left first
        (the wait is cancelled). A response the door gives instead of the view's waits on the
        request for the synchronous chain; so does the door's failure (say, its database lookup
        failed), which the chain raises in the view's place: the middleware then answers it as
        any view's error (Django's 500, with the request id and CORS headers)."""
        entering = await self._unless_the_client_leaves(door.enter(request), receive)
        if entering.cancelled():
            return False
        if entering.exception() is not None:
            setattr(request, DOOR_ERROR_ATTRIBUTE, entering.exception())
        elif entering.result() is not None:
            setattr(request, DOOR_RESPONSE_ATTRIBUTE, entering.result())
        return True

    def _respond(
        self, scope: dict[str, Any], body_file: Any, match: ResolverMatch | None, request: HttpRequest | None = None
    ) -> HttpResponseBase:
        """On the request's thread: what `handle` and `run_get_response` do before sending (the
        request made already when a door needed it)."""
        signals.request_started.send(sender=self.__class__, scope=scope)
        error_response = None
        if request is None:
            request, error_response = self.create_request(scope, body_file)
        if request is None:
            response: HttpResponseBase = error_response
        else:
            if match is not None:
                setattr(request, ROUTE_ATTRIBUTE, match)
            response = self._synchronous.get_response(request)
            response._handler_class = self.__class__  # type: ignore[attr-defined]  # as run_get_response
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size
        if not response.streaming:
            response.close()  # request_finished: the database connection goes back before the send
        return response


# The attributes by which Django's middleware ties a request to itself (the messages storage, the
# lazy user and `auser` each hold the request they were made for).
_SELF_REFERENCES = ("_messages", "user", "auser")


def _let_go_of(request: HttpRequest, response: HttpResponseBase) -> None:
    """Free a chat turn's request as soon as its view has answered, not when its stream ends.

    An answer streams for seconds to minutes and a process holds a thousand of them; the request
    (its headers twice over, its body, the middleware's state: ≈ 8 KB) is of no use to the stream,
    which holds the few values it needs (chat/turns.py). Its middleware is done with it: their
    response side ran before the response was returned. What kept it alive: the response's
    closers (Django closes the request with the response, here: now) and reference cycles, which
    only the cyclic collector, seldom run for objects this old, would free: the middleware's,
    broken here, and DRF's, which the chat view breaks (`ChatView.finalize_response`). Only for
    views behind a door (the chat turn): their streams are known not to reach back for the
    request (minirag/tests/test_asgi_handler.py checks it is gone while the stream is open).
    """
    closers = response._resource_closers  # type: ignore[attr-defined]
    closers[:] = [closer for closer in closers if getattr(closer, "__self__", None) is not request]
    request.close()
    for name in _SELF_REFERENCES:
        request.__dict__.pop(name, None)


def get_one_thread_asgi_application() -> OneThreadASGIHandler:
    """`django.core.asgi.get_asgi_application()` with this handler."""
    import django

    django.setup(set_prefix=False)
    return OneThreadASGIHandler()
