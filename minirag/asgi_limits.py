"""ASGI middleware capping request bodies before they are buffered.

Django's ASGI handler spools the whole request body (to disk past 2.5 MB) before any view runs,
so per-view limits alone would still let a client make the server store gigabytes. This wrapper
refuses a declared Content-Length over the cap at once and cuts off a streamed (chunked) body as
soon as it passes the cap, answering 413 with the API's error shape — or, to a person on the
dashboard (whose browser checks the size before sending: this is the fallback), a short page that
states the upload limit in MB.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _BodyTooLarge(Exception):
    pass


DASHBOARD_PREFIX = "/dashboard/"
DASHBOARD_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>The file is too large</title></head>
<body style="font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem">
<h1>The file is too large</h1><p>Files can be at most {limit}. Go back with your browser's Back button,
choose a smaller file (or split it), and try again.</p>
<p><a href="/dashboard/sources/source/add/?source_type=upload">Upload another file</a></p></body></html>"""


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int, upload_max_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # What a person is told the limit is: the upload limit (the cap adds room for the form's framing).
        self.upload_max_bytes = upload_max_bytes or max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        if scope.get("path", "").startswith(DASHBOARD_PREFIX):
            body = DASHBOARD_PAGE.format(limit=f"{self.upload_max_bytes / (1024 * 1024):.0f} MB").encode()
            content_type = b"text/html; charset=utf-8"
        else:
            body = json.dumps({"detail": f"Request body is larger than the {self.max_bytes} byte limit."}).encode()
            content_type = b"application/json"
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
