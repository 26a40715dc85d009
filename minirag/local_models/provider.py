"""The LiteLLM custom provider ``local``: offline models behind the same API as every hosted one.

``litellm.embedding(model="local/minilm", input=[...])`` / ``await litellm.aembedding(...)`` run all-MiniLM-L6-v2
in-process (:mod:`minirag.local_models.embedder`) once the provider is registered.

Registration is lazy on purpose: ``import litellm`` takes 2-3 s, too much for every Django process start (management
commands, tests that never call a model). The model gateway calls :func:`ensure_registered` before each LiteLLM call;
it is a cheap check after the first time. Importing this module imports LiteLLM.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from typing import Any, ClassVar

# Without this, `import litellm` downloads a model price list (settings.py sets it too; this module may be
# imported outside Django).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import httpx
import litellm
from litellm.llms.custom_llm import CustomLLM, CustomLLMError
from litellm.types.utils import EmbeddingResponse, Usage
from litellm.utils import custom_llm_setup

from minirag.local_models.embedder import (
    LOCAL_EMBEDDING_MODEL,
    MiniLMEmbedder,
    get_local_embedder,
)

__all__ = ["PROVIDER", "LocalProvider", "ensure_registered", "register_local_provider"]

logger = logging.getLogger(__name__)

#: The provider prefix of every offline model string (``local/<name>``).
PROVIDER = "local"


class LocalProvider(CustomLLM):
    """LiteLLM handler for ``local/<name>`` models.

    Embeddings: ``local/minilm``. LiteLLM strips the provider prefix before calling a custom handler, so ``model``
    arrives as ``"minilm"`` (the full string is accepted too). Unknown names raise ``CustomLLMError`` (404) naming the
    models that exist. Completions (``local/extractive``) are meant to be added to this class as
    ``completion``/``acompletion``/``streaming``/``astreaming`` overrides; until then LiteLLM's defaults raise
    "Not implemented yet!".
    """

    #: Embedding model name (without ``local/``) → factory of its process-wide embedder.
    embedding_models: ClassVar[dict[str, Callable[[], MiniLMEmbedder]]] = {"minilm": get_local_embedder}

    def embedding(
        self,
        model: str,
        input: list,  # noqa: A002  (LiteLLM's keyword)
        model_response: EmbeddingResponse,
        print_verbose: Callable,
        logging_obj: Any,
        optional_params: dict,
        api_key: str | None = None,
        api_base: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        litellm_params: dict | None = None,
    ) -> EmbeddingResponse:
        """Embed ``input`` (a string or a list of strings) into ``model_response``: one unit vector per input, in
        order, ``model`` set to the full model string and ``usage`` counting the word pieces the model read."""
        name = _model_name(model)
        factory = self.embedding_models.get(name)
        if factory is None:
            known = ", ".join(f"{PROVIDER}/{m}" for m in sorted(self.embedding_models))
            raise CustomLLMError(
                status_code=404, message=f"Unknown local embedding model '{PROVIDER}/{name}'; available: {known}."
            )
        # No parameter checks here: LiteLLM itself rejects `dimensions`/`encoding_format` for custom providers
        # (UnsupportedParamsError), or drops them under `drop_params`, before this method runs.
        texts = _texts(input)
        vectors, counts = factory().embed_with_token_counts(texts)
        tokens = sum(counts)
        model_response.model = f"{PROVIDER}/{name}"
        model_response.data = [
            {"object": "embedding", "index": i, "embedding": vector} for i, vector in enumerate(vectors.tolist())
        ]
        model_response.usage = Usage(prompt_tokens=tokens, completion_tokens=0, total_tokens=tokens)
        return model_response

    async def aembedding(
        self,
        model: str,
        input: list,  # noqa: A002  (LiteLLM's keyword)
        model_response: EmbeddingResponse,
        print_verbose: Callable,
        logging_obj: Any,
        optional_params: dict,
        api_key: str | None = None,
        api_base: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        litellm_params: dict | None = None,
    ) -> EmbeddingResponse:
        """:meth:`embedding` on a worker thread: inference is CPU-bound (tens of ms per batch) and must not stall the
        event loop; onnxruntime releases the GIL while it runs."""
        return await asyncio.to_thread(
            self.embedding,
            model=model,
            input=input,
            model_response=model_response,
            print_verbose=print_verbose,
            logging_obj=logging_obj,
            optional_params=optional_params,
            api_key=api_key,
            api_base=api_base,
            timeout=timeout,
            litellm_params=litellm_params,
        )


def _model_name(model: str) -> str:
    prefix = f"{PROVIDER}/"
    return model[len(prefix) :] if model.startswith(prefix) else model


def _texts(value: object) -> list[str]:
    """LiteLLM passes ``input`` through as given: a single string or a list of strings (token arrays unsupported)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return list(value)
    raise CustomLLMError(
        status_code=400, message=f"{LOCAL_EMBEDDING_MODEL} embeds a string or a list of strings, not {value!r:.80}."
    )


_register_lock = threading.Lock()


def _is_registered() -> bool:
    return PROVIDER in litellm._custom_providers and any(
        item.get("provider") == PROVIDER for item in litellm.custom_provider_map
    )


def register_local_provider() -> None:
    """Make ``local/...`` model strings resolve to :class:`LocalProvider` in this process.

    Idempotent and thread-safe: adds one entry to ``litellm.custom_provider_map`` (keeping other providers' entries)
    and runs LiteLLM's ``custom_llm_setup()`` so that ``get_llm_provider("local/minilm")`` works at once, not only
    inside a LiteLLM call. An existing ``local`` entry is respected, so a test may install its own handler.
    """
    with _register_lock:
        if not any(item.get("provider") == PROVIDER for item in litellm.custom_provider_map):
            litellm.custom_provider_map.append({"provider": PROVIDER, "custom_handler": LocalProvider()})
            logger.debug("registered the LiteLLM custom provider %r", PROVIDER)
        custom_llm_setup()


def ensure_registered() -> None:
    """:func:`register_local_provider`, with a lock-free fast path; the model gateway calls it before LiteLLM calls.

    It re-checks each time because ``litellm.custom_provider_map`` is a public attribute that code (or a test) may
    reassign.
    """
    if not _is_registered():
        register_local_provider()
