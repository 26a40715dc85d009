"""Reads of named connections: which ones a tenant may pick, and how a bot's model is reached and
priced through one."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db.models import Q, QuerySet

from minirag.model_gateway import Endpoint
from minirag.pricing import Price
from providers.endpoints import decrypt_credentials
from providers.models import Connection


def connections_available(*, tenant_id: uuid.UUID) -> QuerySet[Connection]:
    """The active connections a tenant may pick: those offered to every tenant and those granted to it."""
    return (
        Connection.objects.filter(is_active=True)
        .filter(Q(for_every_tenant=True) | Q(grants__tenant_id=tenant_id))
        .distinct()
        .order_by("name")
    )


def connection_available_get(*, tenant_id: uuid.UUID, name: str) -> Connection | None:
    return connections_available(tenant_id=tenant_id).filter(name=name).first()


def connection_endpoint(connection: Connection, *, tenant_id: uuid.UUID) -> Endpoint:
    """How a tenant's bot reaches the connection's models: with the connection's address, key and headers, or —
    once the connection is deactivated or withdrawn from the tenant — not at all (every call fails, saying so)."""
    if not connections_available(tenant_id=tenant_id).filter(pk=connection.pk).exists():
        return Endpoint(
            unavailable=f"The connection {connection.name} is no longer available to this workspace: "
            "choose another one for the bot."
        )
    return connection_address(connection)


def connection_address(connection: Connection) -> Endpoint:
    """The connection's address, key and headers, whoever may use them."""
    credentials = decrypt_credentials(connection.credentials_ciphertext)
    return Endpoint(
        api_key=credentials.get("api_key"),
        api_base=connection.api_base or None,
        api_version=connection.api_version or None,
        headers=credentials.get("headers") or {},
    )


def connection_price(connection: Connection) -> Price | None:
    """The operator's price for the connection's models; None: the model's price applies."""
    if connection.prompt_price_per_1m is None and connection.completion_price_per_1m is None:
        return None
    return Price(
        connection.prompt_price_per_1m or Decimal(0), connection.completion_price_per_1m or Decimal(0), known=True
    )
