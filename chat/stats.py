"""Usage, cost and feedback figures of one tenant (reads only; the explicit tenant filter is here).

Costs are the ones recorded with each turn, at the price of that day (minirag/pricing.py), so a
later price change does not rewrite history; prices shown next to them are today's.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Count, F, Max, Q, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from bots.models import BotProfile
from chat.models import Chat, Message, UnansweredQuestion, UsageEvent
from minirag.pricing import model_price
from sources.models import Source
from tenants.models import Tenant, User

MONEY = Decimal("0.000001")


def _since(days: int) -> dt.datetime:
    return timezone.now() - dt.timedelta(days=days)


def _usage(tenant: Tenant, days: int) -> Any:
    return UsageEvent.objects.filter(tenant=tenant, created_at__gte=_since(days))


def _money(value: Decimal | None) -> float:
    return float((value or Decimal(0)).quantize(MONEY))


def _token_sums() -> dict[str, Any]:
    return {
        "prompt_tokens": Coalesce(Sum("prompt_tokens"), 0),
        "completion_tokens": Coalesce(Sum("completion_tokens"), 0),
        "request_count": Count("id"),
        "cost": Sum("cost_usd"),
    }


def _row(values: dict[str, Any], *, with_cost: bool = True) -> dict[str, Any]:
    row = {
        "prompt_tokens": values["prompt_tokens"],
        "completion_tokens": values["completion_tokens"],
        "total_tokens": values["prompt_tokens"] + values["completion_tokens"],
        "request_count": values["request_count"],
    }
    if with_cost:
        row["cost_usd"] = _money(values["cost"])
    return row


def _price(model: str) -> dict[str, float]:
    price = model_price(model)
    return {"prompt_cost_per_1m": float(price.prompt_per_1m), "completion_cost_per_1m": float(price.completion_per_1m)}


def pricing(tenant: Tenant) -> dict[str, Any]:
    """Prices of every model the tenant's bots use or used, and the default chat model's."""
    models = {settings.DEFAULT_CHAT_MODEL}
    models.update(BotProfile.objects.filter(tenant=tenant).values_list("model", flat=True))
    models.update(UsageEvent.objects.filter(tenant=tenant).values_list("model", flat=True).distinct())
    return {
        "models": {model: _price(model) for model in sorted(models)},
        "default": {"prompt_cost_per_1m": 0.0, "completion_cost_per_1m": 0.0},
        "unpriced_models": sorted(model for model in models if not model_price(model).known),
    }


def overview(tenant: Tenant) -> dict[str, Any]:
    sums = UsageEvent.objects.filter(tenant=tenant).aggregate(
        prompt=Coalesce(Sum("prompt_tokens"), 0), completion=Coalesce(Sum("completion_tokens"), 0)
    )
    return {
        "bot_profiles": BotProfile.objects.filter(tenant=tenant, is_active=True).count(),
        "sources": Source.objects.filter(tenant=tenant, is_active=True).count(),
        "chats": Chat.objects.filter(tenant=tenant).count(),
        "total_prompt_tokens": sums["prompt"],
        "total_completion_tokens": sums["completion"],
        "total_tokens": sums["prompt"] + sums["completion"],
    }


def handoffs(tenant: Tenant, days: int, bot_profile_id: uuid.UUID | None = None) -> dict[str, Any]:
    """Talking to a person (inbox/): chats whose (last) hand-off was requested in the window, how
    many a person took over and how long that took on average, operator messages in the window,
    and the chats waiting for or handled by a person now."""
    chats = Chat.objects.filter(tenant=tenant)
    operator_messages = Message.objects.filter(tenant=tenant, role=Message.Role.OPERATOR, created_at__gte=_since(days))
    if bot_profile_id is not None:
        chats = chats.filter(bot_profile_id=bot_profile_id)
        operator_messages = operator_messages.filter(chat__bot_profile_id=bot_profile_id)
    requested = chats.filter(handoff_requested_at__gte=_since(days))
    waits = [
        (taken - asked).total_seconds()
        for asked, taken in requested.filter(taken_over_at__gte=F("handoff_requested_at")).values_list(
            "handoff_requested_at", "taken_over_at"
        )
    ]
    now = chats.aggregate(
        waiting=Count("pk", filter=Q(handling=Chat.Handling.NEEDS_HUMAN)),
        handled=Count("pk", filter=Q(handling=Chat.Handling.HUMAN)),
    )
    return {
        "requested": requested.count(),
        "taken_over": len(waits),
        "avg_seconds_to_takeover": round(sum(waits) / len(waits), 1) if waits else None,
        "operator_messages": operator_messages.count(),
        "waiting_now": now["waiting"],
        "handled_now": now["handled"],
    }


def usage_by_day(tenant: Tenant, days: int, *, with_cost: bool = False) -> list[dict[str, Any]]:
    rows = (
        _usage(tenant, days)
        .annotate(date=TruncDate("created_at"))
        .values("date", "model")
        .annotate(**_token_sums())
        .order_by("date", "model")
    )
    return [{"date": row["date"].isoformat(), "model": row["model"], **_row(row, with_cost=with_cost)} for row in rows]


def usage_by_bot(tenant: Tenant, days: int) -> list[dict[str, Any]]:
    rows = (
        _usage(tenant, days)
        .values("bot_profile_id", "bot_profile__name", "model")
        .annotate(**_token_sums())
        .order_by("bot_profile__name", "model")
    )
    return [
        {
            "bot_profile_id": str(row["bot_profile_id"]),
            "bot_name": row["bot_profile__name"],
            "model": row["model"],
            **_row(row),
        }
        for row in rows
    ]


def usage_by_model(tenant: Tenant, days: int) -> list[dict[str, Any]]:
    rows = _usage(tenant, days).values("model").annotate(**_token_sums()).order_by("model")
    return [{"model": row["model"], **_row(row), **_price(row["model"])} for row in rows]


def cost_estimate(tenant: Tenant, days: int) -> dict[str, Any]:
    """Spend in the window and the month it projects: the daily average is taken over the days
    since the first usage in the window (a tenant that started last week is not averaged over a
    month of nothing)."""
    usage = _usage(tenant, days)
    totals = usage.aggregate(cost=Sum("cost_usd"))
    first = usage.order_by("created_at").values_list("created_at", flat=True).first()
    active_days = usage.annotate(date=TruncDate("created_at")).values("date").distinct().count()
    total = totals["cost"] or Decimal(0)
    observed_days = min(days, (timezone.now().date() - first.date()).days + 1) if first else 0
    daily = total / observed_days if observed_days else Decimal(0)
    return {
        "total_cost_usd": _money(total),
        "daily_avg_cost_usd": _money(daily),
        "projected_monthly_usd": _money(daily * 30),
        "active_days": active_days,
        "by_model": usage_by_model(tenant, days),
        "by_bot": usage_by_bot(tenant, days),
    }


def _feedback_counts() -> dict[str, Any]:
    return {
        "total_messages": Count("id"),
        "positive_count": Count("id", filter=Q(feedback=Message.Feedback.POSITIVE)),
        "negative_count": Count("id", filter=Q(feedback=Message.Feedback.NEGATIVE)),
    }


def _rated(row: dict[str, Any]) -> dict[str, Any]:
    rated = row["positive_count"] + row["negative_count"]
    return {
        "total_messages": row["total_messages"],
        "total_with_feedback": rated,
        "positive_count": row["positive_count"],
        "negative_count": row["negative_count"],
        "feedback_rate": round(rated / row["total_messages"], 4) if row["total_messages"] else 0.0,
    }


def _answers(tenant: Tenant, days: int, bot_profile_id: uuid.UUID | None) -> Any:
    answers = Message.objects.filter(tenant=tenant, role=Message.Role.ASSISTANT, created_at__gte=_since(days))
    return answers.filter(chat__bot_profile_id=bot_profile_id) if bot_profile_id else answers


def feedback(tenant: Tenant, days: int, bot_profile_id: uuid.UUID | None = None) -> dict[str, Any]:
    answers = _answers(tenant, days, bot_profile_id)
    by_bot = (
        answers.values("chat__bot_profile_id", "chat__bot_profile__name")
        .annotate(**_feedback_counts())
        .order_by("chat__bot_profile__name")
    )
    return {
        **_rated(answers.aggregate(**_feedback_counts())),
        "by_bot": [
            {
                "bot_profile_id": str(row["chat__bot_profile_id"]),
                "bot_name": row["chat__bot_profile__name"],
                **_rated(row),
            }
            for row in by_bot
        ],
    }


def feedback_trend(tenant: Tenant, days: int, bot_profile_id: uuid.UUID | None = None) -> list[dict[str, Any]]:
    """One row per day of the window, days without answers included (a chart needs them)."""
    rows = {
        row["date"]: row
        for row in _answers(tenant, days, bot_profile_id)
        .annotate(date=TruncDate("created_at"))
        .values("date")
        .annotate(**_feedback_counts())
    }
    today = timezone.now().date()
    trend = []
    for offset in range(days - 1, -1, -1):
        date = today - dt.timedelta(days=offset)
        row = rows.get(date, {"positive_count": 0, "negative_count": 0, "total_messages": 0})
        trend.append(
            {
                "date": date.isoformat(),
                "positive_count": row["positive_count"],
                "negative_count": row["negative_count"],
                "total_messages": row["total_messages"],
            }
        )
    return trend


def unanswered(
    tenant: Tenant, days: int, bot_profile_id: uuid.UUID | None = None, *, started_by: User | None = None
) -> list[dict[str, Any]]:
    """The questions the bots refused, grouped, most frequent first: the content gap list.
    They are visitors' words, so `started_by` limits them to that user's own chats (a member of
    a tenant whose members read only their own chats: chat/selectors.py)."""
    questions = UnansweredQuestion.objects.filter(tenant=tenant, created_at__gte=_since(days))
    if bot_profile_id:
        questions = questions.filter(bot_profile_id=bot_profile_id)
    if started_by is not None:
        questions = questions.filter(chat__started_by_user=started_by)
    grouped = (
        questions.values("bot_profile_id", "bot_profile__name", "normalized_question")
        .annotate(count=Count("id"), last_asked_at=Max("created_at"), best_score=Max("best_score"))
        .order_by("-count", "-last_asked_at")[:200]
    )
    examples: dict[tuple[Any, str], str] = {}
    for row in questions.order_by("-created_at").values("bot_profile_id", "normalized_question", "question")[:2000]:
        examples.setdefault((row["bot_profile_id"], row["normalized_question"]), row["question"])
    return [
        {
            "question": examples.get((row["bot_profile_id"], row["normalized_question"])) or row["normalized_question"],
            "count": row["count"],
            "last_asked_at": row["last_asked_at"].isoformat(),
            "best_score": round(row["best_score"], 4) if row["best_score"] is not None else None,
            "bot_profile_id": str(row["bot_profile_id"]),
            "bot_name": row["bot_profile__name"],
        }
        for row in grouped
    ]


def chat_counts(tenant: Tenant) -> dict[str, Any]:
    """Chats, messages and all-time usage, for the detailed health view."""
    usage = UsageEvent.objects.filter(tenant=tenant).aggregate(**_token_sums())
    return {
        "chats": Chat.objects.filter(tenant=tenant).count(),
        "messages": Message.objects.filter(tenant=tenant).count(),
        "usage": _row(usage),
    }
