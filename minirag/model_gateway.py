"""The one door to language and embedding models, over LiteLLM.

Every provider is a model string away (`gpt-4o-mini`, `anthropic/...`, `gemini/...`,
`ollama/...`); the offline `local/...` models are registered as a LiteLLM custom provider. Keys
come from the process environment or, per bot, from its encrypted credentials (BYOK); a bot may
also reach its models at its own endpoint (an OpenAI-compatible server, an Azure resource, an
Ollama), with extra headers: an `Endpoint`.

Every call is an outbound request under the egress policy (minirag/safe_http/egress.py): its
connections may only reach public addresses or what the operator allowed, checked when a bot is
saved (`check_model_destination`) and again at every connection. Provider failures become
`ModelError`s: one readable sentence naming the provider and the kind of failure, saying whether
trying again can help. Provider bodies, tracebacks and file paths go to the server log only.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from types import ModuleType
from typing import Any, Literal

import numpy as np
from django.conf import settings

from minirag.pricing import Price, model_price
from minirag.safe_http import egress

logger = logging.getLogger(__name__)

EMBEDDING_TIMEOUT_SECONDS = 60
# LiteLLM providers whose requests bypass httpcore (aiohttp_openai/ always uses aiohttp), where the egress
# guard cannot see them: refused outright.
UNGUARDED_PROVIDERS = frozenset({"aiohttp_openai"})


@cache
def _litellm() -> ModuleType:
    """LiteLLM, imported on the first model call: the import takes 2-3 s, which no web request,
    management command or task hand-off should pay for a model it does not call."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # or the import downloads a price list
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    # Every provider's requests then go through httpx and httpcore, where the egress guard checks them.
    litellm.disable_aiohttp_transport = True
    egress.install()
    _price_only_for_callbacks(litellm)
    return litellm


def _callbacks_registered(litellm: ModuleType) -> bool:
    """Whether a LiteLLM logging callback would read what LiteLLM records of a call. MiniRAG
    registers none (usage is priced by minirag/pricing.py); an operator's own would. "cache" is
    LiteLLM's own response-cache hook, which one of its modules registers when imported (Gemini's
    context cache, on a bot's first Gemini call); it reads neither prices nor streams."""
    registered = (
        *litellm.callbacks,
        *litellm.success_callback,
        *litellm._async_success_callback,
        *litellm.failure_callback,
        *litellm._async_failure_callback,
    )
    return any(callback != "cache" for callback in registered)


def _price_only_for_callbacks(litellm: ModuleType) -> None:
    """LiteLLM prices every answer three times (when the call starts, when the stream's response is
    rebuilt, when its success is logged) for its logging callbacks: ≈ 5% of a streamed turn's CPU.
    MiniRAG never reads that figure. While no callback is registered, LiteLLM's calculator answers
    None, as it does for a model it cannot price, which every caller in LiteLLM handles; once one
    is, it prices as before (`_tell_litellm_the_price` keeps a model it has no price for from
    failing then)."""
    from litellm.litellm_core_utils.litellm_logging import Logging

    calculate = Logging.response_cost_calculator
    if getattr(calculate, "prices_only_for_callbacks", False):
        return

    def response_cost_calculator(self: Any, *args: Any, **kwargs: Any) -> float | None:
        return calculate(self, *args, **kwargs) if _callbacks_registered(litellm) else None

    response_cost_calculator.prices_only_for_callbacks = True  # type: ignore[attr-defined]
    Logging.response_cost_calculator = response_cost_calculator


def _ready_litellm() -> ModuleType:
    from minirag.local_models.provider import ensure_registered

    litellm = _litellm()
    ensure_registered()
    return litellm


async def _ready_litellm_off_the_loop() -> ModuleType:
    """`_ready_litellm()` for a coroutine: the first import in a worker thread (it takes seconds and
    must not stall the event loop), directly once imported. A thread hop on every model call would
    queue behind whatever fills the loop's default executor, delaying every answer's start."""
    if _litellm.cache_info().currsize:
        return _ready_litellm()
    return await asyncio.to_thread(_ready_litellm)


class ModelError(Exception):
    """A model call failed. `message` is one sentence that is safe to show to the tenant's staff (it names
    the model, the provider and the kind of failure, never what the provider sent back); `transient`: a
    later retry may succeed (rate limit, outage, timeout)."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient

    def __reduce__(self) -> tuple[Any, ...]:
        # Celery ships exceptions between processes: keep `transient`.
        return (type(self), (self.message,), self.__dict__)


@dataclass(frozen=True)
class Endpoint:
    """Where and how a model is reached beyond its provider's defaults: the bot's own API key, its own
    server (`api_base`; `api_version` for Azure) and extra headers (a gateway's tenant header, say).
    The empty Endpoint is the provider's public endpoint with the server's key from the environment."""

    api_key: str | None = None
    api_base: str | None = None
    api_version: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    # Why this endpoint may not be called any more (a named connection withdrawn from the tenant): every
    # call through it fails with this sentence, where the callers already handle a failed model call.
    unavailable: str | None = None

    def ensure_usable(self) -> None:
        if self.unavailable:
            raise ModelError(self.unavailable, transient=False)

    def litellm_arguments(self) -> dict[str, Any]:
        """The keyword arguments LiteLLM takes for this endpoint (only those that are set)."""
        arguments: dict[str, Any] = {"api_key": self.api_key or None}
        if self.api_base:
            arguments["api_base"] = self.api_base
        if self.api_version:
            arguments["api_version"] = self.api_version
        if self.headers:
            arguments["extra_headers"] = dict(self.headers)
        return arguments


PUBLIC_ENDPOINT = Endpoint()


@dataclass(frozen=True)
class Embeddings:
    vectors: np.ndarray  # (n, dimensions) float32, L2-normalized rows
    prompt_tokens: int

    @property
    def dimensions(self) -> int:
        return int(self.vectors.shape[1])


def provider_of(model: str) -> str:
    """The LiteLLM provider a model string routes to ("openai" for "gpt-4o-mini"), or its prefix."""
    try:
        return str(_litellm().get_llm_provider(model)[1])
    except Exception:  # noqa: BLE001 - an unroutable model string: LiteLLM says so in many ways
        return model.split("/", 1)[0] if "/" in model else "unknown"


# What went wrong, by LiteLLM's exception class (the first match wins: subclasses come first), and whether
# trying again may help.
_FAILURE_KINDS: tuple[tuple[str, str, bool], ...] = (
    ("ContextWindowExceededError", "the conversation is longer than the model's context window", False),
    ("ContentPolicyViolationError", "refused the request under its content policy", False),
    ("AuthenticationError", "refused the API key (authentication failed)", False),
    ("PermissionDeniedError", "refused access to this model (permission denied)", False),
    ("NotFoundError", "does not know this model (not found)", False),
    ("RateLimitError", "is limiting requests (rate limit or quota)", True),
    ("Timeout", "did not answer in time (timeout)", True),
    ("APIConnectionError", "could not be reached (connection failed)", True),
    ("ServiceUnavailableError", "is unavailable (server error)", True),
    ("InternalServerError", "failed on its side (server error)", True),
    ("BadGatewayError", "failed on its side (bad gateway)", True),
    ("BadRequestError", "refused the request (bad request)", False),
    ("UnprocessableEntityError", "refused the request (unprocessable)", False),
    ("APIResponseValidationError", "sent an answer that could not be read (malformed response)", True),
)
INVALID_RESPONSE = "sent an answer that could not be read (malformed response)"


def _model_error(
    exc: Exception, model: str, guard: egress.ModelEgress | None = None, *, endpoint: Endpoint = PUBLIC_ENDPOINT
) -> ModelError:
    """The readable, safe form of a failed call; the provider's own words go to the server log."""
    if isinstance(exc, ModelError):
        return exc
    provider = str(getattr(exc, "llm_provider", "") or provider_of(model))
    refusal = guard.refusal if guard is not None else None
    if refusal is not None:
        return ModelError(f"The model {model} was not called: it would connect to {refusal.sentence}.", transient=False)
    logger.warning(
        "The model %s (%s) failed: %s: %s", model, provider, type(exc).__name__, str(exc)[:500].replace("\n", " ")
    )
    if _failed_for_want_of_a_key(exc, guard, endpoint.api_key):
        missing = _missing_keys(model)
        if missing:
            return ModelError(
                f"The model {model} failed: {provider} needs an API key and none is configured "
                f"(set the bot's credentials, or {' or '.join(missing)} on the server).",
                transient=False,
            )
    what, transient = _failure_kind(exc)
    return ModelError(f"The model {model} failed: {provider} {what}.", transient=transient)


def _failed_for_want_of_a_key(exc: Exception, guard: egress.ModelEgress | None, api_key: str | None) -> bool:
    """Without a key the provider SDKs give up before connecting anywhere, with a message about the
    key, which LiteLLM reports as a server or authentication error."""
    if api_key or (guard is not None and guard.verdicts):
        return False
    words = str(exc).lower()
    return any(phrase in words for phrase in ("api_key", "api key", "credentials"))


def _missing_keys(model: str) -> list[str]:
    """The API key variables LiteLLM looks for and does not find (its check knows keys, not endpoints)."""
    try:
        missing = _litellm().validate_environment(model=model).get("missing_keys") or []
    except Exception:  # noqa: BLE001 - an unroutable model: nothing to say about keys
        return []
    return [name for name in missing if name.endswith("_KEY")]


def _failure_kind(exc: Exception) -> tuple[str, bool]:
    exceptions = _litellm().exceptions
    for name, what, transient in _FAILURE_KINDS:
        kind = getattr(exceptions, name, None)
        if kind is not None and isinstance(exc, kind):
            return what, transient
    status = getattr(exc, "status_code", None)
    if isinstance(exc, exceptions.APIError) and isinstance(status, int):
        return (
            (f"failed on its side (HTTP {status})", True)
            if status >= 500
            else (f"refused the request (HTTP {status})", False)
        )
    # Anything else broke while LiteLLM read the provider's answer: a body that is not what the API promises.
    return INVALID_RESPONSE, True


def _invalid_response(model: str, problem: str) -> ModelError:
    logger.warning("The model %s (%s) sent a malformed answer: %s", model, provider_of(model), problem)
    return ModelError(f"The model {model} failed: {provider_of(model)} {INVALID_RESPONSE}.", transient=True)


def _check_provider(model: str) -> None:
    provider = provider_of(model)
    if provider in UNGUARDED_PROVIDERS:
        raise ModelError(
            f"The model {model} cannot be used: the {provider} provider's requests bypass the egress policy.",
            transient=False,
        )


# For each model called in this process: the price LiteLLM was told (below), or None when LiteLLM prices
# the model itself. Under a lock: threads call models at once.
_prices_told: dict[str, Price | None] = {}
_prices_told_lock = threading.Lock()


def models_priced_for_litellm() -> frozenset[str]:
    """The models this process added to LiteLLM's price list: not LiteLLM's own (providers/catalogue.py)."""
    return frozenset(model for model, price in _prices_told.items() if price is not None)


def _tell_litellm_the_price(litellm: ModuleType, model: str, mode: Literal["chat", "embedding"]) -> None:
    """LiteLLM prices every call for its own logging, which MiniRAG never reads: usage is priced by
    minirag/pricing.py. For a model missing from LiteLLM's price list (MiniRAG's offline models, a
    self-hosted or fine-tuned one) that pricing fails, at ≈ 4 ms of CPU per streamed answer (it
    looks for a close match, then records the failure with its traceback): a sixth of a turn's CPU
    under bench/load.py. Such a model is registered with LiteLLM instead, once per process, at
    MiniRAG's list price for it (an operator's `MINIRAG_MODEL_PRICES` entry, else zero), so the
    look-up succeeds. Budgets and statistics still price usage themselves (a named connection's
    own price included); LiteLLM's figure stays unread."""
    price = model_price(model)
    if model in _prices_told and _prices_told[model] in (None, price):
        return
    with _prices_told_lock:
        if model not in _prices_told and (model in litellm.model_cost or model.split("/", 1)[-1] in litellm.model_cost):
            _prices_told[model] = None  # LiteLLM's own entry stays as it is
        elif _prices_told.get(model) != price:
            per_token = {
                "input_cost_per_token": float(price.prompt_per_1m) / 1_000_000,
                "output_cost_per_token": float(price.completion_per_1m) / 1_000_000,
            }
            cached_prompt = {  # named, or LiteLLM warns that cached prompt tokens will count as free
                "cache_creation_input_token_cost": per_token["input_cost_per_token"],
                "cache_read_input_token_cost": per_token["input_cost_per_token"],
            }
            litellm.register_model(
                {model: {**per_token, **cached_prompt, "litellm_provider": provider_of(model), "mode": mode}}
            )
            _prices_told[model] = price


def check_model_destination(
    model: str, *, purpose: Literal["chat", "embedding"], endpoint: Endpoint = PUBLIC_ENDPOINT
) -> None:
    """Refuse (ModelError) a model string whose requests would go where the egress policy forbids: LiteLLM's
    default endpoint for providers such as ollama/ or llamafile/ is this very machine. The model is tried
    for real under a probe that judges every connection LiteLLM opens and makes none; a destination that
    cannot be known without credentials or DNS is judged at call time instead."""
    litellm = _ready_litellm()
    _check_provider(model)
    endpoint.ensure_usable()
    if runs_in_process(model):
        return  # MiniRAG's own in-process providers (local/...): no network at all
    with egress.model_egress(probe=True) as probe, contextlib.suppress(Exception):
        # The probe answers every request with a canned 400, so these fail: only the connections matter.
        if purpose == "chat":
            probing = Endpoint("probe", endpoint.api_base, endpoint.api_version, endpoint.headers)
            litellm.completion(**_completion_kwargs(model, [{"role": "user", "content": "ping"}], 0.0, 1, probing))
        else:
            litellm.embedding(
                model=model,
                input=["ping"],
                timeout=5,
                max_retries=0,
                **Endpoint("probe", endpoint.api_base, endpoint.api_version, endpoint.headers).litellm_arguments(),
            )
    refusal = probe.refusal
    if refusal is not None:
        raise ModelError(f"The model {model} would send requests to {refusal.sentence}.", transient=False)


def _normalized(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


def embed_texts(
    texts: Sequence[str],
    *,
    model: str,
    endpoint: Endpoint = PUBLIC_ENDPOINT,
    batch_size: int | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> Embeddings:
    """Embed `texts` in batches; `on_batch(n)` is called after each batch with its size.

    The offline models run here, one batch at a time (they use every core already). A provider on
    the network is latency-bound instead: its batches are larger (`REMOTE_EMBEDDING_BATCH_SIZE`)
    and several are in flight at once (`EMBEDDING_CONCURRENCY`). A provider that refuses a batch
    as too large (a 400) gets it again in halves, and the smaller size is kept for that model."""
    litellm = _ready_litellm()
    _check_provider(model)
    _tell_litellm_the_price(litellm, model, "embedding")
    endpoint.ensure_usable()
    in_process = runs_in_process(model)
    if batch_size is None:
        batch_size = settings.EMBEDDING_BATCH_SIZE if in_process else _remote_batch_size(model)
    batches = [list(texts[start : start + batch_size]) for start in range(0, len(texts), batch_size)]
    if not batches:
        return Embeddings(vectors=np.zeros((0, 0), dtype=np.float32), prompt_tokens=0)

    def embed(batch: list[str]) -> tuple[np.ndarray, int]:
        rows, tokens = _embed_batch(litellm, batch, model=model, endpoint=endpoint)
        if on_batch is not None:
            on_batch(len(batch))
        return rows, tokens

    workers = 1 if in_process else min(settings.EMBEDDING_CONCURRENCY, len(batches))
    if workers <= 1:
        results = [embed(batch) for batch in batches]
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="minirag-embed") as pool:
            results = list(pool.map(embed, batches))  # in order; the first failure is raised
    if any(rows.shape[1] != results[0][0].shape[1] for rows, _ in results):
        raise _invalid_response(model, "batches of different dimensions")
    vectors = np.vstack([rows for rows, _ in results])
    return Embeddings(vectors=_normalized(vectors), prompt_tokens=sum(tokens for _, tokens in results))


def runs_in_process(model: str) -> bool:
    """Whether `model` is one of MiniRAG's own offline models (no network: CPU-bound, not latency-bound)."""
    return provider_of(model) in {entry["provider"] for entry in _ready_litellm().custom_provider_map}


def embedding_group_size(model: str) -> int:
    """How many texts a caller embedding many (ingestion) hands over at once: several batches, so that
    a provider on the network has EMBEDDING_CONCURRENCY requests in flight, and the offline model a
    few batches per vector-store write."""
    if runs_in_process(model):
        return settings.EMBEDDING_BATCH_SIZE * 4
    return _remote_batch_size(model) * max(1, settings.EMBEDDING_CONCURRENCY)


# The batch size that worked for a provider's model, once one refused a larger batch.
_remote_batch_limits: dict[str, int] = {}
# Below this a refused batch is not split: the refusal is about something else.
SMALLEST_SPLIT_BATCH = 8


def _remote_batch_size(model: str) -> int:
    return min(
        settings.REMOTE_EMBEDDING_BATCH_SIZE, _remote_batch_limits.get(model, settings.REMOTE_EMBEDDING_BATCH_SIZE)
    )


def _embed_batch(litellm: ModuleType, batch: list[str], *, model: str, endpoint: Endpoint) -> tuple[np.ndarray, int]:
    """One provider call (under the egress policy): the batch's rows in order and its prompt tokens.
    A batch refused with a 400 is tried again in halves."""
    with egress.model_egress() as guard:
        try:
            response = litellm.embedding(
                model=model, input=batch, timeout=EMBEDDING_TIMEOUT_SECONDS, **endpoint.litellm_arguments()
            )
        except Exception as exc:
            if type(exc).__name__ == "BadRequestError" and len(batch) >= 2 * SMALLEST_SPLIT_BATCH:
                return _embed_in_halves(litellm, batch, model=model, endpoint=endpoint, refusal=exc)
            raise _model_error(exc, model, guard, endpoint=endpoint) from exc
    usage = getattr(response, "usage", None)
    return _embedding_rows(response, len(batch), model), int(getattr(usage, "prompt_tokens", 0) or 0)


def _embed_in_halves(
    litellm: ModuleType, batch: list[str], *, model: str, endpoint: Endpoint, refusal: Exception
) -> tuple[np.ndarray, int]:
    """A refused batch, again in two halves (each halved again if refused, down to
    SMALLEST_SPLIT_BATCH). When even the smallest is refused, the size was not the trouble: the
    original refusal is raised."""
    middle = len(batch) // 2
    try:
        first = _embed_batch(litellm, batch[:middle], model=model, endpoint=endpoint)
    except ModelError:
        raise _model_error(refusal, model, None, endpoint=endpoint) from refusal
    _remote_batch_limits[model] = min(_remote_batch_limits.get(model, len(first[0])), len(first[0]), middle)
    logger.info("The provider of %s refused %d inputs at once; sending at most %d.", model, len(batch), middle)
    second = _embed_batch(litellm, batch[middle:], model=model, endpoint=endpoint)
    return np.vstack([first[0], second[0]]), first[1] + second[1]


def _embedding_rows(response: Any, expected: int, model: str) -> np.ndarray:
    """The vectors of one batch in input order, or a transient ModelError when the answer is not one
    finite vector of the same dimensions per input (an endpoint that speaks the API only roughly)."""
    try:
        rows = sorted(response.data, key=lambda item: item["index"])
        vectors = np.asarray([row["embedding"] for row in rows], dtype=np.float32)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise _invalid_response(model, f"{type(exc).__name__}: {exc}"[:300]) from exc
    if vectors.ndim != 2 or vectors.shape[0] != expected or vectors.shape[1] == 0 or not np.isfinite(vectors).all():
        raise _invalid_response(model, f"{vectors.shape} vectors for {expected} inputs")
    return vectors


# --- Completions ------------------------------------------------------------------------------

Messages = list[dict[str, str]]
RETRY_PAUSE_SECONDS = 0.5


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int


def _completion_kwargs(
    model: str, messages: Messages, temperature: float, max_tokens: int, endpoint: Endpoint
) -> dict[str, object]:
    endpoint.ensure_usable()
    return {
        "model": model,
        "messages": messages,
        "temperature": temperature,
        "max_tokens": max_tokens,
        **endpoint.litellm_arguments(),
        "timeout": settings.LLM_TIMEOUT_SECONDS,
        # Retries are the gateway's (`retry`) and the caller's (a bot's fallback models): the provider
        # SDKs' own would wait out a rate limit two more times before the next model is tried.
        "max_retries": 0,
        # Parameters a provider does not take are dropped rather than failing the turn.
        "drop_params": True,
    }


async def _with_one_retry(call: Callable[[], object], model: str, endpoint: Endpoint, *, retry: bool) -> object:
    """`await call()` under the egress policy; with `retry`, once more after a short pause if the
    first failure is transient."""
    attempts = 2 if retry else 1
    for attempt in range(1, attempts + 1):
        with egress.model_egress() as guard:
            try:
                return await call()  # type: ignore[misc]
            except Exception as exc:
                error = _model_error(exc, model, guard, endpoint=endpoint)
                if not error.transient or attempt == attempts:
                    raise error from exc
        await asyncio.sleep(RETRY_PAUSE_SECONDS)
    raise AssertionError("unreachable")


async def acomplete(
    *,
    model: str,
    messages: Messages,
    temperature: float,
    max_tokens: int,
    endpoint: Endpoint = PUBLIC_ENDPOINT,
    retry: bool = True,
) -> Completion:
    """One whole answer. A transient failure is tried once more unless `retry` is off (the caller
    has another model to turn to)."""
    litellm = await _ready_litellm_off_the_loop()
    _check_provider(model)
    _tell_litellm_the_price(litellm, model, "chat")
    kwargs = _completion_kwargs(model, messages, temperature, max_tokens, endpoint)
    response = await _with_one_retry(lambda: litellm.acompletion(**kwargs), model, endpoint, retry=retry)
    try:
        text = response.choices[0].message.content or ""  # type: ignore[attr-defined]
    except (AttributeError, IndexError, KeyError, TypeError) as exc:
        raise _invalid_response(model, f"no answer text: {type(exc).__name__}") from exc
    if not isinstance(text, str):
        raise _invalid_response(model, f"answer text of type {type(text).__name__}")
    usage = getattr(response, "usage", None)
    return Completion(
        text=text,
        prompt_tokens=_token_count(getattr(usage, "prompt_tokens", 0)),
        completion_tokens=_token_count(getattr(usage, "completion_tokens", 0)),
    )


def _token_count(value: Any) -> int:
    """A provider's token count, or 0 when it sent something that is not one."""
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


class _ShortChunkHistory(list[Any]):
    """LiteLLM's stream wrapper keeps every chunk of an answer (`CustomStreamWrapper.chunks`) until
    the answer ends, to rebuild the whole response for its end-of-stream bookkeeping: about 3 KB
    per token, held by every open stream. This list keeps that history short: a run of older
    plain-text chunks is merged into one chunk of our own (a copy of the run's first); anything
    else (reasoning, tool calls, a finish reason, usage) is kept whole, and a run of plain text
    after it merges anew. The last `KEEP_RECENT` chunks stay as they came (LiteLLM compares the
    last two to spot a model repeating itself). Rebuilt from it, the response has the same text,
    usage and finish reason (minirag/tests/test_model_stream.py)."""

    COMPACT_AT = 6
    KEEP_RECENT = 2

    def __init__(self) -> None:
        super().__init__()
        self._merged: Any = None  # our copy holding the merged text (never a chunk LiteLLM returned)

    def append(self, chunk: Any) -> None:
        super().append(chunk)
        if len(self) >= self.COMPACT_AT:
            self._compact()

    def _compact(self) -> None:
        """Merge the run of plain-text chunks that ends right before the recent ones into one."""
        end = len(self) - self.KEEP_RECENT
        start = end
        while start > 0 and _plain_text(self[start - 1]) is not None:
            start -= 1
        if end - start < 2:
            return
        merged = self[start]
        if merged is not self._merged:  # a run of its own: a private copy, so no chunk handed out changes
            merged = self._merged = merged.model_copy(deep=True)
        delta = merged.choices[0].delta
        delta.content = (delta.content or "") + "".join(_plain_text(chunk) or "" for chunk in self[start + 1 : end])
        self[start:end] = [merged]


def _plain_text(chunk: Any) -> str | None:
    """A chunk's text when it carries nothing else that LiteLLM would rebuild a response from
    (exactly one choice, its delta holding text only, no finish reason, no usage); else None."""
    if getattr(chunk, "usage", None) is not None:
        return None
    choices = getattr(chunk, "choices", None) or []
    if len(choices) != 1 or getattr(choices[0], "finish_reason", None) or getattr(choices[0], "logprobs", None):
        return None
    delta = getattr(choices[0], "delta", None)
    content = getattr(delta, "content", None)
    if not isinstance(content, str) or getattr(delta, "tool_calls", None) or getattr(delta, "function_call", None):
        return None
    if getattr(delta, "reasoning_content", None) or getattr(delta, "thinking_blocks", None):
        return None
    if getattr(delta, "role", None) not in (None, "assistant"):
        return None
    return content


class CompletionStream:
    """An answer as it is generated: `async for delta in stream` yields text; afterwards
    `prompt_tokens` and `completion_tokens` are set (from the provider, or counted).

    It reads the provider's stream under LiteLLM's stream wrapper (`CustomStreamWrapper`) whenever
    no LiteLLM callback is registered (`_callbacks_registered`). LiteLLM hands every provider's
    chunks over in one of two shapes: OpenAI's (`choices[0].delta.content`, `usage`: OpenAI's and
    Azure's SDK chunks, and what LiteLLM's own parsers make of Anthropic, Gemini and Ollama), or
    its generic chunk (a dict: `text`, `finish_reason`, `usage`: custom providers, the offline
    `local/...` models among them). The wrapper turns each chunk into a new response object, keeps
    them all, and at the end rebuilds and logs the whole response — for callbacks MiniRAG does not
    have: ≈ a fifth of a streamed turn's CPU, and the wrapper with its logging state (the prompt,
    the call's arguments) held for as long as the answer streams (docs/benchmarks.md). Read
    directly, an open stream holds the provider's stream, the answer's text and the token counts.
    What the wrapper adds that matters here is kept: LiteLLM's mapping of a provider's exception,
    the end of an answer whose connection drops after its finish reason, and the stop of a model
    repeating one chunk.

    With a callback registered, the wrapper is read as before, its chunk history kept short
    (`_ShortChunkHistory`)."""

    def __init__(self, response: Any, model: str, messages: Messages) -> None:
        self._model = model
        self._messages = messages
        self._text = ""  # one string: a list of the deltas would hold an object per token
        self._prompt_tokens: Any = None  # the latest count the provider sent of each (LiteLLM's rule)
        self._completion_tokens: Any = None
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self._provider = str(getattr(response, "custom_llm_provider", None) or "")
        self._wrapper: Any = None  # LiteLLM's wrapper, until its provider stream is taken (below)
        self._source: Any = response
        if hasattr(response, "completion_stream") and not _callbacks_registered(_litellm()):
            self._wrapper, self._source = response, response.completion_stream
        else:
            history = getattr(response, "chunks", None)
            if type(history) is list and not history:  # LiteLLM's CustomStreamWrapper, not started yet
                response.chunks = _ShortChunkHistory()

    def __aiter__(self) -> AsyncIterator[str]:
        return self._deltas()

    async def _provider_stream(self) -> Any:
        """The stream to read: some providers' streams are opened on the first read (the wrapper's
        `fetch_stream`). Then the wrapper is let go."""
        wrapper, self._wrapper = self._wrapper, None
        if wrapper is not None and self._source is None:
            self._source = await wrapper.fetch_stream()
        return self._source

    async def _deltas(self) -> AsyncIterator[str]:
        iterator = aiter(await self._provider_stream())
        finished = False
        last, repeats, repeat_limit = "", 0, _litellm().REPEATED_STREAMING_CHUNK_LIMIT
        while True:
            try:
                # asyncio.timeout, not wait_for: no task of its own for every chunk
                async with asyncio.timeout(settings.LLM_STREAM_IDLE_SECONDS):
                    chunk = await anext(iterator)
            except StopAsyncIteration:
                break
            except TimeoutError as exc:
                raise ModelError(
                    f"The model {self._model} went silent for {settings.LLM_STREAM_IDLE_SECONDS:g} s mid-answer.",
                    transient=True,
                ) from exc
            except Exception as exc:
                if finished and _is_dropped_connection(exc):  # what LiteLLM's wrapper does too
                    break
                raise _model_error(self._litellm_error(exc), self._model) from exc
            text, finish_reason = self._read(chunk)
            if finish_reason == "error":
                raise _invalid_response(self._model, "the stream ended with finish reason 'error'")
            finished = finished or bool(finish_reason)
            if text:
                repeats = repeats + 1 if text == last and len(text) > 2 else 1
                if repeats >= repeat_limit:
                    logger.warning("The model %s repeated one chunk %d times: stopped.", self._model, repeats)
                    raise ModelError(f"The model {self._model} failed: it kept repeating itself.", transient=True)
                last = text
                self._text += text
                yield text
        self._count_usage()

    def _read(self, chunk: Any) -> tuple[str, str | None]:
        """A chunk's text and finish reason, in either of LiteLLM's shapes; its usage noted."""
        if isinstance(chunk, Mapping):  # LiteLLM's generic chunk
            self._note_usage(chunk.get("usage"))
            text, finish_reason = chunk.get("text"), chunk.get("finish_reason")
        else:
            self._note_usage(getattr(chunk, "usage", None))
            choices = getattr(chunk, "choices", None) or []
            choice = choices[0] if choices else None
            delta = getattr(choice, "delta", None)
            text, finish_reason = getattr(delta, "content", None), getattr(choice, "finish_reason", None)
        return (text if isinstance(text, str) else ""), (finish_reason or None)

    def _note_usage(self, usage: Any) -> None:
        """As LiteLLM counts a streamed answer: the latest count sent of each, so a provider that
        sends the prompt's tokens first and the answer's last (Anthropic) is counted whole."""
        if not usage:
            return
        read = usage.get if isinstance(usage, Mapping) else lambda name: getattr(usage, name, None)
        prompt, completion = read("prompt_tokens"), read("completion_tokens")
        if prompt is not None:
            self._prompt_tokens = prompt
        if completion is not None:
            self._completion_tokens = completion

    def _litellm_error(self, exc: Exception) -> Exception:
        """A provider's exception as LiteLLM's (which `_model_error` reads), as its wrapper maps it."""
        from litellm.litellm_core_utils.exception_mapping_utils import exception_type

        try:
            return exception_type(model=self._model, original_exception=exc, custom_llm_provider=self._provider)
        except Exception as mapped:  # noqa: BLE001 - LiteLLM raises the mapped exception
            return mapped

    def _count_usage(self) -> None:
        if self._prompt_tokens is None and self._completion_tokens is None and self._text:
            # A provider (or a proxy) that reported none: counted here.
            litellm = _litellm()
            try:
                prompt = litellm.token_counter(model=self._model, messages=self._messages)
                completion = litellm.token_counter(model=self._model, text=self._text)
            except Exception:  # a model it cannot count for: the answer stands, uncounted
                logger.warning("Could not count the tokens of a streamed answer of %s.", self._model, exc_info=True)
                prompt = completion = 0
            self.prompt_tokens, self.completion_tokens = _token_count(prompt), _token_count(completion)
            return
        self.prompt_tokens = _token_count(self._prompt_tokens)
        self.completion_tokens = _token_count(self._completion_tokens)

    async def aclose(self) -> None:
        """Stop generating (the visitor left): providers stop billing once the stream is closed."""
        source = self._wrapper if self._wrapper is not None else self._source
        self._wrapper = self._source = None
        close = getattr(source, "aclose", None) or getattr(source, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                result = close()
                if inspect.isawaitable(result):
                    await result


def _is_dropped_connection(exc: Exception) -> bool:
    import httpx

    return isinstance(exc, (httpx.ReadError, httpx.RemoteProtocolError))


async def astream(
    *,
    model: str,
    messages: Messages,
    temperature: float,
    max_tokens: int,
    endpoint: Endpoint = PUBLIC_ENDPOINT,
    retry: bool = True,
) -> CompletionStream:
    """Start a streamed answer. Opening the stream is retried once on a transient failure (unless
    `retry` is off); a failure after the first delta is raised as it happens (nothing can be taken
    back)."""
    litellm = await _ready_litellm_off_the_loop()
    _check_provider(model)
    _tell_litellm_the_price(litellm, model, "chat")
    kwargs = _completion_kwargs(model, messages, temperature, max_tokens, endpoint)
    kwargs["stream"] = True
    kwargs["stream_options"] = {"include_usage": True}
    response = await _with_one_retry(lambda: litellm.acompletion(**kwargs), model, endpoint, retry=retry)
    return CompletionStream(response, model, messages)
