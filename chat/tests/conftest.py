"""Chat test helpers: a spy on the model calls (optionally answering through LiteLLM's
`mock_response`, since hosted providers cannot be reached here, at a provider's pace if asked), and
knowledge for a bot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from conftest import TenantWorld, http_scope
from minirag.model_gateway import _litellm
from sources.models import Source
from sources.services import source_create, source_ingest_request
from tenants.tenancy import tenant_scope


class ModelSpy:
    """Records every completion call. `mock(...)` makes later calls answer through LiteLLM's
    own mock machinery (`mock_response`, `mock_timeout`, ...) instead of a provider. LiteLLM's mock
    streams its whole answer at once; `chunk_delay=<seconds>` makes it wait that long before each
    chunk, as a provider writing tokens does."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.overrides: dict[str, Any] = {}

    def mock(self, **overrides: Any) -> None:
        self.overrides = overrides

    @property
    def last_messages(self) -> list[dict[str, str]]:
        return self.calls[-1]["messages"]


@pytest.fixture
def model_spy(monkeypatch: pytest.MonkeyPatch) -> ModelSpy:
    litellm = _litellm()
    spy = ModelSpy()
    real = litellm.acompletion

    async def recording(**kwargs: Any) -> Any:
        spy.calls.append(kwargs)
        overrides = dict(spy.overrides)
        chunk_delay = overrides.pop("chunk_delay", None)
        response = await real(**{**kwargs, **overrides})
        if chunk_delay:
            response.completion_stream = _at_a_pace(response.completion_stream, chunk_delay)
        return response

    monkeypatch.setattr(litellm, "acompletion", recording)
    return spy


async def _at_a_pace(chunks: AsyncIterator[Any], delay: float) -> AsyncIterator[Any]:
    async for chunk in chunks:
        await asyncio.sleep(delay)
        yield chunk


def add_knowledge(
    world: TenantWorld, name: str, text: str, *, bot: Any = None, authority: str = "informational"
) -> Source:
    with tenant_scope(world.tenant):
        source = source_create(
            tenant=world.tenant,
            bot_profile=bot or world.bot,
            name=name,
            source_type="text",
            content=text,
            authority=authority,
        )
        source_ingest_request(tenant=world.tenant, source=source)
        source.refresh_from_db()
    assert source.status == "ready", source.error_message
    return source


def use_model(world: TenantWorld, model: str, **fields: Any) -> None:
    response = world.client("admin").patch(
        f"/v1/bot-profiles/{world.bot.pk}", {"model": model, **fields}, format="json"
    )
    assert response.status_code == 200, response.content
    with tenant_scope(world.tenant):
        world.bot.refresh_from_db()


def ask(world: TenantWorld, message: str, who: str = "owner", **body: Any) -> Any:
    body.setdefault("bot_profile_id", str(world.bot.pk))
    return world.client(who).post("/v1/chat", {"message": message, **body}, format="json")


def chat_turn_scope(world: TenantWorld, body: bytes, *, streamed: bool = False) -> dict[str, Any]:
    """The ASGI scope of `POST /v1/chat` with `body`, as the owner, for driving the application
    directly (to see events as they are sent, or to leave mid-answer)."""
    accept = ((b"accept", b"text/event-stream"),) if streamed else ()
    return http_scope(world.tokens["owner"], "POST", "/v1/chat", body, accept)
