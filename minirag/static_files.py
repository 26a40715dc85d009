"""servestatic's middleware, without a trip through the event loop for every other request.

servestatic's `ServeStaticMiddleware` is async-only. On a synchronous middleware chain (Django's
WSGI handler, the test client, and the served handler's one-thread path for synchronous views,
minirag/asgi_handler.py) Django bridges it with `async_to_sync`: every request, static or not, went
from the request's thread to the event loop and back to a thread before reaching the next
middleware. Only paths under STATIC_URL can be static files (no SERVESTATIC_ROOT is configured),
so on a synchronous chain this middleware hands every other path straight on, and builds
servestatic's middleware (which scans every static file) only when the first static path comes.
On an asynchronous chain it is servestatic's middleware, unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync, iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from servestatic.middleware import ServeStaticMiddleware


class StaticFilesMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self._on_async_chain = iscoroutinefunction(get_response)
        self._served_on_loop: ServeStaticMiddleware | None = None
        if self._on_async_chain:
            markcoroutinefunction(self)
            self._served_on_loop = ServeStaticMiddleware(get_response)

    def __call__(self, request: HttpRequest) -> Any:
        if self._on_async_chain:
            return self._served_on_loop(request)  # type: ignore[misc]  # built in __init__
        if not request.path_info.startswith(settings.STATIC_URL):
            return self.get_response(request)
        return self._serve_synchronously(request)

    def _serve_synchronously(self, request: HttpRequest) -> HttpResponseBase:
        """A static path on a synchronous chain: servestatic's middleware through the bridge, as
        Django would have adapted it (a path that is no file goes on to the rest of the chain)."""
        if self._served_on_loop is None:
            self._served_on_loop = ServeStaticMiddleware(sync_to_async(self.get_response, thread_sensitive=True))
        response: HttpResponseBase = async_to_sync(self._served_on_loop)(request)
        return response
