"""Every route that answers with server-sent events serves a client that accepts nothing but
`text/event-stream` — exactly what a browser's `EventSource` sends, and what the widget's fetch()
sends — and an error before the stream starts is still JSON `{"detail": ...}` with a JSON content
type, whatever the client accepts.

The streaming routes are found in the OpenAPI schema (an operation documenting a 200
`text/event-stream` answer), so a new one fails here until it is added to `ROUTES`."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django_eventstream import views as eventstream_views
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from conftest import TenantWorld

pytestmark = pytest.mark.django_db

EVENT_STREAM = "text/event-stream"
ONLY_EVENT_STREAMS = {"HTTP_ACCEPT": EVENT_STREAM}
READ_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class StreamRoute:
    """How to call one streaming route: its path with the world's ids, a valid body, and the
    event a good answer must carry (name, and a check of its data)."""

    path: Callable[[TenantWorld], str]
    body: Callable[[TenantWorld], dict[str, Any]] | None
    first_event: str
    check: Callable[[TenantWorld, dict[str, Any]], bool]
    # An id of nothing (another tenant's looks the same): the path or the body that names it.
    missing: Callable[[TenantWorld], tuple[str, dict[str, Any] | None]] | None = None


def _turn(world: TenantWorld) -> dict[str, Any]:
    return {"bot_profile_id": str(world.bot.pk), "message": "When does the office open?", "stream": True}


def _a_chat(world: TenantWorld) -> str:
    from chat.models import Chat
    from tenants.tenancy import tenant_scope

    with tenant_scope(world.tenant):
        return str(Chat.objects.values_list("pk", flat=True).first())


ROUTES: dict[tuple[str, str], StreamRoute] = {
    ("GET", "/v1/sources/events"): StreamRoute(
        path=lambda world: "/v1/sources/events",
        body=None,
        first_event="stream-open",
        check=lambda world, data: True,
    ),
    ("GET", "/v1/sources/{id}/events"): StreamRoute(
        path=lambda world: f"/v1/sources/{world.text_source.pk}/events",
        body=None,
        first_event="source",
        check=lambda world, data: data["id"] == str(world.text_source.pk) and data["status"] == "ready",
        missing=lambda world: (f"/v1/sources/{uuid.uuid4()}/events", None),
    ),
    ("POST", "/v1/chat"): StreamRoute(
        path=lambda world: "/v1/chat",
        body=_turn,
        first_event="sources",
        check=lambda world, data: any(s["source_id"] == str(world.text_source.pk) for s in data["sources"]),
        missing=lambda world: ("/v1/chat", {**_turn(world), "bot_profile_id": str(uuid.uuid4())}),
    ),
    ("GET", "/v1/chat/{id}/events"): StreamRoute(
        path=lambda world: f"/v1/chat/{_a_chat(world)}/events",
        body=None,
        first_event="stream-open",
        check=lambda world, data: True,
        missing=lambda world: (f"/v1/chat/{uuid.uuid4()}/events", None),
    ),
    ("GET", "/v1/inbox/events"): StreamRoute(
        path=lambda world: "/v1/inbox/events",
        body=None,
        first_event="stream-open",
        check=lambda world, data: True,
    ),
}


def event_stream_operations() -> set[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if EVENT_STREAM in operation.get("responses", {}).get("200", {}).get("content", {})
    }


@pytest.fixture(autouse=True)
def _local_listener_manager() -> Iterator[None]:
    """django-eventstream starts one Redis subscriber per process, on the first event loop that
    listens. Nothing is published in these tests (the events read are the stream's opening and
    the view's snapshot), and a subscriber cancelled in the middle of its handshake, when a
    short-lived loop closes, can hang that loop's shutdown; so these streams get a manager of
    their own without one, and the process-wide manager is left as it was."""
    original = eventstream_views.listener_manager
    manager = eventstream_views.ListenerManager()
    manager.redis_listener = None
    eventstream_views.listener_manager = manager
    yield
    eventstream_views.listener_manager = original


def call(world: TenantWorld | None, method: str, path: str, body: dict[str, Any] | None) -> Any:
    client = world.client("owner", **ONLY_EVENT_STREAMS) if world else APIClient(**ONLY_EVENT_STREAMS)
    if method == "GET":
        return client.get(path)
    return client.post(path, body, format="json")


def first_named_event(response: Any, name: str) -> dict[str, Any]:
    """Read the stream (as the ASGI server would) until an event called `name`, then hang up:
    a live-events stream never ends by itself."""

    async def read() -> dict[str, Any]:
        found: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

        async def pump() -> None:
            buffer = ""
            async for chunk in response.streaming_content:
                buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
                *blocks, buffer = buffer.split("\n\n")
                for block in blocks:
                    fields = dict(line.split(":", 1) for line in block.splitlines() if ":" in line and line[0] != ":")
                    if fields.get("event", "").strip() == name and not found.done():
                        found.set_result(json.loads(fields.get("data", "").strip() or "{}"))
            if not found.done():
                found.set_exception(AssertionError(f"the stream ended without a {name!r} event"))

        reader = asyncio.create_task(pump())
        try:
            return await asyncio.wait_for(found, READ_TIMEOUT_SECONDS)
        finally:
            reader.cancel()  # what a disconnect does: the stream's own cleanup runs
            await asyncio.gather(reader, return_exceptions=True)

    return async_to_sync(read)()


def assert_json_error(response: Any, status: int) -> None:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"] == "application/json", response["Content-Type"]
    body = json.loads(response.content)
    assert isinstance(body["detail"], str) and body["detail"], body


def test_every_event_stream_route_is_covered_here() -> None:
    assert event_stream_operations() == set(ROUTES)


@pytest.mark.parametrize(("method", "template"), list(ROUTES))
def test_a_client_that_accepts_only_event_streams_gets_the_stream(
    alpha: TenantWorld, method: str, template: str
) -> None:
    route = ROUTES[(method, template)]
    response = call(alpha, method, route.path(alpha), route.body(alpha) if route.body else None)
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith(EVENT_STREAM)
    assert response["Cache-Control"] == "no-cache"
    data = first_named_event(response, route.first_event)
    assert route.check(alpha, data), data


@pytest.mark.parametrize(("method", "template"), list(ROUTES))
def test_without_credentials_it_is_a_json_401(alpha: TenantWorld, method: str, template: str) -> None:
    route = ROUTES[(method, template)]
    response = call(None, method, route.path(alpha), route.body(alpha) if route.body else None)
    assert_json_error(response, 401)


@pytest.mark.parametrize(("method", "template"), [key for key, route in ROUTES.items() if route.missing])
def test_an_unknown_id_is_a_json_404(alpha: TenantWorld, beta: TenantWorld, method: str, template: str) -> None:
    route = ROUTES[(method, template)]
    assert route.missing is not None
    path, body = route.missing(alpha)
    assert_json_error(call(alpha, method, path, body), 404)
    # Another tenant's id is the same 404.
    assert_json_error(call(beta, method, route.path(alpha), route.body(alpha) if route.body else None), 404)


def test_a_bad_turn_is_a_json_422_even_to_a_stream_client(alpha: TenantWorld) -> None:
    response = call(alpha, "POST", "/v1/chat", {"bot_profile_id": str(alpha.bot.pk), "stream": True})
    assert_json_error(response, 422)
    assert "message" in json.loads(response.content)["detail"]
