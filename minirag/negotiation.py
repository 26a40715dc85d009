"""Content negotiation for the routes that answer with a server-sent event stream."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request


class EventStreamNegotiation(DefaultContentNegotiation):
    """A browser's `EventSource` always sends `Accept: text/event-stream` and nothing else (and
    streaming fetch() clients such as the widget send the same). No DRF renderer produces that
    type, so the default negotiation answered such a client 406 before the view ran, although the
    view would have streamed: its stream is an HttpResponse of its own that no renderer touches.

    Whatever a renderer does produce on these routes — an error before the stream starts (401,
    403, 404, 422), or a JSON answer — is JSON when the client accepts nothing DRF can render: a
    readable `{"detail": ...}` with its true content type beats a 406 the client cannot act on.
    Clients that accept JSON or HTML are negotiated as usual."""

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, Any]:
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except NotAcceptable:
            renderer = next((r for r in renderers if isinstance(r, JSONRenderer)), renderers[0])
            return renderer, renderer.media_type
