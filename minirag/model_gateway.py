"""The one door to language and embedding models, over LiteLLM.

Every provider is a model string away (`gpt-4o-mini`, `anthropic/...`, `gemini/...`,
`ollama/...`); the offline `local/...` models are registered as a LiteLLM custom provider. Keys
come from the process environment or, per bot, from its encrypted credentials (BYOK). Provider
failures become `ModelError`s that say whether trying again can help.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any

import numpy as np
from django.conf import settings

EMBEDDING_TIMEOUT_SECONDS = 60


@cache
def _litellm() -> ModuleType:
    """LiteLLM, imported on the first model call: the import takes 2-3 s, which no web request,
    management command or task hand-off should pay for a model it does not call."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # or the import downloads a price list
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm


def _ready_litellm() -> ModuleType:
    from minirag.local_models.provider import ensure_registered

    litellm = _litellm()
    ensure_registered()
    return litellm


def _transient_errors() -> tuple[type[Exception], ...]:
    exceptions = _litellm().exceptions
    return (
        exceptions.RateLimitError,
        exceptions.APIConnectionError,
        exceptions.Timeout,
        exceptions.ServiceUnavailableError,
        exceptions.InternalServerError,
    )


class ModelError(Exception):
    """A model call failed. `transient`: a later retry may succeed (rate limit, outage)."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient


@dataclass(frozen=True)
class Embeddings:
    vectors: np.ndarray  # (n, dimensions) float32, L2-normalized rows
    prompt_tokens: int

    @property
    def dimensions(self) -> int:
        return int(self.vectors.shape[1])


def _model_error(exc: Exception, model: str) -> ModelError:
    transient = isinstance(exc, _transient_errors())
    reason = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return ModelError(f"The model {model} failed: {reason}"[:1000], transient=transient)


def _normalized(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


def embed_texts(
    texts: Sequence[str],
    *,
    model: str,
    api_key: str | None = None,
    batch_size: int | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> Embeddings:
    """Embed `texts` in batches; `on_batch(n)` is called after each batch with its size."""
    litellm = _ready_litellm()
    batch_size = batch_size or settings.EMBEDDING_BATCH_SIZE
    parts: list[np.ndarray] = []
    prompt_tokens = 0
    for start in range(0, len(texts), batch_size):
        batch = list(texts[start : start + batch_size])
        try:
            response = litellm.embedding(
                model=model, input=batch, api_key=api_key or None, timeout=EMBEDDING_TIMEOUT_SECONDS
            )
        except Exception as exc:
            raise _model_error(exc, model) from exc
        rows = sorted(response.data, key=lambda item: item["index"])
        parts.append(np.asarray([row["embedding"] for row in rows], dtype=np.float32))
        usage = getattr(response, "usage", None)
        prompt_tokens += int(getattr(usage, "prompt_tokens", 0) or 0)
        if on_batch is not None:
            on_batch(len(batch))
    if not parts:
        return Embeddings(vectors=np.zeros((0, 0), dtype=np.float32), prompt_tokens=0)
    return Embeddings(vectors=_normalized(np.vstack(parts)), prompt_tokens=prompt_tokens)


# --- Completions ------------------------------------------------------------------------------

Messages = list[dict[str, str]]
RETRY_PAUSE_SECONDS = 0.5


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int


def _completion_kwargs(
    model: str, messages: Messages, temperature: float, max_tokens: int, api_key: str | None
) -> dict[str, object]:
    return {
        "model": model,
        "messages": messages,
        "temperature": temperature,
        "max_tokens": max_tokens,
        "api_key": api_key or None,
        "timeout": settings.LLM_TIMEOUT_SECONDS,
        # Parameters a provider does not take are dropped rather than failing the turn.
        "drop_params": True,
    }


async def _with_one_retry(call: Callable[[], object], model: str) -> object:
    """`await call()`, once more after a short pause if the first failure is transient."""
    for attempt in (1, 2):
        try:
            return await call()  # type: ignore[misc]
        except Exception as exc:
            error = _model_error(exc, model)
            if not error.transient or attempt == 2:
                raise error from exc
            await asyncio.sleep(RETRY_PAUSE_SECONDS)
    raise AssertionError("unreachable")


async def acomplete(
    *, model: str, messages: Messages, temperature: float, max_tokens: int, api_key: str | None = None
) -> Completion:
    """One whole answer."""
    litellm = await asyncio.to_thread(_ready_litellm)  # the first import must not stall the event loop
    kwargs = _completion_kwargs(model, messages, temperature, max_tokens, api_key)
    response = await _with_one_retry(lambda: litellm.acompletion(**kwargs), model)
    usage = getattr(response, "usage", None)
    return Completion(
        text=response.choices[0].message.content or "",  # type: ignore[attr-defined]
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
    )


class CompletionStream:
    """An answer as it is generated: `async for delta in stream` yields text; afterwards
    `prompt_tokens` and `completion_tokens` are set (from the provider, or counted)."""

    def __init__(self, response: Any, model: str, messages: Messages) -> None:
        self._response = response
        self._model = model
        self._messages = messages
        self._chunks: list[Any] = []
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def __aiter__(self) -> AsyncIterator[str]:
        return self._deltas()

    async def _deltas(self) -> AsyncIterator[str]:
        iterator = aiter(self._response)
        while True:
            try:
                chunk = await asyncio.wait_for(anext(iterator), settings.LLM_STREAM_IDLE_SECONDS)
            except StopAsyncIteration:
                break
            except TimeoutError as exc:
                raise ModelError(
                    f"The model {self._model} went silent for {settings.LLM_STREAM_IDLE_SECONDS:g} s mid-answer.",
                    transient=True,
                ) from exc
            except Exception as exc:
                raise _model_error(exc, self._model) from exc
            self._chunks.append(chunk)
            choices = getattr(chunk, "choices", None) or []
            delta = getattr(choices[0], "delta", None) if choices else None
            text = getattr(delta, "content", None) if delta is not None else None
            if text:
                yield text
        self._count_usage()

    def _count_usage(self) -> None:
        litellm = _litellm()
        usage = next((c.usage for c in reversed(self._chunks) if getattr(c, "usage", None)), None)
        if usage is None and self._chunks:
            built = litellm.stream_chunk_builder(self._chunks, messages=self._messages)
            usage = getattr(built, "usage", None)
        self.prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        self.completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)

    async def aclose(self) -> None:
        """Stop generating (the visitor left): providers stop billing once the stream is closed."""
        close = getattr(self._response, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()


async def astream(
    *, model: str, messages: Messages, temperature: float, max_tokens: int, api_key: str | None = None
) -> CompletionStream:
    """Start a streamed answer. Opening the stream is retried once on a transient failure;
    a failure after the first delta is raised as it happens (nothing can be taken back)."""
    litellm = await asyncio.to_thread(_ready_litellm)
    kwargs = _completion_kwargs(model, messages, temperature, max_tokens, api_key)
    kwargs["stream"] = True
    kwargs["stream_options"] = {"include_usage": True}
    response = await _with_one_retry(lambda: litellm.acompletion(**kwargs), model)
    return CompletionStream(response, model, messages)
