"""The model catalogue: the models a bot can be given, and the check of a model string a tenant typed.

The catalogue is LiteLLM's bundled model list (its chat and embedding models that LiteLLM can route), the offline
`local/...` models, and the models of the named connections the tenant may pick. Each entry carries what a tenant
needs to choose: the context window, the price (LiteLLM's list, overridden by `MINIRAG_MODEL_PRICES`, through
minirag/pricing.py) and whether the platform holds credentials for it, so a bot needs no key of its own.

LiteLLM is imported on first use, through minirag.model_gateway, never when this module is imported: the import
costs seconds that no process should pay for a catalogue it never reads.
"""

from __future__ import annotations

import difflib
import json
import os
import uuid
from dataclasses import dataclass
from functools import cache, lru_cache
from types import ModuleType
from typing import Literal

from django.conf import settings

from minirag.model_gateway import _litellm, _ready_litellm, models_priced_for_litellm, provider_of
from minirag.pricing import PER_MILLION, model_price
from providers.selectors import connection_price, connections_available

Mode = Literal["chat", "embedding"]
EntrySource = Literal["litellm", "local", "connection"]
MODES: tuple[Mode, ...] = ("chat", "embedding")
ENTRY_SOURCES: tuple[EntrySource, ...] = ("litellm", "local", "connection")

LOCAL_PROVIDER = "local"
# LiteLLM's entry that documents the list's own format.
SPEC_ENTRY = "sample_spec"
# A variable LiteLLM asks for that names where a provider is, not a credential (ollama needs only a server).
ENDPOINT_SUFFIX = "_API_BASE"
# Providers whose credentials are read from variables named after their vendor, not after the provider.
VENDOR_PREFIXES: dict[str, tuple[str, ...]] = {
    "gemini": ("GOOGLE",),
    "vertex_ai": ("GOOGLE",),
    "bedrock": ("AWS",),
    "sagemaker": ("AWS",),
}
# How alike a catalogue id must be to a mistyped model string to be suggested (difflib's ratio).
MATCH_CUTOFF = 0.6
# A model string is quoted back at most this long: a sentence, not an echo of whatever was sent.
QUOTED_MODEL_CHARS = 100


@dataclass(frozen=True)
class ModelEntry:
    """One model a bot can use. `id` is the model string the bot stores; costs are USD per token (None: unknown);
    `has_credentials`: the platform can call it without a key of the bot's own."""

    id: str
    provider: str
    mode: Mode
    context_window: int | None
    max_output_tokens: int | None
    input_cost_per_token: float | None
    output_cost_per_token: float | None
    has_credentials: bool
    source: EntrySource
    connection: str | None = None  # the named connection it is reached through (source "connection")


@dataclass(frozen=True)
class _ModelFacts:
    """What LiteLLM's list says about one model; fixed for the life of the process."""

    id: str
    provider: str
    mode: Mode
    context_window: int | None
    max_output_tokens: int | None
    source: EntrySource


# --- The catalogue ----------------------------------------------------------------------------


def model_catalogue(*, tenant_id: uuid.UUID | None = None) -> list[ModelEntry]:
    """Every model a bot can be given: the local models first, then by provider and id. With `tenant_id`, also
    the models of the connections that tenant may pick (read on every call: connections change while the
    process runs)."""
    entries = list(_catalogue(_environment_snapshot(), _price_overrides_snapshot()))
    if tenant_id is not None:
        entries.extend(connection_entries(tenant_id))
        entries.sort(key=_catalogue_order)
    return entries


def connection_entries(tenant_id: uuid.UUID) -> list[ModelEntry]:
    """The models of the connections a tenant may pick, at the connection's price where it sets one."""
    facts = {item.id: item for item in _litellm_models()}
    entries = []
    for connection in connections_available(tenant_id=tenant_id):
        price = connection_price(connection)
        for mode, models in (("chat", connection.chat_models), ("embedding", connection.embedding_models)):
            for model in models:
                known = facts.get(model)
                input_cost, output_cost = (
                    (float(price.prompt_per_1m / PER_MILLION), float(price.completion_per_1m / PER_MILLION))
                    if price is not None
                    else _costs_per_token(model)
                )
                entries.append(
                    ModelEntry(
                        id=model,
                        provider=known.provider if known else provider_of(model),
                        mode=mode,
                        context_window=known.context_window if known else None,
                        max_output_tokens=known.max_output_tokens if known else None,
                        input_cost_per_token=input_cost,
                        output_cost_per_token=output_cost,
                        has_credentials=True,
                        source="connection",
                        connection=connection.name,
                    )
                )
    return entries


def model_list(
    *,
    tenant_id: uuid.UUID | None = None,
    mode: Mode | None = None,
    provider: str | None = None,
    q: str | None = None,
    has_credentials: bool | None = None,
) -> list[ModelEntry]:
    """The catalogue (with the tenant's connections) filtered: `mode` and `provider` exactly, `q` a
    case-insensitive part of the id."""
    needle = q.lower() if q else None
    return [
        entry
        for entry in model_catalogue(tenant_id=tenant_id)
        if (mode is None or entry.mode == mode)
        and (provider is None or entry.provider == provider)
        and (needle is None or needle in entry.id.lower())
        and (has_credentials is None or entry.has_credentials == has_credentials)
    ]


def _catalogue_order(entry: ModelEntry) -> tuple[bool, str, str, str]:
    return (entry.source != "local", entry.provider, entry.id, entry.connection or "")


def _environment_snapshot() -> frozenset[tuple[str, bool]]:
    """Which variables are set, and whether to something: all that the credentials checks read."""
    return frozenset((name, bool(value)) for name, value in os.environ.items())


def _price_overrides_snapshot() -> str:
    return json.dumps(settings.MODEL_PRICES, sort_keys=True)


@lru_cache(maxsize=4)
def _catalogue(environment: frozenset[tuple[str, bool]], price_overrides: str) -> tuple[ModelEntry, ...]:
    """The catalogue for one state of the environment and the price overrides (the arguments are only the cache
    key): rebuilt when a provider key or a price changes, which is rare, and read on every request."""
    facts = _local_models() + _litellm_models()
    one_model_of: dict[str, str] = {}
    for item in facts:
        one_model_of.setdefault(item.provider, item.id)
    credentials = {provider: _provider_has_credentials(provider, model) for provider, model in one_model_of.items()}
    entries = []
    for item in facts:
        input_cost, output_cost = _costs_per_token(item.id)
        entries.append(
            ModelEntry(
                id=item.id,
                provider=item.provider,
                mode=item.mode,
                context_window=item.context_window,
                max_output_tokens=item.max_output_tokens,
                input_cost_per_token=input_cost,
                output_cost_per_token=output_cost,
                has_credentials=credentials[item.provider],
                source=item.source,
            )
        )
    return tuple(sorted(entries, key=_catalogue_order))


def _costs_per_token(model: str) -> tuple[float | None, float | None]:
    """USD per prompt and completion token, as minirag/pricing.py prices usage (None: no price is known)."""
    price = model_price(model)
    if not price.known:
        return None, None
    return float(price.prompt_per_1m / PER_MILLION), float(price.completion_per_1m / PER_MILLION)


@cache
def _local_models() -> tuple[_ModelFacts, ...]:
    """The offline models, as the `local` provider serves them."""
    _ready_litellm()
    from minirag.local_models.embedder import MAX_TOKENS
    from minirag.local_models.provider import LocalProvider

    return tuple(
        _ModelFacts(f"{LOCAL_PROVIDER}/{name}", LOCAL_PROVIDER, "chat", None, None, "local")
        for name in sorted(LocalProvider.completion_models)
    ) + tuple(
        _ModelFacts(f"{LOCAL_PROVIDER}/{name}", LOCAL_PROVIDER, "embedding", MAX_TOKENS, None, "local")
        for name in sorted(LocalProvider.embedding_models)
    )


@cache
def _local_model_ids() -> frozenset[str]:
    return frozenset(item.id for item in _local_models())


@cache
def _litellm_models() -> tuple[_ModelFacts, ...]:
    """The chat and embedding models of LiteLLM's bundled list that LiteLLM can route, under the provider it
    routes them to (which may differ from the list's own label: "bedrock" for "bedrock_converse")."""
    litellm = _litellm()
    models = []
    ours = models_priced_for_litellm()  # the model gateway's additions: not in LiteLLM's list
    for model, spec in litellm.model_cost.items():
        mode = spec.get("mode")
        if (
            model == SPEC_ENTRY
            or model in ours
            or mode not in MODES
            or _logs_in_interactively(model, spec.get("litellm_provider"))
        ):
            continue
        provider = _routed_provider(litellm, model)
        if provider is None:
            continue
        models.append(
            _ModelFacts(
                model,
                provider,
                mode,
                _token_limit(spec.get("max_input_tokens")),
                _token_limit(spec.get("max_output_tokens")),
                "litellm",
            )
        )
    return tuple(models)


def _token_limit(value: object) -> int | None:
    """A token limit from LiteLLM's list, which holds a few strings and floats among its ints."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value) if value > 0 else None
    if isinstance(value, str) and value.isdigit():
        return int(value) or None
    return None


def _routed_provider(litellm: ModuleType, model: str) -> str | None:
    """The provider LiteLLM routes `model` to, or None when it cannot route it."""
    try:
        routed_model, provider, _key, _base = litellm.get_llm_provider(model)
    except Exception:  # noqa: BLE001 - LiteLLM refuses an unroutable string in many ways
        return None
    return str(provider) if routed_model and str(routed_model).strip() and provider else None


def _logs_in_interactively(model: str, listed_provider: object = None) -> bool:
    """Providers (github_copilot, chatgpt) whose routing starts an OAuth device login, waiting minutes for a
    person at the server's console: never routed here, and of no use to a bot."""
    _litellm()
    from litellm.constants import PROVIDERS_THAT_AUTHENTICATE_ON_PROVIDER_INFO as INTERACTIVE

    prefix = model.split("/", 1)[0] if "/" in model else None
    return prefix in INTERACTIVE or listed_provider in INTERACTIVE


# --- Credentials ------------------------------------------------------------------------------


def _provider_has_credentials(provider: str, model: str) -> bool:
    """Whether the platform can call `provider` (through one of its models, `model`) with no key of the bot's.

    LiteLLM's `validate_environment` names the variables a provider it knows lacks: credentials, or only an
    endpoint (ollama's OLLAMA_API_BASE: a local server, no key). When it names none, it either found them or has
    no check for that provider (and then says all is well), so the credentials must also show: a key LiteLLM
    resolves for the provider from the environment, or a non-empty variable named after the provider
    (AZURE_AI_API_KEY for azure_ai, COHERE_API_KEY for cohere_chat) or its vendor (AWS_..., GOOGLE_...)."""
    if provider == LOCAL_PROVIDER:
        return True
    litellm = _litellm()
    missing = litellm.validate_environment(model=model).get("missing_keys") or []
    if missing:
        return all(name.endswith(ENDPOINT_SUFFIX) for name in missing)
    try:
        resolved_key = litellm.get_llm_provider(model)[2]
    except Exception:  # noqa: BLE001 - unroutable: no key to find
        resolved_key = None
    if resolved_key:
        return True
    prefixes = _credential_prefixes(provider)
    return any(value and _squashed(name).startswith(prefixes) for name, value in os.environ.items())


def _credential_prefixes(provider: str) -> tuple[str, ...]:
    """How a provider's variables start, underscores aside: its name, its first word, or its vendor's name."""
    first_word = provider.replace("-", "_").split("_", 1)[0]
    return tuple({_squashed(provider), _squashed(first_word), *VENDOR_PREFIXES.get(provider, ())})


def _squashed(name: str) -> str:
    return name.upper().replace("_", "").replace("-", "")


# --- Checking a model string ------------------------------------------------------------------


def is_routable(model: str) -> bool:
    """Whether a call with this model string can reach a model: LiteLLM can route it (its provider prefix or a
    name it knows), or it is one of the offline `local/...` models. Providers that log in interactively are not."""
    if model.startswith(f"{LOCAL_PROVIDER}/"):
        return model in _local_model_ids()
    if _logs_in_interactively(model):
        return False
    return _routed_provider(_litellm(), model) is not None


def close_matches(model: str, *, mode: Mode | None = None, limit: int = 3) -> list[str]:
    """The catalogue ids most like a mistyped model string, best first; with `mode`, ids of that mode come
    before any other. An id is compared whole and by its last part, so "claude-3-5-haiku" finds
    "vertex_ai/claude-3-5-haiku" as readily as "gpt4o-mini" finds "gpt-4o-mini"; among equals, the provider
    the string names wins ("mistral/mistral-large-latest" for "mistral-large-latest")."""
    query = model.strip().lower()
    if not query or limit < 1:
        return []
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(query)
    ranked: dict[str, tuple[bool, float, bool, float, int]] = {}
    for entry in model_catalogue():
        model_id = entry.id.lower()
        whole = _similarity(matcher, model_id)
        name = model_id.rsplit("/", 1)[-1]
        score = max(whole, _similarity(matcher, name) if name != model_id else 0.0)
        if score < MATCH_CUTOFF:
            continue
        rank = (mode is None or entry.mode == mode, score, entry.provider.lower() in query, whole, -len(model_id))
        ranked[entry.id] = max(rank, ranked.get(entry.id, rank))
    # Equals keep the order of their ids: sorting by rank in reverse is stable.
    return sorted(sorted(ranked), key=ranked.__getitem__, reverse=True)[:limit]


def _similarity(matcher: difflib.SequenceMatcher, candidate: str) -> float:
    """difflib's ratio, skipping the full comparison when its cheap upper bounds already fall short."""
    matcher.set_seq1(candidate)
    if matcher.real_quick_ratio() < MATCH_CUTOFF or matcher.quick_ratio() < MATCH_CUTOFF:
        return 0.0
    return matcher.ratio()


def unroutable_model_message(model: str, *, mode: Mode | None) -> str | None:
    """None when `model` is routable; otherwise one sentence for the tenant naming the model and suggesting the
    catalogue ids it most resembles (of `mode` first)."""
    if is_routable(model):
        return None
    shown = model if len(model) <= QUOTED_MODEL_CHARS else model[:QUOTED_MODEL_CHARS] + "…"
    listing = "GET /v1/models lists the models you can choose."
    if _logs_in_interactively(model):
        provider = model.split("/", 1)[0]
        return (
            f'The model "{shown}" cannot be used: the {provider} provider needs an interactive login on the '
            f"server's console. {listing}"
        )
    suggestions = close_matches(model, mode=mode)
    did_you_mean = f" Did you mean {_either(suggestions)}?" if suggestions else ""
    return f'The model "{shown}" is not one LiteLLM can route.{did_you_mean} {listing}'


def _either(options: list[str]) -> str:
    quoted = [f'"{option}"' for option in options]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
