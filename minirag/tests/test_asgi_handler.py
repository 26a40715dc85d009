"""The served ASGI handler (minirag/asgi_handler.py): a synchronous view's request runs its
middleware and view on one thread, with the same response as Django's own handler; async views
(the chat turn) keep Django's asynchronous path."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from asgiref.sync import SyncToAsync, sync_to_async
from django.core.asgi import get_asgi_application
from django.db import connections

from conftest import TenantWorld, build_world
from minirag.asgi_handler import OneThreadASGIHandler


def call(application: Any, token: str, method: str, path: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    async def run() -> tuple[int, dict[str, str], bytes]:
        sent, finished = False, asyncio.Event()
        status, headers, content = 0, {}, b""

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await finished.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status, headers, content
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = {key.decode().lower(): value.decode() for key, value in message["headers"]}
            elif message["type"] == "http.response.body":
                content += message.get("body", b"")
                if not message.get("more_body"):
                    finished.set()

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"testserver"),
                (b"content-type", b"application/json"),
                (b"authorization", f"Bearer {token}".encode()),
                (b"content-length", str(len(body)).encode()),
            ],
            "client": ("127.0.0.1", 5000),
            "server": ("testserver", 80),
        }
        await application(scope, receive, send)
        await sync_to_async(connections.close_all)()
        return status, headers, content

    return asyncio.run(run())


@pytest.fixture
def world(transactional_db: Any) -> TenantWorld:
    return build_world("alpha")


def hops(application: Any, world: TenantWorld, method: str, path: str, body: bytes = b"") -> tuple[int, int]:
    """(status, how many times the request crossed from the event loop to a thread)."""
    crossings = 0
    real = SyncToAsync.__call__

    async def counting(self: SyncToAsync, *args: Any, **kwargs: Any) -> Any:
        nonlocal crossings
        crossings += 1
        return await real(self, *args, **kwargs)

    SyncToAsync.__call__ = counting  # type: ignore[method-assign]
    try:
        status, _, _ = call(application, world.tokens["owner"], method, path, body)
    finally:
        SyncToAsync.__call__ = real  # type: ignore[method-assign]
    return status, crossings


def test_a_synchronous_view_runs_on_one_thread_with_the_same_response(world: TenantWorld) -> None:
    served, django = OneThreadASGIHandler(), get_asgi_application()
    ours, theirs = (call(app, world.tokens["owner"], "GET", "/v1/bot-profiles") for app in (served, django))
    assert ours[0] == theirs[0] == 200 and json.loads(ours[2]) == json.loads(theirs[2])
    # Every middleware ran: the same headers (the request id differs, of course).
    assert set(ours[1]) == set(theirs[1]) and "x-request-id" in ours[1]
    assert {key: value for key, value in ours[1].items() if key != "x-request-id"} == {
        key: value for key, value in theirs[1].items() if key != "x-request-id"
    }
    # Django's handler crosses to a thread for each classic middleware method and the view (20
    # here); ours once for all of them, plus the request's signals and the bridge around the static
    # files' async-only middleware (7).
    ours_status, ours_hops = hops(served, world, "GET", "/v1/bot-profiles")
    theirs_status, theirs_hops = hops(django, world, "GET", "/v1/bot-profiles")
    assert ours_status == theirs_status == 200
    assert ours_hops * 2 < theirs_hops, (ours_hops, theirs_hops)


def test_errors_static_files_and_async_views_as_before(world: TenantWorld) -> None:
    served = OneThreadASGIHandler()
    status, _, content = call(served, world.tokens["owner"], "GET", "/v1/no-such-thing")
    assert status == 404
    assert call(served, "", "GET", "/v1/bot-profiles")[0] == 401
    status, headers, _ = call(served, "", "GET", "/static/widget/minirag-widget.js")
    assert status == 200 and "javascript" in headers["content-type"]
    # The chat turn's view is asynchronous (its admission gate): Django's own path, unchanged.
    body = json.dumps({"bot_profile_id": str(world.bot.pk), "message": "How long do refunds take?"}).encode()
    status, _, content = call(served, world.tokens["owner"], "POST", "/v1/chat", body)
    assert status == 200 and json.loads(content)["message"]["role"] == "assistant"
