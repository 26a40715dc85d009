"""Monthly spend caps: a tenant's (set by the platform's operators) and each bot's (set by owners,
within the tenant's), in USD per calendar month, UTC.

Spend is kept in a ledger (`MonthlySpend`, one row per tenant and per bot and month), added to in
the same transaction that records a turn's usage, at the price the usage statistics use
(minirag/pricing.py: LiteLLM's price list or `MINIRAG_MODEL_PRICES`), and by ingestion for its
embeddings. It is kept whether or not a cap is set, so a cap set mid-month counts the month.

**Admission.** Before a chat turn is stored, `admit` sets aside the most the turn can cost — the
largest prompt the bot can send and its `max_tokens` of answer, at the dearest of the models that
may answer — on this month's ledger rows of the tenant and the bot (`reserved_usd`), if spend plus
what running turns have set aside plus this turn fits every cap. Setting aside is one `UPDATE …
RETURNING` of both rows: the update locks them, and in PostgreSQL an update that waited for a
lock works on the row as the turn it waited for left it, so any number of concurrent turns, in any
number of processes, are admitted one at a time on their tenant's row and cannot together pass a
cap: a turn is refused rather than allowed to overshoot. Recording the turn's usage adds what it
really cost and releases what it set aside, in one more `UPDATE … RETURNING` that also tells
whether a threshold was reached. What a turn set aside that never recorded (its process died)
stops counting once no turn of the tenant (or bot) has been admitted for `RESERVATION_SECONDS`:
the next admission then starts from zero. Until then it only makes the cap stricter, never looser.

Over a cap a chat is refused with 429, `Retry-After` until the month resets, and a `detail` that
names the budget for the tenant's staff and only says the assistant is unavailable to a website
visitor; ingestion that would embed with a paid model stops with a readable error. At 80% and at
100% of each cap a `usage.threshold` webhook fires, once per month — or once more after the cap is
raised above what was spent, when the new cap's mark is reached.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from rest_framework import status
from rest_framework.exceptions import APIException

from bots.services import bot_model_price
from minirag.pricing import USD_PLACES
from providers.models import MonthlySpend
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


@dataclass(frozen=True)
class Reservation:
    """What a turn set aside at admission, on the ledger rows of `month`."""

    month: dt.date
    amount_usd: Decimal


@dataclass(frozen=True)
class _LedgerRow:
    id: int
    bot_profile_id: uuid.UUID | None
    spent_usd: Decimal
    reserved_usd: Decimal
    warned_80_at: Any
    warned_100_at: Any


def _prepared(field_name: str, value: Any) -> Any:
    """`value` as the database takes it for a column of the ledger (a UUID is hex text on SQLite)."""
    return MonthlySpend._meta.get_field(field_name).get_db_prep_value(value, connection)


def _update_returning(
    assignments: str,
    parameters: list[Any],
    tenant_id: uuid.UUID,
    bot_profile_id: uuid.UUID,
    month: dt.date,
    *,
    only_ids: list[int] | None = None,
) -> dict[uuid.UUID | None, _LedgerRow]:
    """One `UPDATE … RETURNING` of the tenant's and the bot's ledger rows of `month` (PostgreSQL and
    SQLite both have it; Django's `update()` returns only a count): the rows it changed, by bot (None:
    the tenant's). It runs in the tenant's scope like any statement (row-level security applies)."""
    where = "tenant_id = %s AND month = %s AND (bot_profile_id IS NULL OR bot_profile_id = %s)"
    where_parameters = [
        _prepared("tenant", tenant_id),
        _prepared("month", month),
        _prepared("bot_profile", bot_profile_id),
    ]
    if only_ids:
        where += f" AND id IN ({', '.join(['%s'] * len(only_ids))})"
        where_parameters += only_ids
    sql = (
        f"UPDATE {MonthlySpend._meta.db_table} SET {assignments} WHERE {where} "  # noqa: S608 - our own names
        "RETURNING id, bot_profile_id, spent_usd, reserved_usd, warned_80_at, warned_100_at"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*parameters, *where_parameters])
        fetched = cursor.fetchall()
    rows = {}
    for row_id, bot_id, spent_usd, reserved_usd, warned_80_at, warned_100_at in fetched:
        key = None if bot_id is None else uuid.UUID(str(bot_id))
        rows[key] = _LedgerRow(row_id, key, _usd(spent_usd), _usd(reserved_usd), warned_80_at, warned_100_at)
    return rows


def _update_both(
    assignments: str, parameters: list[Any], tenant_id: uuid.UUID, bot_profile_id: uuid.UUID, month: dt.date
) -> dict[uuid.UUID | None, _LedgerRow]:
    """`_update_returning` of both rows, creating either when it does not exist yet (the first turn
    of the month, or of the bot): each row is changed exactly once, whoever created it."""
    rows = _update_returning(assignments, parameters, tenant_id, bot_profile_id, month)
    missing = [key for key in (None, bot_profile_id) if key not in rows]
    if missing:
        created = [
            MonthlySpend.objects.get_or_create(tenant_id=tenant_id, bot_profile_id=key, month=month)[0].pk
            for key in missing
        ]
        rows.update(_update_returning(assignments, parameters, tenant_id, bot_profile_id, month, only_ids=created))
    return rows


def _usd(value: Any) -> Decimal:
    # SQLite computes with floats: back to the column's 8 decimal places.
    return Decimal(str(value)).quantize(USD_PLACES)


def _release_assignments(amount: Decimal) -> tuple[str, list[Any]]:
    return "reserved_usd = CASE WHEN reserved_usd > %s THEN reserved_usd - %s ELSE 0 END", [
        _prepared("reserved_usd", amount),
        _prepared("reserved_usd", amount),
    ]


def _reserve(tenant_id: uuid.UUID, bot_profile_id: uuid.UUID, estimate: Decimal) -> dict[Any, _LedgerRow]:
    """Add `estimate` to what this month's rows of the tenant and the bot set aside — from zero on a
    row where nothing was admitted for RESERVATION_SECONDS — and return the rows as they are now."""
    now = timezone.now()
    assignments = (
        "reserved_usd = CASE WHEN reserved_until IS NULL OR reserved_until < %s THEN %s ELSE reserved_usd + %s END, "
        "reserved_until = %s"
    )
    parameters = [
        _prepared("reserved_until", now),
        _prepared("reserved_usd", estimate),
        _prepared("reserved_usd", estimate),
        _prepared("reserved_until", now + dt.timedelta(seconds=RESERVATION_SECONDS)),
    ]
    return _update_both(assignments, parameters, tenant_id, bot_profile_id, month_start(now))


def _record(
    tenant_id: uuid.UUID, bot_profile_id: uuid.UUID, cost: Decimal, reservation: Reservation | None
) -> dict[Any, _LedgerRow]:
    """Add `cost` to this month's rows of the tenant and the bot, release `reservation`, and return
    the rows as they are now."""
    month = month_start()
    release = Decimal(0)
    if reservation is not None and reservation.month == month:
        release = reservation.amount_usd
    elif reservation is not None:  # admitted last month: released there
        _update_returning(*_release_assignments(reservation.amount_usd), tenant_id, bot_profile_id, reservation.month)
    assignments, parameters = _release_assignments(release)
    return _update_both(
        f"spent_usd = spent_usd + %s, {assignments}",
        [_prepared("spent_usd", cost), *parameters],
        tenant_id,
        bot_profile_id,
        month,
    )


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
    return max(bot_model_price(bot, model).cost(prompt_tokens, bot.max_tokens) for model in bot.answering_models)


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


def admit(*, tenant: Any, bot: Any, estimate: Decimal, for_visitor: bool) -> Reservation | None:
    """Set aside `estimate` for a turn of `bot`, or raise `BudgetExhausted`. Returns what was set aside
    (None when neither the tenant nor the bot has a cap), for `record_spend` to release. In the tenant's
    scope and, for the refusal to undo the reservation, inside the caller's transaction."""
    tenant_cap, bot_cap = tenant.monthly_budget_usd, bot.monthly_budget_usd
    if tenant_cap is None and bot_cap is None:
        return None
    # No savepoint of its own: a refusal ends the caller's transaction anyway (nothing is stored).
    with transaction.atomic(savepoint=False):
        rows = _reserve(tenant.pk, bot.pk, estimate)
        for scope, cap, row in (("bot", bot_cap, rows[bot.pk]), ("tenant", tenant_cap, rows[None])):
            before = row.spent_usd + row.reserved_usd - estimate  # spent, and set aside by running turns
            if cap is not None and (before >= cap or before + estimate > cap):
                raise _refusal(tenant, bot, for_visitor=for_visitor, scope=scope, budget=cap)
    return Reservation(month=month_start(), amount_usd=estimate)


def record_spend(*, tenant: Any, bot: Any, cost_usd: Decimal, reservation: Reservation | None = None) -> None:
    """Add what a model call cost to this month's ledger of the tenant and the bot, release the
    turn's reservation, and announce a threshold reached. Inside the caller's transaction and
    tenant scope (the usage record's)."""
    if reservation is None and not cost_usd:
        return
    rows = _record(tenant.pk, bot.pk, cost_usd, reservation)
    caps = {None: tenant.monthly_budget_usd, bot.pk: bot.monthly_budget_usd}
    if not cost_usd or not any(caps.values()):
        return
    month = month_start()
    for row in rows.values():
        cap = caps[row.bot_profile_id]
        for threshold, field in zip(THRESHOLDS, ("warned_80_at", "warned_100_at"), strict=True):
            reached = bool(cap) and row.spent_usd * 100 >= cap * threshold
            warned = getattr(row, field) is not None
            if warned and not reached:
                # The cap was raised (or removed) since the warning: warn again when the new one is reached.
                MonthlySpend.objects.filter(pk=row.id).update(**{field: None})
                continue
            if warned or not reached:
                continue
            # Whoever sets the mark sends the webhook: exactly once, however many turns cross it together.
            if MonthlySpend.objects.filter(pk=row.id, **{f"{field}__isnull": True}).update(**{field: timezone.now()}):
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
