"""The LiteLLM custom provider ``local``: offline models behind the same API as every hosted one.

``litellm.embedding(model="local/minilm", input=[...])`` / ``await litellm.aembedding(...)`` run all-MiniLM-L6-v2
in-process (:mod:`minirag.local_models.embedder`) once the provider is registered.

``litellm.completion(model="local/extractive", messages=[...])`` / ``await litellm.acompletion(...)``, with or without
``stream=True``, answer from the prompt's context block by quoting its most relevant sentences with ``[n]`` citations
(:mod:`minirag.local_models.extractive`). Streams yield the answer word by word; the last chunk carries
``finish_reason`` and ``usage``.

Registration is lazy on purpose: ``import litellm`` takes 2-3 s, too much for every Django process start (management
commands, tests that never call a model). The model gateway calls :func:`ensure_registered` before each LiteLLM call;
it is a cheap check after the first time. Importing this module imports LiteLLM.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, ClassVar

# Without this, `import litellm` downloads a model price list (settings.py sets it too; this module may be
# imported outside Django).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import httpx
import litellm
from litellm.llms.custom_llm import CustomLLM, CustomLLMError
from litellm.types.utils import Choices, EmbeddingResponse, GenericStreamingChunk, Message, ModelResponse, Usage
from litellm.utils import custom_llm_setup

from minirag.local_models.embedder import (
    LOCAL_EMBEDDING_MODEL,
    MiniLMEmbedder,
    get_local_embedder,
)
from minirag.local_models.extractive import ExtractiveAnswer, ExtractiveModel, get_extractive_model, stream_pieces

__all__ = ["PROVIDER", "LocalProvider", "ensure_registered", "register_local_provider"]

logger = logging.getLogger(__name__)

#: The provider prefix of every offline model string (``local/<name>``).
PROVIDER = "local"


class LocalProvider(CustomLLM):
    """LiteLLM handler for ``local/<name>`` models.

    Embeddings: ``local/minilm``. Completions: ``local/extractive`` (``completion``, ``acompletion``, ``streaming``,
    ``astreaming``; LiteLLM picks one from ``stream`` and sync/async). LiteLLM strips the provider prefix before calling
    a custom handler, so ``model`` arrives as ``"minilm"`` (the full string is accepted too). Unknown names raise
    ``CustomLLMError`` (404) naming the models that exist; LiteLLM re-raises it as ``litellm.NotFoundError``.

    Completion parameters: ``max_tokens`` (or ``max_completion_tokens``) cuts the answer at a word boundary
    (``finish_reason="length"``); everything else (``temperature``, ``top_p``, ``stop``, ...) is accepted and ignored —
    the model is deterministic and copies sentences, so there is nothing to sample.
    """

    #: Embedding model name (without ``local/``) → factory of its process-wide embedder.
    embedding_models: ClassVar[dict[str, Callable[[], MiniLMEmbedder]]] = {"minilm": get_local_embedder}
    #: Completion model name (without ``local/``) → factory of its process-wide model.
    completion_models: ClassVar[dict[str, Callable[[], ExtractiveModel]]] = {"extractive": get_extractive_model}

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

    # --- completions ------------------------------------------------------------------------------------------------
    # LiteLLM calls these with a fixed set of keywords (see litellm.main._complete_custom_providers); the ones this
    # model has no use for (api_key, api_base, headers, client, encoding, ...) are swallowed by **_unused.

    def completion(  # type: ignore[override]
        self,
        model: str,
        messages: list,
        model_response: ModelResponse,
        optional_params: dict,
        **_unused: Any,
    ) -> ModelResponse:
        """Answer ``messages`` into ``model_response``: one choice whose message is the cited answer, ``usage`` in the
        embedder's word pieces, ``model`` the full model string ``local/<name>``."""
        name, answerer = self._completion_model(model)
        answer = answerer.answer(messages, max_tokens=_max_tokens(optional_params))
        return _fill_response(model_response, f"{PROVIDER}/{name}", answer)

    async def acompletion(  # type: ignore[override]
        self,
        model: str,
        messages: list,
        model_response: ModelResponse,
        optional_params: dict,
        **_unused: Any,
    ) -> ModelResponse:
        """:meth:`completion` with the work (embedding, tens of ms of CPU) on a worker thread, off the event loop."""
        name, answerer = self._completion_model(model)
        answer = await asyncio.to_thread(answerer.answer, messages, max_tokens=_max_tokens(optional_params))
        return _fill_response(model_response, f"{PROVIDER}/{name}", answer)

    def streaming(  # type: ignore[override]
        self,
        model: str,
        messages: list,
        optional_params: dict,
        **_unused: Any,
    ) -> Iterator[GenericStreamingChunk]:
        """The answer as stream chunks: one per word (with its trailing space), then a final empty chunk with
        ``is_finished``, ``finish_reason`` and ``usage``.

        A plain method returning a generator, not a generator function, so that an unknown model fails here, inside
        ``litellm.completion()``, rather than on the first ``next()`` of the stream.
        """
        _, answerer = self._completion_model(model)
        answer = answerer.answer(messages, max_tokens=_max_tokens(optional_params))
        return iter(_stream_chunks(answer))

    def astreaming(  # type: ignore[override]
        self,
        model: str,
        messages: list,
        optional_params: dict,
        **_unused: Any,
    ) -> AsyncIterator[GenericStreamingChunk]:
        """:meth:`streaming` for ``acompletion(stream=True)``: the answer is computed on a worker thread, then the
        chunks are yielded with a pass through the event loop between words.

        LiteLLM calls this without awaiting it (inside ``completion()``, which ``acompletion`` runs in an executor)
        and wraps what it returns; so it is a plain method that validates the model at once and returns an async
        generator, which does the work when first iterated on the event loop.
        """
        _, answerer = self._completion_model(model)
        return _astream(answerer, messages, _max_tokens(optional_params))

    def _completion_model(self, model: str) -> tuple[str, ExtractiveModel]:
        name = _model_name(model)
        factory = self.completion_models.get(name)
        if factory is None:
            known = ", ".join(f"{PROVIDER}/{m}" for m in sorted(self.completion_models))
            raise CustomLLMError(
                status_code=404, message=f"Unknown local completion model '{PROVIDER}/{name}'; available: {known}."
            )
        return name, factory()


def _max_tokens(optional_params: dict | None) -> int | None:
    """The caller's token budget, if any: LiteLLM passes ``max_tokens``/``max_completion_tokens`` through to a custom
    provider in ``optional_params``. Anything that is not a positive int means no limit."""
    params = optional_params or {}
    for key in ("max_tokens", "max_completion_tokens"):
        value = params.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _usage(answer: ExtractiveAnswer) -> Usage:
    return Usage(
        prompt_tokens=answer.prompt_tokens,
        completion_tokens=answer.completion_tokens,
        total_tokens=answer.total_tokens,
    )


def _fill_response(model_response: ModelResponse, model: str, answer: ExtractiveAnswer) -> ModelResponse:
    model_response.model = model
    model_response.created = int(time.time())
    model_response.choices = [
        Choices(
            index=0,
            finish_reason=answer.finish_reason,
            message=Message(role="assistant", content=answer.text),
        )
    ]
    model_response.usage = _usage(answer)  # type: ignore[attr-defined]
    return model_response


def _stream_chunks(answer: ExtractiveAnswer) -> list[GenericStreamingChunk]:
    """One content chunk per word, then the closing chunk: empty text, ``is_finished``, finish reason and usage.

    Usage rides on the closing chunk only: LiteLLM's stream wrapper copies a chunk's ``usage`` onto the response
    chunk it builds, and ``stream_chunk_builder`` takes the last usage it sees.
    """
    chunks: list[GenericStreamingChunk] = [
        {"text": piece, "is_finished": False, "finish_reason": "", "usage": None, "index": 0}
        for piece in stream_pieces(answer.text)
    ]
    chunks.append(
        {
            "text": "",
            "is_finished": True,
            "finish_reason": answer.finish_reason,
            "usage": {
                "prompt_tokens": answer.prompt_tokens,
                "completion_tokens": answer.completion_tokens,
                "total_tokens": answer.total_tokens,
            },
            "index": 0,
        }
    )
    return chunks


async def _astream(
    answerer: ExtractiveModel, messages: list, max_tokens: int | None
) -> AsyncIterator[GenericStreamingChunk]:
    answer = await asyncio.to_thread(answerer.answer, messages, max_tokens=max_tokens)
    for chunk in _stream_chunks(answer):
        # Yielding does not by itself give the loop back: without this, a consumer that never awaits anything else
        # would drain the whole answer in one go while other tasks wait.
        await asyncio.sleep(0)
        yield chunk


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
