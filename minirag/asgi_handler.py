"""Django's ASGI handler, with a synchronous view's whole request on one thread.

Under ASGI Django runs the middleware asynchronously and hands every synchronous part to a thread
on its own: each `process_request` / `process_response` of each classic middleware (security,
sessions, common, CSRF, authentication, messages, clickjacking, CORS) and then the view — about
twenty hops between the event loop and the request's thread for one `GET /v1/sources`, each
copying the request's context both ways. That was ≈ 15% of a read's CPU under load.

Almost every view of MiniRAG is synchronous (DRF). For those, this handler runs the same
middleware, in the same order, synchronously — as Django's WSGI handler does — in one call on the
request's thread. Async views (the chat turn's admission gate, the live event streams) keep
Django's asynchronous path unchanged: a client that leaves while its turn waits still cancels the
wait, and no thread waits with it.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.urls import Resolver404, get_resolver


class OneThreadASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        # The same middleware, built as Django's WSGI handler builds it (an async-only one in
        # the list, the static files', is bridged by Django once, as there).
        self._synchronous = BaseHandler()
        self._synchronous.load_middleware(is_async=False)

    def _view_is_synchronous(self, request: HttpRequest) -> bool:
        """Whether the view `request` goes to is a synchronous one (an unknown path's 404 too).
        Static files stay on the asynchronous path, where their middleware serves them."""
        if request.path_info.startswith(settings.STATIC_URL):
            return False
        try:
            match = get_resolver(getattr(request, "urlconf", None)).resolve(request.path_info)
        except Resolver404:
            return True
        return not iscoroutinefunction(match.func)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        if self._view_is_synchronous(request):
            response: Any = await sync_to_async(self._synchronous.get_response, thread_sensitive=True)(request)
            return response
        return await super().get_response_async(request)


def get_one_thread_asgi_application() -> OneThreadASGIHandler:
    """`django.core.asgi.get_asgi_application()` with this handler."""
    import django

    django.setup(set_prefix=False)
    return OneThreadASGIHandler()
