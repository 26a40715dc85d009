"""What a tenant and its bots have spent on models this month, and what running turns have set
aside: the ledger the spend caps are enforced on (providers/budgets.py)."""

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


class SpendReservation(TenantOwnedModel):
    """What one running chat turn may still cost at most, set aside when it was admitted and
    released when its answer is recorded. One that outlives `expires_at` (its process died mid-turn)
    no longer counts."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    bot_profile = models.ForeignKey("bots.BotProfile", on_delete=models.CASCADE, related_name="+")
    amount_usd = models.DecimalField(max_digits=16, decimal_places=8)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["tenant", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.amount_usd} USD until {self.expires_at:%H:%M:%S}"
