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
(≈ 0.1 ms of CPU each when idle, more under load). Async views (the chat turn's admission gate,
the live event streams) keep Django's asynchronous path unchanged: a client that leaves while its
turn waits still cancels the wait, and no thread waits with it.

Every request borrows its thread from a set kept between requests, at its first synchronous call,
instead of starting one and another to join it (minirag/request_threads.py `lent_request_thread`).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.http import FileResponse
from django.http.response import HttpResponseBase
from django.urls import Resolver404, get_resolver, set_script_prefix

from minirag.request_threads import lent_request_thread


class OneThreadASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        # The same middleware, built as Django's WSGI handler builds it.
        self._synchronous = BaseHandler()
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
            if self._path_is_synchronous(path_info):
                await self._handle_synchronous_view(scope, receive, send, script_name)
            else:
                await self.handle(scope, receive, send)  # Django's own

    @staticmethod
    def _path_is_synchronous(path_info: str) -> bool:
        """Whether the view `path_info` goes to is a synchronous one (an unknown path's 404 too).
        Static files stay on the asynchronous path, where their middleware serves them."""
        if path_info.startswith(settings.STATIC_URL):
            return False
        try:
            match = get_resolver().resolve(path_info)
        except Resolver404:
            return True
        return not iscoroutinefunction(match.func)

    async def _handle_synchronous_view(self, scope: dict[str, Any], receive: Any, send: Any, script_name: str) -> None:
        """Django's `handle` for a synchronous view: the request's signals, middleware and view in
        one call on the request's thread, and its response closed there too when it is whole (not
        streamed), before it is sent. One crossing to the thread instead of three (request_started,
        the view, request_finished). Nothing waits for a disconnect meanwhile: a synchronous view
        runs to its end either way (a thread cannot be cancelled)."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        try:
            set_script_prefix(script_name)
            response = await sync_to_async(self._respond, thread_sensitive=True)(scope, body_file)
            with contextlib.suppress(asyncio.CancelledError):  # the client left: nothing to send to
                await self.send_response(response, send)
            if response.streaming:
                await sync_to_async(response.close, thread_sensitive=True)()
        finally:
            body_file.close()

    def _respond(self, scope: dict[str, Any], body_file: Any) -> HttpResponseBase:
        """On the request's thread: what `handle` and `run_get_response` do before sending."""
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self._synchronous.get_response(request)
            response._handler_class = self.__class__  # type: ignore[attr-defined]  # as run_get_response
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size
        if not response.streaming:
            response.close()  # request_finished: the database connection goes back before the send
        return response


def get_one_thread_asgi_application() -> OneThreadASGIHandler:
    """`django.core.asgi.get_asgi_application()` with this handler."""
    import django

    django.setup(set_prefix=False)
    return OneThreadASGIHandler()
