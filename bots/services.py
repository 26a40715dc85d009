"""Writes for bot profiles. Provider credentials are encrypted before they reach the database
and never leave it in clear except to the model gateway."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from bots.models import BotProfile
from bots.signals import bot_profile_changed
from minirag.crypto import decrypt_json, encrypt_json
from minirag.errors import InvalidInputError, NotFoundError
from minirag.model_gateway import ModelError, check_model_destination
from minirag.sentinels import UNSET
from tenants.models import Tenant

# Fields a client may set; everything else (ids, tenant, ciphertext, timestamps) is the server's.
EDITABLE_FIELDS = frozenset(
    {
        "name",
        "description",
        "model",
        "embedding_model",
        "rewrite_model",
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
    }
)
CREDENTIAL_KEYS = frozenset({"api_key"})


def _apply(bot: BotProfile, attributes: dict[str, Any]) -> None:
    unknown = set(attributes) - EDITABLE_FIELDS
    if unknown:
        raise InvalidInputError(f"Unknown bot profile fields: {', '.join(sorted(unknown))}.")
    for field, value in attributes.items():
        setattr(bot, field, value.strip() if field in ("name", "model", "embedding_model", "rewrite_model") else value)


def _encrypt_credentials(credentials: dict[str, Any] | None) -> str:
    """`None` or `{}` clears; otherwise only known keys with non-empty string values."""
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
    for key, value in credentials.items():
        if not isinstance(value, str) or not value.strip() or len(value) > 4096:
            raise InvalidInputError.for_field("credentials", f"'{key}' must be a non-empty string.")
    return encrypt_json({key: value.strip() for key, value in credentials.items()})


def _check_model_destinations(bot: BotProfile, fields: set[str]) -> None:
    """A model is an outbound destination: refuse one the egress policy forbids before it is saved (and
    the gateway checks every connection again at call time)."""
    for field, purpose in (("model", "chat"), ("embedding_model", "embedding"), ("rewrite_model", "chat")):
        if field in fields and getattr(bot, field):
            try:
                check_model_destination(getattr(bot, field), purpose=purpose)
            except ModelError as error:
                raise InvalidInputError.for_field(field, error.message) from None


def bot_profile_credentials(bot: BotProfile) -> dict[str, str]:
    """The decrypted credentials, for the model gateway only. Empty when none are set."""
    return decrypt_json(bot.credentials_ciphertext) if bot.credentials_ciphertext else {}


@transaction.atomic
def bot_profile_create(*, tenant: Tenant, credentials: dict[str, Any] | None = None, **attributes: Any) -> BotProfile:
    bot = BotProfile(tenant=tenant)
    _apply(bot, attributes)
    bot.credentials_ciphertext = _encrypt_credentials(credentials)
    bot.full_clean()
    _check_model_destinations(bot, {"model", "embedding_model", "rewrite_model"})
    bot.save()
    return bot


@transaction.atomic
def bot_profile_update(
    *, tenant: Tenant, bot: BotProfile, credentials: dict[str, Any] | None = UNSET, **attributes: Any
) -> BotProfile:
    """Partial update. `credentials=None` or `{}` clears them; leaving it out keeps them.
    Sends `bot_profile_changed` once committed (e.g. sources re-index after a model change)."""
    if bot.tenant_id != tenant.pk:
        raise NotFoundError("Bot profile not found.")
    before = {field: getattr(bot, field) for field in attributes}
    _apply(bot, attributes)
    if credentials is not UNSET:
        bot.credentials_ciphertext = _encrypt_credentials(credentials)
    bot.full_clean()
    changed = {field for field, value in before.items() if getattr(bot, field) != value}
    _check_model_destinations(bot, changed)
    bot.save()
    if changed:
        transaction.on_commit(lambda: bot_profile_changed.send(BotProfile, tenant=tenant, bot=bot, changed=changed))
    return bot


@transaction.atomic
def bot_profile_deactivate(*, tenant: Tenant, bot: BotProfile) -> BotProfile:
    return bot_profile_update(tenant=tenant, bot=bot, is_active=False)
