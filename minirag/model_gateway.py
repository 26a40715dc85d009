"""The one door to language and embedding models, over LiteLLM.

Every provider is a model string away (`gpt-4o-mini`, `anthropic/...`, `gemini/...`,
`ollama/...`); the offline `local/...` models are registered as a LiteLLM custom provider. Keys
come from the process environment or, per bot, from its encrypted credentials (BYOK). Provider
failures become `ModelError`s that say whether trying again can help.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from types import ModuleType

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
