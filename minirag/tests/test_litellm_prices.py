"""LiteLLM is told MiniRAG's price for a model it has no price for (minirag/model_gateway.py), once per
process: its own per-call pricing then finds the model instead of failing, at a cost of CPU, on every
answer. A model LiteLLM prices itself keeps LiteLLM's entry."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import override_settings

from minirag import model_gateway
from minirag.pricing import model_price

MESSAGES = [{"role": "user", "content": "How long does shipping take?"}]


@pytest.fixture
def litellm(monkeypatch: pytest.MonkeyPatch) -> Any:
    """LiteLLM, its completions answered by its own mock (no network)."""
    litellm = model_gateway._litellm()
    real = litellm.acompletion

    async def answering(**kwargs: Any) -> Any:
        return await real(**kwargs, mock_response="Orders ship within two days.")

    monkeypatch.setattr(litellm, "acompletion", answering)
    return litellm


def _stream_an_answer(model: str) -> str:
    async def stream() -> str:
        answer = await model_gateway.astream(model=model, messages=MESSAGES, temperature=0, max_tokens=50)
        return "".join([delta async for delta in answer])

    return async_to_sync(stream)()


def _litellm_cost(litellm: Any, model: str, prompt_tokens: int, completion_tokens: int) -> float:
    prompt, completion = litellm.cost_per_token(
        model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
    )
    return prompt + completion


def test_a_model_litellm_cannot_price_is_registered_at_minirag_s_price(litellm: Any) -> None:
    model = "openai/acme-support-finetune-7"
    assert model not in litellm.model_cost and model_price(model).known is False
    assert _stream_an_answer(model) == "Orders ship within two days."
    entry = litellm.model_cost[model]
    assert (entry["input_cost_per_token"], entry["output_cost_per_token"], entry["mode"]) == (0.0, 0.0, "chat")
    assert entry["litellm_provider"] == "openai"
    assert _litellm_cost(litellm, model, 1_000, 500) == 0.0


@override_settings(MODEL_PRICES={"openai/acme-support-finetune-8": [2.5, 10.0]})
def test_an_operator_s_price_is_the_one_litellm_is_told(litellm: Any) -> None:
    model = "openai/acme-support-finetune-8"
    _stream_an_answer(model)
    ours = model_price(model).cost(1_000_000, 200_000)
    assert ours == Decimal("4.5")
    assert _litellm_cost(litellm, model, 1_000_000, 200_000) == pytest.approx(float(ours))


def test_a_model_litellm_prices_itself_keeps_litellm_s_entry(litellm: Any) -> None:
    before = dict(litellm.model_cost["gpt-4o-mini"])
    _stream_an_answer("gpt-4o-mini")
    assert litellm.model_cost["gpt-4o-mini"] == before


def test_the_offline_embedder_is_registered_as_an_embedding_model(litellm: Any) -> None:
    model_gateway.embed_texts(["shipping"], model="local/minilm")
    entry = litellm.model_cost["local/minilm"]
    assert (entry["input_cost_per_token"], entry["mode"], entry["litellm_provider"]) == (0.0, "embedding", "local")


def test_litellm_prices_an_answer_only_when_a_litellm_callback_would_read_the_price(
    litellm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`_price_only_for_callbacks`: MiniRAG registers no LiteLLM callback, so LiteLLM's three
    pricings of every answer are skipped; a callback registered brings them back."""
    from litellm.integrations.custom_logger import CustomLogger

    priced: list[str] = []
    real = litellm.response_cost_calculator

    def counting(**kwargs: Any) -> Any:
        priced.append(kwargs["model"])
        return real(**kwargs)

    monkeypatch.setattr(litellm, "response_cost_calculator", counting)
    # LiteLLM's own response-cache hook, registered when its Gemini code is first imported, reads no price.
    monkeypatch.setattr(litellm, "callbacks", [])
    monkeypatch.setattr(litellm, "success_callback", ["cache"])
    monkeypatch.setattr(litellm, "_async_success_callback", ["cache"])
    # LiteLLM copies a registered callback into its failure lists too: restored after the test.
    monkeypatch.setattr(litellm, "failure_callback", [])
    monkeypatch.setattr(litellm, "_async_failure_callback", [])
    assert _stream_an_answer("gpt-4o-mini") == "Orders ship within two days."
    assert priced == []

    class Listening(CustomLogger):
        pass

    monkeypatch.setattr(litellm, "callbacks", [Listening()])
    assert _stream_an_answer("gpt-4o-mini") == "Orders ship within two days."
    assert priced and set(priced) == {"gpt-4o-mini"}
