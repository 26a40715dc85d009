"""The model test: can this bot reach its models, with its own endpoint, key and headers?

One tiny completion from each chat model the bot may answer with (its `model`, then each of its
`fallback_models`, and its `rewrite_model` when set), and one tiny embedding from its
`embedding_model`, each through the model gateway exactly as a chat turn or an ingestion calls it:
under the egress policy, with the bot's `Endpoint`. Each check says ok or failed, how long it took
and, when it failed, the one-line cause the gateway gives (never the provider's body). A failing
model is not retried: the test says how the model answers now.

It costs a few tokens per model, so it is rate-limited per tenant (`MINIRAG_MODEL_TEST_RATE`,
default 10 per minute), shared by `POST /v1/bot-profiles/{id}/test-model` and the dashboard's
"Test the models" button.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from asgiref.sync import async_to_sync

from bots.models import BotProfile
from bots.services import bot_model_endpoint
from bots.throttles import count_operator_test
from minirag.errors import NotFoundError
from minirag.model_gateway import Endpoint, ModelError, acomplete, embed_texts

TEST_PROMPT = [{"role": "user", "content": "This is a connection test. Reply with the single word OK."}]
TEST_TEXT = "MiniRAG connection test"
TEST_MAX_TOKENS = 5

Purpose = Literal["chat", "fallback", "rewrite", "embedding"]


def _check(purpose: Purpose, model: str, call: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        dimensions = call()
    except ModelError as error:
        status, detail, dimensions = "failed", error.message, None
    else:
        status, detail = "ok", None
    return {
        "purpose": purpose,
        "model": model,
        "status": status,
        "latency_ms": round((time.perf_counter() - started) * 1000),
        "detail": detail,
        "dimensions": dimensions,
    }


def _chat_check(purpose: Purpose, model: str, endpoint: Endpoint) -> dict[str, Any]:
    def complete() -> None:
        async_to_sync(acomplete)(
            model=model,
            messages=TEST_PROMPT,
            temperature=0.0,
            max_tokens=TEST_MAX_TOKENS,
            endpoint=endpoint,
            retry=False,
        )

    return _check(purpose, model, complete)


def _embedding_check(model: str, endpoint: Endpoint) -> dict[str, Any]:
    return _check("embedding", model, lambda: embed_texts([TEST_TEXT], model=model, endpoint=endpoint).dimensions)


def run_model_test(*, tenant_id: uuid.UUID, bot: BotProfile) -> dict[str, Any]:
    """The report (the shape of `ModelTestSerializer`). The caller has checked who may test this
    bot. Raises `TooManyTests` (429)."""
    if bot.tenant_id != tenant_id:  # a caller's bug; answered like any other tenant's id
        raise NotFoundError("Bot profile not found.")
    count_operator_test("model_test", tenant_id)
    checks = [_chat_check("chat", bot.model, bot_model_endpoint(bot))]
    checks += [_chat_check("fallback", model, bot_model_endpoint(bot, model)) for model in bot.fallback_models]
    if bot.rewrite_model:
        checks.append(_chat_check("rewrite", bot.rewrite_model, bot_model_endpoint(bot, bot.rewrite_model)))
    checks.append(_embedding_check(bot.embedding_model, bot_model_endpoint(bot, bot.embedding_model)))
    failed = [check for check in checks if check["status"] == "failed"]
    return {
        "status": "failed" if failed else "ok",
        "detail": failed[0]["detail"] if failed else None,
        "checks": checks,
    }
