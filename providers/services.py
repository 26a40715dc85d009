"""Writes of named connections, by the platform's operators (the dashboard; there is no tenant API
for them: a tenant only picks one, by name, for a bot)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils.text import slugify

from minirag.errors import InvalidInputError
from minirag.model_gateway import ModelError, check_model_destination
from minirag.pricing import optional_amount
from minirag.sentinels import UNSET
from providers.catalogue import Mode, unroutable_model_message
from providers.endpoints import clean_api_base, encrypt_credentials
from providers.models import Connection, ConnectionGrant
from providers.selectors import connection_address
from tenants.models import Tenant
from tenants.tenancy import tenant_scope_disabled

MAX_MODELS_PER_MODE = 50
MAX_MODEL_CHARS = 200
EDITABLE_FIELDS = frozenset(
    {
        "name",
        "description",
        "api_base",
        "api_version",
        "chat_models",
        "embedding_models",
        "prompt_price_per_1m",
        "completion_price_per_1m",
        "for_every_tenant",
        "is_active",
    }
)
_MODEL_FIELDS: tuple[tuple[str, Mode], ...] = (("chat_models", "chat"), ("embedding_models", "embedding"))


def _model_names(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(model, str) for model in value):
        raise InvalidInputError.for_field(field, "Must be a list of model names.")
    models = list(dict.fromkeys(model.strip() for model in value if model.strip()))
    if len(models) > MAX_MODELS_PER_MODE or any(len(model) > MAX_MODEL_CHARS for model in models):
        raise InvalidInputError.for_field(
            field, f"At most {MAX_MODELS_PER_MODE} names of at most {MAX_MODEL_CHARS} characters each."
        )
    return models


def _check_models(connection: Connection) -> None:
    """Every model must be one LiteLLM can route, and reachable where the egress policy allows
    (MINIRAG_MODEL_ALLOWED_NETWORKS for a server on a private network); the gateway checks every
    connection again at call time."""
    if not connection.served_models:
        raise InvalidInputError.for_field("chat_models", "Name at least one chat or embedding model it serves.")
    endpoint = connection_address(connection)
    for field, mode in _MODEL_FIELDS:
        for model in getattr(connection, field):
            unroutable = unroutable_model_message(model, mode=mode)
            if unroutable:
                raise InvalidInputError.for_field(field, unroutable)
            try:
                check_model_destination(model, purpose=mode, endpoint=endpoint)
            except ModelError as error:
                raise InvalidInputError.for_field(field, error.message) from None


@transaction.atomic
def connection_save(
    *,
    connection: Connection,
    credentials: dict[str, Any] | None = UNSET,
    granted_to: Iterable[Tenant] | None = None,
    **attributes: Any,
) -> Connection:
    """Create or change a connection. `credentials` as a bot's (`{"api_key", "headers"}`; `{}` or None
    clears, leaving it out keeps them); `granted_to`: the tenants that may pick it besides (with
    `for_every_tenant`) all of them; leaving it out keeps the grants."""
    unknown = set(attributes) - EDITABLE_FIELDS
    if unknown:
        raise InvalidInputError(f"Unknown connection fields: {', '.join(sorted(unknown))}.")
    for field, value in attributes.items():
        if field == "api_base":
            value = clean_api_base(value)
        elif field in ("chat_models", "embedding_models"):
            value = _model_names(value, field)
        elif field in ("prompt_price_per_1m", "completion_price_per_1m"):
            value = optional_amount(
                value, field=field, message="Must be an amount of USD per million tokens, 0 or more."
            )
        elif field == "name":
            value = slugify(str(value or ""))
        elif isinstance(value, str):
            value = value.strip()
        setattr(connection, field, value)
    if credentials is not UNSET:
        connection.credentials_ciphertext = encrypt_credentials(credentials)
    connection.full_clean()
    _check_models(connection)
    connection.save()
    if granted_to is not None:
        with tenant_scope_disabled("an operator grants a connection to tenants"):
            wanted = {tenant.pk for tenant in granted_to}
            ConnectionGrant.objects.filter(connection=connection).exclude(tenant_id__in=wanted).delete()
            have = set(ConnectionGrant.objects.filter(connection=connection).values_list("tenant_id", flat=True))
            ConnectionGrant.objects.bulk_create(
                [ConnectionGrant(tenant_id=tenant_id, connection=connection) for tenant_id in wanted - have]
            )
    return connection
