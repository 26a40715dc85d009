"""The served ASGI handler (minirag/asgi_handler.py): a synchronous view's request runs its
signals, middleware and view in one call on a thread lent for the request, with the same response
as Django's own handler; async views (the chat turn) keep Django's asynchronous path."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import weakref
from typing import Any

import pytest
from asgiref.sync import AsyncToSync, SyncToAsync, sync_to_async
from django.core import signals
from django.core.asgi import get_asgi_application
from django.db import connections
from django.test import Client, override_settings
from django.urls import URLResolver, get_resolver

from chat import admission
from chat.models import Chat
from chat.views import AdmissionDoor
from conftest import TenantWorld, build_world, http_scope
from minirag.asgi_handler import OneThreadASGIHandler
from minirag.request_threads import idle_request_threads
from tenants.tenancy import tenant_scope


def call(
    application: Any, token: str, method: str, path: str, body: bytes = b"", on_send: Any = None
) -> tuple[int, dict[str, str], bytes]:
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
            if on_send is not None:
                on_send(message)
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = {key.decode().lower(): value.decode() for key, value in message["headers"]}
            elif message["type"] == "http.response.body":
                content += message.get("body", b"")
                if not message.get("more_body"):
                    finished.set()

        await application(http_scope(token, method, path, body), receive, send)
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
    # Django's handler crosses to a thread for the request's signals, each classic middleware
    # method and the view (20 here); ours once for all of them (and `call` once more, to close
    # the test's connections).
    ours_status, ours_hops = hops(served, world, "GET", "/v1/bot-profiles")
    theirs_status, theirs_hops = hops(django, world, "GET", "/v1/bot-profiles")
    assert ours_status == theirs_status == 200
    assert ours_hops == 2 and theirs_hops > 10, (ours_hops, theirs_hops)


@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")
def test_requests_reuse_a_lent_thread_and_a_whole_response_is_closed_before_it_is_sent(world: TenantWorld) -> None:
    served = OneThreadASGIHandler()
    events: list[tuple[str, int]] = []

    def started(**kwargs: Any) -> None:
        events.append(("started", threading.get_ident()))

    def finished(**kwargs: Any) -> None:
        events.append(("finished", threading.get_ident()))

    def sent(message: dict[str, Any]) -> None:
        events.append((message["type"], threading.get_ident()))

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    try:
        for _ in range(2):
            assert call(served, world.tokens["owner"], "GET", "/v1/bot-profiles", on_send=sent)[0] == 200
        whole = list(events)
        events.clear()
        status, _, content = call(served, world.tokens["owner"], "GET", "/v1/chat/export?format=csv", on_send=sent)
    finally:
        signals.request_started.disconnect(started)
        signals.request_finished.disconnect(finished)
    # A whole response: its signals on one thread, the same for both requests (kept between them,
    # not started for each), and request_finished (its database connection given back) before
    # anything is sent.
    names = [name for name, _ in whole]
    assert names == ["started", "finished", "http.response.start", "http.response.body"] * 2, names
    request_threads = {thread for name, thread in whole if name in ("started", "finished")}
    assert len(request_threads) == 1 and threading.get_ident() not in request_threads
    assert len(idle_request_threads) >= 1
    # A streamed one (the CSV export) is closed after its last part was sent, as Django does.
    assert status == 200 and content.startswith(b"chat_id,")
    names = [name for name, _ in events]
    assert names[0] == "started" and names[-1] == "finished" and names.count("finished") == 1, names
    assert names[-2] == "http.response.body"


def test_a_request_s_path_is_resolved_once(world: TenantWorld) -> None:
    """The handler resolves the path to choose the request's way; the middleware chain takes that
    match instead of resolving again, and the view sees it as usual (`request.resolver_match`)."""
    resolved: list[str] = []
    real = URLResolver.resolve

    def counting(self: URLResolver, path: str) -> Any:
        if self is get_resolver():
            resolved.append(path)
        return real(self, path)

    URLResolver.resolve = counting  # type: ignore[method-assign]
    try:
        served = OneThreadASGIHandler()
        status, _, content = call(served, world.tokens["owner"], "GET", f"/v1/bot-profiles/{world.bot.pk}")
        assert (status, json.loads(content)["id"]) == (200, str(world.bot.pk))  # the view's kwargs, from the match
        assert resolved == [f"/v1/bot-profiles/{world.bot.pk}"]
        resolved.clear()
        assert call(served, world.tokens["owner"], "GET", "/v1/no-such-thing")[0] == 404
        assert resolved == ["/v1/no-such-thing", "/v1/no-such-thing"]  # the 404 is Django's, resolved again
    finally:
        URLResolver.resolve = real  # type: ignore[method-assign]


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


def test_the_static_files_middleware_crosses_to_the_event_loop_only_for_static_paths(world: TenantWorld) -> None:
    """On a synchronous middleware chain (the test client's, Django's WSGI handler's, the served
    handler's for synchronous views) servestatic's async-only middleware needs a bridge to the event
    loop; minirag/static_files.py takes it only for a path under STATIC_URL."""
    bridges = 0
    real = AsyncToSync.__call__

    def counting(self: AsyncToSync, *args: Any, **kwargs: Any) -> Any:
        nonlocal bridges
        bridges += 1
        return real(self, *args, **kwargs)

    client = Client(HTTP_AUTHORIZATION=f"Bearer {world.tokens['owner']}")
    AsyncToSync.__call__ = counting  # type: ignore[method-assign]
    try:
        assert client.get("/v1/bot-profiles").status_code == 200
        api_bridges = bridges
        script = client.get("/static/widget/minirag-widget.js")
        missing = client.get("/static/widget/no-such-file.js")
    finally:
        AsyncToSync.__call__ = real  # type: ignore[method-assign]
    assert api_bridges == 0
    assert script.status_code == 200 and "javascript" in script["Content-Type"]
    assert int(script["Content-Length"]) > 1000
    assert missing.status_code == 404 and bridges == 2


@override_settings(TURN_SLOTS=1, TURN_QUEUE_LIMIT=0)
def test_a_turn_passes_the_admission_door_on_the_event_loop_then_runs_on_one_thread(world: TenantWorld) -> None:
    """The chat turn's view is asynchronous only for its admission door (chat/views.py): the served
    handler passes the door on the event loop, then runs the middleware and the synchronous view in
    one crossing, where Django's asynchronous path crosses for every classic middleware method."""
    body = json.dumps({"bot_profile_id": str(world.bot.pk), "message": "How long do refunds take?"}).encode()
    ours_status, ours_hops = hops(OneThreadASGIHandler(), world, "POST", "/v1/chat", body)
    theirs_status, theirs_hops = hops(get_asgi_application(), world, "POST", "/v1/chat", body)
    assert ours_status == theirs_status == 200
    assert theirs_hops >= ours_hops + 12, (ours_hops, theirs_hops)
    # Refused at the door: the middleware still answers the refusal (its request id, CORS), with
    # the door's 503 and Retry-After; the slot is not taken, nothing is stored.
    gate = admission.turn_gate()
    assert gate is not None
    held = gate.enter()
    try:
        status, headers, content = call(OneThreadASGIHandler(), world.tokens["owner"], "POST", "/v1/chat", body)
    finally:
        held.release()
    assert status == 503 and "x-request-id" in headers and int(headers["retry-after"]) >= 1, (status, content)
    assert "try again" in json.loads(content)["detail"]
    assert gate.snapshot()["holding"] == 0 and gate.snapshot()["waiting"] == 0


def test_a_streamed_turn_lets_go_of_its_request_before_its_answer_streams(
    world: TenantWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An open answer stream holds no request (asgi_handler.py `_let_go_of`): by the first event
    sent, the request is freed, by reference counting alone (the cyclic collector is off here)."""
    requests: list[weakref.ref[Any]] = []
    create_request = OneThreadASGIHandler.create_request

    def keeping_track(self: OneThreadASGIHandler, *args: Any) -> Any:
        request, error = create_request(self, *args)
        requests.append(weakref.ref(request))
        return request, error

    alive_while_streaming: list[bool] = []

    def on_send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and message.get("more_body") and not alive_while_streaming:
            alive_while_streaming.append(requests[0]() is not None)

    monkeypatch.setattr(OneThreadASGIHandler, "create_request", keeping_track)
    body = json.dumps(
        {"bot_profile_id": str(world.bot.pk), "message": "How long do refunds take?", "stream": True}
    ).encode()
    gc.disable()
    try:
        status, _, content = call(OneThreadASGIHandler(), world.tokens["owner"], "POST", "/v1/chat", body, on_send)
    finally:
        gc.enable()
    assert status == 200 and b"event: done" in content, content[-300:]
    assert len(requests) == 1 and alive_while_streaming == [False]


@override_settings(TURN_SLOTS=1, TURN_QUEUE_LIMIT=0)
def test_a_door_that_fails_is_answered_by_the_middleware_as_django_would(
    world: TenantWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The door runs before the middleware under the served handler; its failure (say, its database
    lookup failed) still gets the response Django's path gives it: the 500 of a failed view, with
    the middleware's headers, not a bare error from the server."""

    async def failing(self: AdmissionDoor, request: Any) -> None:
        raise RuntimeError("the door's lookup failed")

    monkeypatch.setattr(AdmissionDoor, "enter", failing)
    body = json.dumps({"bot_profile_id": str(world.bot.pk), "message": "Is the door open today?"}).encode()
    ours = call(OneThreadASGIHandler(), world.tokens["owner"], "POST", "/v1/chat", body)
    theirs = call(get_asgi_application(), world.tokens["owner"], "POST", "/v1/chat", body)
    assert ours[0] == theirs[0] == 500
    assert ours[2] == theirs[2]
    assert set(ours[1]) == set(theirs[1]) and "x-request-id" in ours[1]
    with tenant_scope(world.tenant):
        assert not Chat.objects.filter(title="Is the door open today?").exists()  # the view never ran


def test_a_synchronous_view_s_stream_ends_when_its_client_leaves(world: TenantWorld) -> None:
    """A live event stream (`GET /v1/chat/{id}/events`, a synchronous view's never-ending response)
    is cancelled when its client disconnects, as under Django's handler: it does not stay open."""
    with tenant_scope(world.tenant):
        chat_id = Chat.objects.values_list("pk", flat=True).first()
    scope = http_scope(world.tokens["owner"], "GET", f"/v1/chat/{chat_id}/events")

    async def run() -> tuple[int, bool]:
        status, streaming, leave = 0, asyncio.Event(), asyncio.Event()
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await leave.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message.get("more_body"):
                streaming.set()

        request = asyncio.ensure_future(OneThreadASGIHandler()(scope, receive, send))
        await asyncio.wait_for(streaming.wait(), 10)
        leave.set()  # the visitor closes the tab
        done, _ = await asyncio.wait({request}, timeout=10)
        await sync_to_async(connections.close_all)()
        return status, bool(done)

    status, ended = asyncio.run(run())
    assert status == 200 and ended
