"""Writes for bot profiles. Provider credentials are encrypted before they reach the database
and never leave it in clear except to the model gateway."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from django.db import transaction

from bots.models import BotProfile
from bots.signals import bot_profile_changed
from minirag.crypto import decrypt_json, encrypt_json
from minirag.errors import ForbiddenError, InvalidInputError, NotFoundError
from minirag.model_gateway import PUBLIC_ENDPOINT, Endpoint, ModelError, check_model_destination, provider_of
from minirag.safe_http.validation import validated_public_url
from minirag.sentinels import UNSET
from providers.catalogue import Mode, unroutable_model_message
from tenants.models import Role, Tenant

# Fields a client may set; everything else (ids, tenant, ciphertext, timestamps) is the server's.
EDITABLE_FIELDS = frozenset(
    {
        "name",
        "description",
        "model",
        "embedding_model",
        "rewrite_model",
        "fallback_models",
        "api_base",
        "api_version",
        "system_prompt",
        "temperature",
        "max_tokens",
        "top_k",
        "similarity_threshold",
        "refusal_message",
        "chunk_size",
        "chunk_overlap",
        "history_turns",
        "is_active",
        "monthly_budget_usd",
    }
)
CREDENTIAL_KEYS = frozenset({"api_key", "headers"})
MAX_FALLBACK_MODELS = 3
MAX_HEADERS = 20
# An HTTP header name (RFC 9110 token); headers that would break or redirect the request are the
# HTTP client's to set.
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")
RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "upgrade", "te"})
# The model fields of a bot, and what each model is checked as.
MODEL_FIELDS: tuple[tuple[str, Mode], ...] = (
    ("model", "chat"),
    ("embedding_model", "embedding"),
    ("rewrite_model", "chat"),
)
ENDPOINT_FIELDS = frozenset({"api_base", "api_version"})


def _apply(bot: BotProfile, attributes: dict[str, Any]) -> None:
    unknown = set(attributes) - EDITABLE_FIELDS
    if unknown:
        raise InvalidInputError(f"Unknown bot profile fields: {', '.join(sorted(unknown))}.")
    for field, value in attributes.items():
        if field == "fallback_models":
            value = _fallback_models(value)
        elif field == "monthly_budget_usd":
            value = _budget(value)
        elif field == "api_base":
            value = _api_base(value)
        elif isinstance(value, str) and field in ("name", "model", "embedding_model", "rewrite_model", "api_version"):
            value = value.strip()
        setattr(bot, field, value)


def _fallback_models(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(model, str) for model in value):
        raise InvalidInputError.for_field("fallback_models", "Must be a list of model names.")
    models = [model.strip() for model in value]
    if len(models) > MAX_FALLBACK_MODELS:
        raise InvalidInputError.for_field("fallback_models", f"At most {MAX_FALLBACK_MODELS} fallback models.")
    if any(not model or len(model) > 200 for model in models) or len(set(models)) != len(models):
        raise InvalidInputError.for_field(
            "fallback_models", "Each fallback model must be a distinct, non-empty name of at most 200 characters."
        )
    return models


def _budget(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        budget = Decimal(str(value))
    except InvalidOperation:
        budget = Decimal("NaN")
    if not budget.is_finite() or budget < 0:
        raise InvalidInputError.for_field("monthly_budget_usd", "Must be an amount of USD, 0 or more, or null.")
    return budget


def _api_base(value: Any) -> str:
    """A blank value or an http(s) URL without credentials in it (the field is readable by every
    role: a key belongs in the write-only credentials)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return ""
    url = validated_public_url(value, "api_base", resolve=False)  # the egress check comes with the models'
    if urlsplit(url).username is not None:
        raise InvalidInputError.for_field(
            "api_base", 'Must not carry a user name or password: put the key in credentials ("api_key").'
        )
    return url.rstrip("/")


def _headers(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or len(value) > MAX_HEADERS:
        raise InvalidInputError.for_field(
            "credentials", f'"headers" must be an object of at most {MAX_HEADERS} header names and values.'
        )
    headers: dict[str, str] = {}
    for name, header_value in value.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name) or name.lower() in RESERVED_HEADERS:
            raise InvalidInputError.for_field("credentials", f"{str(name)[:100]!r} is not a header a bot may set.")
        if (
            not isinstance(header_value, str)
            or not header_value.strip()
            or len(header_value) > 4096
            or any(char in header_value for char in "\r\n\x00")
        ):
            raise InvalidInputError.for_field(
                "credentials", f"The header {name} needs a one-line value of at most 4096 characters."
            )
        headers[name] = header_value.strip()
    return headers


def _encrypt_credentials(credentials: dict[str, Any] | None) -> str:
    """`None` or `{}` clears; otherwise only known keys: `api_key` (a non-empty string) and
    `headers` (header names and one-line values)."""
    if not credentials:
        return ""
    if not isinstance(credentials, dict):
        raise InvalidInputError.for_field("credentials", 'Must be an object such as {"api_key": "..."}.')
    unknown = set(credentials) - CREDENTIAL_KEYS
    if unknown:
        raise InvalidInputError.for_field(
            "credentials",
            f"Unknown keys: {', '.join(sorted(unknown))}. Allowed: {', '.join(sorted(CREDENTIAL_KEYS))}.",
        )
    stored: dict[str, Any] = {}
    if "api_key" in credentials:
        key = credentials["api_key"]
        if not isinstance(key, str) or not key.strip() or len(key) > 4096:
            raise InvalidInputError.for_field("credentials", "'api_key' must be a non-empty string.")
        stored["api_key"] = key.strip()
    if credentials.get("headers") is not None:
        headers = _headers(credentials["headers"])
        if headers:
            stored["headers"] = headers
    return encrypt_json(stored) if stored else ""


def _check_models(bot: BotProfile, fields: set[str]) -> None:
    """Refuse, before anything is saved, a model string LiteLLM cannot route (naming the closest
    ones it can), and a model the egress policy forbids (the gateway checks every connection again
    at call time). A changed endpoint, key or chat model re-checks them all: which endpoint a model
    is reached at depends on them."""
    recheck_all = bool(fields & (ENDPOINT_FIELDS | {"credentials", "model"}))
    checks: list[tuple[str, str, Mode]] = [(field, getattr(bot, field), purpose) for field, purpose in MODEL_FIELDS]
    checks += [("fallback_models", model, "chat") for model in bot.fallback_models]
    for field, model, purpose in checks:
        if model and field in fields:
            unroutable = unroutable_model_message(model, mode=purpose)
            if unroutable:
                raise InvalidInputError.for_field(field, unroutable)
        if model and (recheck_all or field in fields):
            try:
                check_model_destination(model, purpose=purpose, endpoint=bot_model_endpoint(bot, model))
            except ModelError as error:
                raise InvalidInputError.for_field(field, error.message) from None


def bot_profile_credentials(bot: BotProfile) -> dict[str, Any]:
    """The decrypted credentials, for the model gateway only. Empty when none are set."""
    return decrypt_json(bot.credentials_ciphertext) if bot.credentials_ciphertext else {}


# LiteLLM providers that are one server under two names: a bot's endpoint serves both.
PROVIDER_FAMILIES = {"ollama_chat": "ollama"}


def _provider_family(model: str) -> str:
    provider = provider_of(model)
    return PROVIDER_FAMILIES.get(provider, provider)


def bot_model_endpoint(bot: BotProfile, model: str | None = None) -> Endpoint:
    """How `model` (default: the bot's chat model) is reached for this bot.

    The bot's own key, endpoint and headers belong to the provider of its chat model: they go with
    every model of the bot on that provider (its fallbacks, rewrite and embedding models there). A
    model on another provider is reached at that provider's public address with the server's key,
    so the bot's key is never sent to a provider it was not meant for."""
    if model is not None and model != bot.model and _provider_family(model) != _provider_family(bot.model):
        return PUBLIC_ENDPOINT
    credentials = bot_profile_credentials(bot)
    return Endpoint(
        api_key=credentials.get("api_key"),
        api_base=bot.api_base or None,
        api_version=bot.api_version or None,
        headers=credentials.get("headers") or {},
    )


def _check_budget(bot: BotProfile, tenant: Tenant, fields: set[str], actor_role: str | None) -> None:
    """A bot's budget is set by owners (and the platform's operators: `actor_role` None), within the
    tenant's own."""
    if "monthly_budget_usd" not in fields:
        return
    if actor_role is not None and actor_role != Role.OWNER:
        raise ForbiddenError("Only an owner can set a bot's monthly budget.")
    cap = tenant.monthly_budget_usd
    if bot.monthly_budget_usd is not None and cap is not None and bot.monthly_budget_usd > cap:
        raise InvalidInputError.for_field(
            "monthly_budget_usd", f"Must be within the workspace's own monthly budget ({cap} USD)."
        )


@transaction.atomic
def bot_profile_create(
    *,
    tenant: Tenant,
    credentials: dict[str, Any] | None = None,
    actor_role: str | None = None,
    **attributes: Any,
) -> BotProfile:
    bot = BotProfile(tenant=tenant)
    _apply(bot, attributes)
    _check_budget(bot, tenant, {"monthly_budget_usd"} if bot.monthly_budget_usd is not None else set(), actor_role)
    bot.credentials_ciphertext = _encrypt_credentials(credentials)
    bot.full_clean()
    _check_models(bot, {field for field, _ in MODEL_FIELDS} | {"fallback_models"})
    bot.save()
    return bot


@transaction.atomic
def bot_profile_update(
    *,
    tenant: Tenant,
    bot: BotProfile,
    credentials: dict[str, Any] | None = UNSET,
    actor_role: str | None = None,
    **attributes: Any,
) -> BotProfile:
    """Partial update. `credentials=None` or `{}` clears them; leaving it out keeps them.
    `actor_role`: the role of who asks (None: the platform), for the fields only owners set.
    Sends `bot_profile_changed` once committed (e.g. sources re-index after a model change)."""
    if bot.tenant_id != tenant.pk:
        raise NotFoundError("Bot profile not found.")
    before = {field: getattr(bot, field) for field in attributes}
    _apply(bot, attributes)
    if credentials is not UNSET:
        bot.credentials_ciphertext = _encrypt_credentials(credentials)
    bot.full_clean()
    changed = {field for field, value in before.items() if getattr(bot, field) != value}
    _check_budget(bot, tenant, changed, actor_role)
    _check_models(bot, changed | ({"credentials"} if credentials is not UNSET else set()))
    bot.save()
    if changed:
        transaction.on_commit(lambda: bot_profile_changed.send(BotProfile, tenant=tenant, bot=bot, changed=changed))
    return bot


@transaction.atomic
def bot_profile_deactivate(*, tenant: Tenant, bot: BotProfile) -> BotProfile:
    return bot_profile_update(tenant=tenant, bot=bot, is_active=False)
