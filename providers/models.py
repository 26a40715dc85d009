"""What a tenant and its bots have spent on models this month, and what running turns have set
aside: the ledger the spend caps are enforced on (providers/budgets.py); and the platform's named
connections to model servers, granted to tenants."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import models
from django.utils import timezone

from tenants.tenancy import TenantOwnedModel


class MonthlySpend(TenantOwnedModel):
    """One tenant's (no bot) or one bot's model spend in one calendar month (UTC). The tenant's row
    is also the lock every admission takes, so that concurrent turns are admitted one at a time."""

    id = models.BigAutoField(primary_key=True)
    bot_profile = models.ForeignKey(
        "bots.BotProfile", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    month = models.DateField(help_text="The first day of the month.")
    spent_usd = models.DecimalField(max_digits=16, decimal_places=8, default=Decimal(0))
    # When the usage.threshold webhook fired for 80% and 100% of the budget this month (once each).
    warned_80_at = models.DateTimeField(null=True, blank=True)
    warned_100_at = models.DateTimeField(null=True, blank=True)
    # What running turns have set aside (the most they can still cost), and until when the latest of
    # them counts: after that nothing admitted is still running, and the next admission starts anew.
    reserved_usd = models.DecimalField(max_digits=16, decimal_places=8, default=Decimal(0))
    reserved_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "month"], condition=models.Q(bot_profile__isnull=True), name="spend_one_tenant_row"
            ),
            models.UniqueConstraint(
                fields=["tenant", "bot_profile", "month"],
                condition=models.Q(bot_profile__isnull=False),
                name="spend_one_bot_row",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m}: {self.spent_usd} USD"


class Connection(models.Model):
    """A model endpoint the platform's operators set up once — the company's vLLM, an Azure
    resource, a gateway — with its key and headers, for the tenants it is granted to (or all). A
    tenant's bot picks it by `name` and never sees its key, headers or address.

    Platform-wide, like a tenant: no `tenant_id`, managed by operators only (providers/admin.py);
    what a tenant may pick is its grants (`ConnectionGrant`), read through its scope."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.SlugField(
        max_length=60, unique=True, help_text='What tenants pick, e.g. "company-vllm". Letters, digits, - and _.'
    )
    description = models.CharField(max_length=300, blank=True, default="", help_text="Shown to tenants.")
    api_base = models.CharField("API base URL", max_length=500, blank=True, default="")
    api_version = models.CharField("API version", max_length=50, blank=True, default="")
    # Fernet ciphertext of {"api_key": "...", "headers": {...}}, as a bot's credentials; empty: none.
    credentials_ciphertext = models.TextField(blank=True, default="", editable=False)
    # The model strings (as LiteLLM routes them) reached through this connection, by what they do.
    chat_models = models.JSONField(default=list, blank=True)
    embedding_models = models.JSONField(default=list, blank=True)
    # The operator's price for the connection's models, USD per million tokens; null: LiteLLM's list
    # (or MINIRAG_MODEL_PRICES), as for any model.
    prompt_price_per_1m = models.DecimalField(
        "Prompt price (USD per 1M tokens)", max_digits=12, decimal_places=6, null=True, blank=True
    )
    completion_price_per_1m = models.DecimalField(
        "Completion price (USD per 1M tokens)", max_digits=12, decimal_places=6, null=True, blank=True
    )
    for_every_tenant = models.BooleanField(
        "Available to every tenant", default=False, help_text="Otherwise only to the tenants it is granted to."
    )
    is_active = models.BooleanField(default=True, help_text="An inactive connection is neither listed nor called.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def has_credentials(self) -> bool:
        return bool(self.credentials_ciphertext)

    @property
    def served_models(self) -> list[str]:
        return list(dict.fromkeys([*self.chat_models, *self.embedding_models]))

    def serves(self, model: str) -> bool:
        return model in self.chat_models or model in self.embedding_models


class ConnectionGrant(TenantOwnedModel):
    """One tenant may pick one connection (besides the connections available to every tenant)."""

    id = models.BigAutoField(primary_key=True)
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="grants")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "connection"], name="one_grant_per_tenant")]

    def __str__(self) -> str:
        return f"{self.connection} for {self.tenant_id}"
