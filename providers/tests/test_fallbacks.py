"""`fallback_models`: when the bot's model fails in a way that may pass (a 429, a 5xx, a timeout)
before its first word, the next model answers. The answer is stored and counted under the model
that gave it, each failed attempt under its own; a permanent failure (a refused key) ends the turn
at once. Streamed, the visitor still gets one `sources`, the deltas and one `done`."""

from __future__ import annotations

from typing import Any

import pytest

from chat.models import Message, UsageEvent
from chat.tests.conftest import ask
from conftest import TenantWorld
from providers.tests.fake_provider import FakeProvider
from providers.tests.test_bot_endpoints import QUESTION, configure, streamed_text
from tenants.tenancy import tenant_scope


@pytest.fixture
def fallback_bot(alpha: TenantWorld, fake_provider: FakeProvider, settings: Any) -> TenantWorld:
    settings.MODEL_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    configure(
        alpha,
        model="openai/primary",
        fallback_models=["openai/backup", "openai/last-resort"],
        api_base=f"{fake_provider.url}/v1",
        credentials={"api_key": "sk-own-key"},
    )
    fake_provider.reset()
    return alpha


def asked_models(fake: FakeProvider) -> list[str | None]:
    return [call.model for call in fake.requests if call.path.endswith("/chat/completions")]


def usage(world: TenantWorld) -> list[tuple[str, str]]:
    with tenant_scope(world.tenant):
        events = UsageEvent.objects.filter(model__startswith="openai/").order_by("created_at", "id")
        return [(event.model, event.outcome) for event in events]


@pytest.mark.django_db
@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_transient_failure_is_answered_by_the_next_model(
    fallback_bot: TenantWorld, fake_provider: FakeProvider, status: int
) -> None:
    fake_provider.fail_next(status, path="chat")
    body = ask(fallback_bot, QUESTION).json()
    assert body["message"]["content"] == fake_provider.reply
    assert body["usage"]["model"] == "openai/backup"
    # The model with a successor is not retried: its successor is the retry.
    assert asked_models(fake_provider) == ["primary", "backup"]
    assert usage(fallback_bot) == [("openai/primary", "error"), ("openai/backup", "answered")]
    with tenant_scope(fallback_bot.tenant):
        assert Message.objects.get(pk=body["message"]["id"]).model == "openai/backup"


@pytest.mark.django_db
def test_a_timeout_moves_on_and_the_stream_stays_one_answer(
    fallback_bot: TenantWorld, fake_provider: FakeProvider, settings: Any
) -> None:
    settings.LLM_TIMEOUT_SECONDS = 1.0
    fake_provider.delay_next(5, times=2, path="chat")  # the primary and the backup hang
    text, names = streamed_text(fallback_bot, QUESTION)
    assert text == fake_provider.reply
    assert names[0] == "sources" and names[-1] == "done" and names.count("sources") == names.count("done") == 1
    assert "error" not in names
    assert asked_models(fake_provider) == ["primary", "backup", "last-resort"]
    assert usage(fallback_bot) == [
        ("openai/primary", "error"),
        ("openai/backup", "error"),
        ("openai/last-resort", "answered"),
    ]


@pytest.mark.django_db
def test_a_refused_key_ends_the_turn_without_trying_the_others(
    fallback_bot: TenantWorld, fake_provider: FakeProvider
) -> None:
    fake_provider.fail_next(401, path="chat")
    response = ask(fallback_bot, QUESTION)
    assert response.status_code == 502 and "refused the API key" in response.json()["detail"]
    assert asked_models(fake_provider) == ["primary"]
    assert usage(fallback_bot) == [("openai/primary", "error")]


@pytest.mark.django_db
def test_when_every_model_fails_the_last_is_retried_once_and_the_turn_is_a_503(
    fallback_bot: TenantWorld, fake_provider: FakeProvider
) -> None:
    fake_provider.fail_next(503, times=10, path="chat")
    response = ask(fallback_bot, QUESTION)
    assert response.status_code == 503 and "unavailable" in response.json()["detail"]
    assert asked_models(fake_provider) == ["primary", "backup", "last-resort", "last-resort"]
    assert [outcome for _, outcome in usage(fallback_bot)] == ["error"] * 3
    # The visitor's message is kept.
    with tenant_scope(fallback_bot.tenant):
        assert Message.objects.filter(role="user", content=QUESTION).exists()


@pytest.mark.django_db
def test_the_stats_count_the_answer_under_the_model_that_gave_it(
    fallback_bot: TenantWorld, fake_provider: FakeProvider
) -> None:
    fake_provider.fail_next(429, path="chat")
    ask(fallback_bot, QUESTION)
    rows = fallback_bot.client("admin").get("/v1/stats/usage/by-model", {"days": 1}).json()
    by_model = {row["model"]: row for row in rows}
    assert by_model["openai/backup"]["total_tokens"] > 0 and by_model["openai/backup"]["request_count"] == 1
    assert by_model["openai/primary"]["total_tokens"] == 0 and by_model["openai/primary"]["request_count"] == 1
