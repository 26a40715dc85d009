"""Monthly spend caps: a tenant's (set by the platform's operators) and each bot's (set by owners,
within the tenant's), in USD per calendar month, UTC.

Spend is kept in a ledger (`MonthlySpend`, one row per tenant and per bot and month), added to in
the same transaction that records a turn's usage, at the price the usage statistics use
(minirag/pricing.py: LiteLLM's price list or `MINIRAG_MODEL_PRICES`), and by ingestion for its
embeddings. It is kept whether or not a cap is set, so a cap set mid-month counts the month.

**Admission.** Before a chat turn is stored, `admit` sets aside the most the turn can cost — the
largest prompt the bot can send and its `max_tokens` of answer, at the dearest of the models that
may answer — as a `SpendReservation`, if spend plus what running turns have set aside plus this
turn fits every cap. Admissions of one tenant are serialised on its ledger row (`SELECT … FOR
UPDATE`), so any number of concurrent turns, in any number of processes, cannot together pass a
cap: a turn is refused rather than allowed to overshoot. Recording the turn's usage releases the
reservation and adds what it really cost; a reservation whose turn never recorded (its process
died) stops counting after `RESERVATION_SECONDS`.

Over a cap a chat is refused with 429, `Retry-After` until the month resets, and a `detail` that
names the budget for the tenant's staff and only says the assistant is unavailable to a website
visitor; ingestion that would embed with a paid model stops with a readable error. At 80% and at
100% of each cap a `usage.threshold` webhook fires, once per month.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone
from rest_framework import status
from rest_framework.exceptions import APIException

from minirag.pricing import model_price
from providers.models import MonthlySpend, SpendReservation
from webhooks import events as webhook_events

THRESHOLDS = (80, 100)
# A turn's reservation counts this long at most: longer than any turn can take.
RESERVATION_SECONDS = 15 * 60
# Characters per token when estimating the largest prompt (fewer than usual: an upper bound), and
# the characters of the grounding instructions around the context (chat/prompting.py).
CHARS_PER_TOKEN_BOUND = 3
PROMPT_FRAME_CHARS = 2_000
VISITOR_DETAIL = "The assistant is unavailable right now. Please try again later."


class BudgetExhausted(APIException):
    """429 with `Retry-After` until the budget resets (DRF's handler adds the header from `wait`),
    and `code: budget_exhausted`, so that a client can tell it from a rate limit."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = public_code = "budget_exhausted"

    def __init__(self, detail: str, wait_seconds: int) -> None:
        super().__init__(detail)
        self.wait = wait_seconds


def month_start(moment: dt.datetime | None = None) -> dt.date:
    moment = moment or timezone.now()
    return moment.astimezone(dt.UTC).date().replace(day=1)


def next_month_start(moment: dt.datetime | None = None) -> dt.datetime:
    first = month_start(moment)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    return dt.datetime.combine(following, dt.time.min, tzinfo=dt.UTC)


def seconds_until_reset(moment: dt.datetime | None = None) -> int:
    moment = moment or timezone.now()
    return max(1, int((next_month_start(moment) - moment).total_seconds()))


@dataclass(frozen=True)
class Budget:
    """A cap and what the month has used of it."""

    budget_usd: Decimal | None
    spent_usd: Decimal
    month: dt.date

    @property
    def resets_at(self) -> dt.datetime:
        return next_month_start(dt.datetime.combine(self.month, dt.time.min, tzinfo=dt.UTC))

    def forecast_usd(self, now: dt.datetime | None = None) -> Decimal:
        """The month's spend if it goes on at the pace so far."""
        now = now or timezone.now()
        start = dt.datetime.combine(self.month, dt.time.min, tzinfo=dt.UTC)
        elapsed_days = max((now - start).total_seconds() / 86_400, 1.0)
        days_in_month = (self.resets_at - start).days
        return (self.spent_usd * Decimal(days_in_month) / Decimal(str(elapsed_days))).quantize(Decimal("0.01"))


def _ledger_rows(tenant_id: uuid.UUID, bot_profile_id: uuid.UUID, month: dt.date) -> Any:
    """This month's rows of the tenant and of one of its bots (either may not exist yet)."""
    return MonthlySpend.objects.filter(tenant_id=tenant_id, month=month).filter(
        Q(bot_profile_id__isnull=True) | Q(bot_profile_id=bot_profile_id)
    )


def _locked_spend(tenant_id: uuid.UUID, bot_profile_id: uuid.UUID, month: dt.date) -> dict[Any, Decimal]:
    """What the tenant (key None) and the bot spent this month, with both rows locked until the
    transaction ends. The tenant's row is created on first use: it is the lock every admission of
    the tenant takes, so that they happen one at a time."""
    rows = _ledger_rows(tenant_id, bot_profile_id, month).select_for_update()
    spent_by = {row.bot_profile_id: row.spent_usd for row in rows}
    if None not in spent_by:
        MonthlySpend.objects.get_or_create(tenant_id=tenant_id, bot_profile_id=None, month=month)
        spent_by = {row.bot_profile_id: row.spent_usd for row in rows.all()}
    return spent_by


def _add(tenant_id: uuid.UUID, bot_profile_id: uuid.UUID | None, month: dt.date, cost: Decimal) -> None:
    rows = MonthlySpend.objects.filter(tenant_id=tenant_id, bot_profile_id=bot_profile_id, month=month)
    if not rows.update(spent_usd=F("spent_usd") + cost):
        MonthlySpend.objects.get_or_create(tenant_id=tenant_id, bot_profile_id=bot_profile_id, month=month)
        rows.update(spent_usd=F("spent_usd") + cost)


def spent(tenant_id: uuid.UUID, bot_profile_id: uuid.UUID | None = None, month: dt.date | None = None) -> Decimal:
    """What the tenant (or one of its bots) spent in `month` (default: this one). In its scope."""
    row = (
        MonthlySpend.objects.filter(tenant_id=tenant_id, bot_profile_id=bot_profile_id, month=month or month_start())
        .values_list("spent_usd", flat=True)
        .first()
    )
    return row if row is not None else Decimal(0)


def tenant_budget(tenant: Any) -> Budget:
    return Budget(budget_usd=tenant.monthly_budget_usd, spent_usd=spent(tenant.pk), month=month_start())


def bot_budget(bot: Any) -> Budget:
    return Budget(budget_usd=bot.monthly_budget_usd, spent_usd=spent(bot.tenant_id, bot.pk), month=month_start())


def _reserved(tenant_id: uuid.UUID, bot_profile_id: uuid.UUID) -> tuple[Decimal, Decimal]:
    """What running turns set aside: for the whole tenant, and for one of its bots."""
    totals = SpendReservation.objects.filter(tenant_id=tenant_id, expires_at__gt=timezone.now()).aggregate(
        tenant=Sum("amount_usd"), bot=Sum("amount_usd", filter=Q(bot_profile_id=bot_profile_id))
    )
    return totals["tenant"] or Decimal(0), totals["bot"] or Decimal(0)


def turn_estimate(bot: Any, *, question: str, history: list[dict[str, str]]) -> Decimal:
    """The most one turn of `bot` can cost: its largest prompt (system prompt, the context budget,
    the history, the question) and `max_tokens` of answer, at the dearest model that may answer."""
    prompt_chars = (
        len(bot.system_prompt)
        + settings.MAX_CONTEXT_CHARS
        + PROMPT_FRAME_CHARS
        + sum(len(turn.get("content", "")) for turn in history)
        + len(question)
    )
    prompt_tokens = prompt_chars // CHARS_PER_TOKEN_BOUND + 1
    return max(model_price(model).cost(prompt_tokens, bot.max_tokens) for model in bot.answering_models)


def _refusal(tenant: Any, bot: Any, *, for_visitor: bool, scope: str, budget: Decimal) -> BudgetExhausted:
    resets = next_month_start()
    if for_visitor:
        detail = VISITOR_DETAIL
    else:
        whose = "this workspace" if scope == "tenant" else f"the bot {bot.name}"
        detail = (
            f"The monthly model budget of {whose} ({budget} USD) is used up. It resets on "
            f"{resets:%Y-%m-%d} at 00:00 UTC; until then its chats are refused."
        )
    return BudgetExhausted(detail, seconds_until_reset())


def admit(*, tenant: Any, bot: Any, estimate: Decimal, for_visitor: bool) -> uuid.UUID | None:
    """Set aside `estimate` for a turn of `bot`, or raise `BudgetExhausted`. Returns the
    reservation's id (None when neither the tenant nor the bot has a cap). In the tenant's scope."""
    tenant_cap, bot_cap = tenant.monthly_budget_usd, bot.monthly_budget_usd
    if tenant_cap is None and bot_cap is None:
        return None
    month = month_start()
    # No savepoint of its own: a refusal ends the caller's transaction anyway (nothing is stored).
    with transaction.atomic(savepoint=False):
        spent_by = _locked_spend(tenant.pk, bot.pk, month)
        # A statement of its own, after the lock: one that waited for the lock still sees the data
        # of the moment it started, without the reservation of the turn it waited for.
        reserved_by_tenant, reserved_by_bot = _reserved(tenant.pk, bot.pk)
        checks = [
            ("bot", bot_cap, spent_by.get(bot.pk, Decimal(0)), reserved_by_bot),
            ("tenant", tenant_cap, spent_by[None], reserved_by_tenant),
        ]
        for scope, cap, used, reserved in checks:
            if cap is not None and (used + reserved >= cap or used + reserved + estimate > cap):
                raise _refusal(tenant, bot, for_visitor=for_visitor, scope=scope, budget=cap)
        reservation = SpendReservation.objects.create(
            tenant_id=tenant.pk,
            bot_profile=bot,
            amount_usd=estimate,
            expires_at=timezone.now() + dt.timedelta(seconds=RESERVATION_SECONDS),
        )
    return reservation.pk


def record_spend(*, tenant: Any, bot: Any, cost_usd: Decimal, reservation_id: uuid.UUID | None = None) -> None:
    """Add what a model call cost to this month's ledger of the tenant and the bot, release the
    turn's reservation, and announce a threshold reached. Inside the caller's transaction and
    tenant scope (the usage record's)."""
    if reservation_id is not None:
        SpendReservation.objects.filter(pk=reservation_id).delete()
    if not cost_usd:
        return
    month = month_start()
    caps = {None: tenant.monthly_budget_usd, bot.pk: bot.monthly_budget_usd}
    for bot_profile_id in caps:
        _add(tenant.pk, bot_profile_id, month, cost_usd)
    if not any(caps.values()):
        return
    for row in _ledger_rows(tenant.pk, bot.pk, month):
        cap = caps[row.bot_profile_id]
        for threshold, field in zip(THRESHOLDS, ("warned_80_at", "warned_100_at"), strict=True):
            if not cap or getattr(row, field) is not None or row.spent_usd * 100 < cap * threshold:
                continue
            # Whoever sets the mark sends the webhook: exactly once, however many turns cross it together.
            if MonthlySpend.objects.filter(pk=row.pk, **{f"{field}__isnull": True}).update(**{field: timezone.now()}):
                webhook_events.usage_threshold(
                    tenant_id=tenant.pk,
                    bot_profile_id=row.bot_profile_id,
                    threshold=threshold,
                    budget_usd=cap,
                    spent_usd=row.spent_usd,
                    month=f"{month:%Y-%m}",
                    resets_at=next_month_start().isoformat(),
                )


def exhausted_budget(tenant: Any, bot: Any) -> str | None:
    """Why the tenant's or the bot's budget leaves nothing to spend this month, or None. In scope."""
    for whose, budget in (("the bot's", bot_budget(bot)), ("the workspace's", tenant_budget(tenant))):
        if budget.budget_usd is not None and budget.spent_usd >= budget.budget_usd:
            return (
                f"Paused: {whose} monthly model budget ({budget.budget_usd} USD) is used up; it resets on "
                f"{budget.resets_at:%Y-%m-%d}. Raise the budget, or ingest again then."
            )
    return None
