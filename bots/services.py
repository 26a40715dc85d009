"""Writes for bot profiles. Provider credentials are encrypted before they reach the database
and never leave it in clear except to the model gateway."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from bots.appearance import appearance_merge
from bots.models import BotProfile
from bots.signals import bot_profile_changed
from inbox.office_hours import office_hours_clean
from minirag.errors import ForbiddenError, InvalidInputError, NotFoundError
from minirag.model_gateway import PUBLIC_ENDPOINT, Endpoint, ModelError, check_model_destination, provider_of
from minirag.pricing import Price, model_price, optional_amount
from minirag.sentinels import UNSET
from providers.catalogue import Mode, unroutable_model_message
from providers.endpoints import clean_api_base, decrypt_credentials, encrypt_credentials
from providers.models import Connection
from providers.selectors import connection_available_get, connection_endpoint, connection_price
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
        "connection",
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
        "widget",  # the widget's appearance: a partial object, merged (bots/appearance.py)
        "handoff",  # off, on_request, offered (inbox/)
        "office_hours",  # when a person answers a hand-off (inbox/office_hours.py)
    }
)
MAX_FALLBACK_MODELS = 3
# The model fields of a bot, and what each model is checked as.
MODEL_FIELDS: tuple[tuple[str, Mode], ...] = (
    ("model", "chat"),
    ("embedding_model", "embedding"),
    ("rewrite_model", "chat"),
)
ENDPOINT_FIELDS = frozenset({"api_base", "api_version", "connection"})


def _apply(bot: BotProfile, attributes: dict[str, Any]) -> None:
    unknown = set(attributes) - EDITABLE_FIELDS
    if unknown:
        raise InvalidInputError(f"Unknown bot profile fields: {', '.join(sorted(unknown))}.")
    for field, value in attributes.items():
        if field == "fallback_models":
            value = _fallback_models(value)
        elif field == "monthly_budget_usd":
            value = optional_amount(
                value, field="monthly_budget_usd", message="Must be an amount of USD, 0 or more, or null."
            )
        elif field == "api_base":
            value = clean_api_base(value)
        elif field == "connection":
            value = _connection(bot, value)
        elif field == "widget":
            value = appearance_merge(bot.widget, value)
        elif field == "office_hours":
            value = office_hours_clean(value)
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


def _connection(bot: BotProfile, value: Any) -> Connection | None:
    """A connection named by the API, or chosen on the dashboard: one the tenant may pick."""
    if value is None or value == "":
        return None
    name = value.name if isinstance(value, Connection) else value
    connection = connection_available_get(tenant_id=bot.tenant_id, name=str(name)) if isinstance(name, str) else None
    if connection is None:
        raise InvalidInputError.for_field(
            "connection", f'No connection named "{str(name)[:60]}" is available to this workspace.'
        )
    return connection


def _check_connection(bot: BotProfile) -> None:
    """A connection must serve one of the bot's models at least: otherwise nothing would go through it."""
    connection = bot.connection
    if connection is None:
        return
    bot_models = {bot.embedding_model, bot.rewrite_model, *bot.answering_models} - {""}
    if not any(connection.serves(model) for model in bot_models):
        served = ", ".join(connection.served_models)
        raise InvalidInputError.for_field(
            "connection", f"The connection {connection.name} serves none of this bot's models; it serves {served}."
        )


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
    return decrypt_credentials(bot.credentials_ciphertext)


# LiteLLM providers that are one server under two names: a bot's endpoint serves both.
PROVIDER_FAMILIES = {"ollama_chat": "ollama"}


def _provider_family(model: str) -> str:
    provider = provider_of(model)
    return PROVIDER_FAMILIES.get(provider, provider)


def bot_model_endpoint(bot: BotProfile, model: str | None = None) -> Endpoint:
    """How `model` (default: the bot's chat model) is reached for this bot.

    A model the bot's named connection serves goes through the connection. Otherwise the bot's own
    key, endpoint and headers belong to the provider of its chat model: they go with every model of
    the bot on that provider (its fallbacks, rewrite and embedding models there). A model on another
    provider is reached at that provider's public address with the server's key, so the bot's key is
    never sent to a provider it was not meant for."""
    model = model or bot.model
    if bot.connection is not None and bot.connection.serves(model):
        return connection_endpoint(bot.connection, tenant_id=bot.tenant_id)
    if model != bot.model and _provider_family(model) != _provider_family(bot.model):
        return PUBLIC_ENDPOINT
    credentials = bot_profile_credentials(bot)
    return Endpoint(
        api_key=credentials.get("api_key"),
        api_base=bot.api_base or None,
        api_version=bot.api_version or None,
        headers=credentials.get("headers") or {},
    )


def bot_model_price(bot: BotProfile, model: str) -> Price:
    """What `model` costs this bot per token: the price its connection sets, or the model's own."""
    if bot.connection is not None and bot.connection.serves(model):
        return connection_price(bot.connection) or model_price(model)
    return model_price(model)


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
    bot.credentials_ciphertext = encrypt_credentials(credentials)
    bot.full_clean()
    _check_connection(bot)
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
        bot.credentials_ciphertext = encrypt_credentials(credentials)
    bot.full_clean()
    changed = {field for field, value in before.items() if getattr(bot, field) != value}
    _check_budget(bot, tenant, changed, actor_role)
    if changed & {"connection", "model", "embedding_model", "rewrite_model", "fallback_models"}:
        _check_connection(bot)
    _check_models(bot, changed | ({"credentials"} if credentials is not UNSET else set()))
    bot.save()
    if changed:
        transaction.on_commit(lambda: bot_profile_changed.send(BotProfile, tenant=tenant, bot=bot, changed=changed))
    return bot


@transaction.atomic
def bot_profile_deactivate(*, tenant: Tenant, bot: BotProfile) -> BotProfile:
    return bot_profile_update(tenant=tenant, bot=bot, is_active=False)
