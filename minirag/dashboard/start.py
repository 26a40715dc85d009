"""The dashboard's start page (`/dashboard/`): what a tenant should do next, and how things stand.

For a tenant's staff: a checklist from an empty workspace to a live assistant — a bot, knowledge it
can search, a test, a widget token allowed on their site, the snippet on the site (proved by the
first chat a visitor starts through the widget), optionally a webhook — each step with its live
state and the button that does it; then the week's numbers, each linking to the filtered list.
For a platform operator: every tenant at a glance.

Everything here reads counts and aggregates (a fixed number of queries, whatever the number of
bots, sources, chats or tenants), and runs in the scope it is given: the tenant's own for a tenant
user, the explicitly disabled scope for an operator's overview.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.db.models import Count, Max, Min, Q, Sum
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from bots.models import BotProfile
from chat.models import Chat, Message, UnansweredQuestion
from providers.budgets import Budget, month_start
from providers.models import MonthlySpend
from sources.models import IN_FLIGHT_STATUSES, Source, SourceStatus
from tenants.models import ApiToken, Tenant
from tenants.tenancy import tenant_scope, tenant_scope_disabled
from webhooks.models import Webhook

DONE, NEXT, TODO = "done", "next", "todo"


# --- "This week": the admin's own "Past 7 days" ------------------------------------------------


@dataclass(frozen=True)
class Window:
    """From local midnight seven days ago to local midnight tomorrow: exactly what the admin's
    date filter calls "Past 7 days", so a number and the list it links to always agree."""

    since: dt.datetime
    until: dt.datetime

    @classmethod
    def past_week(cls, now: dt.datetime | None = None) -> Window:
        now = timezone.localtime(now or timezone.now())
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return cls(since=today - dt.timedelta(days=7), until=today + dt.timedelta(days=1))

    def query(self, field_name: str = "created_at") -> dict[str, str]:
        """The admin list's query parameters for this window (as its date filter writes them)."""
        return {f"{field_name}__gte": str(self.since), f"{field_name}__lt": str(self.until)}


def admin_list_url(app_model: str, **params: Any) -> str:
    """`/dashboard/<app>/<model>/?filters`: a changelist, filtered with the admin's own parameters."""
    url = reverse(f"admin:{app_model}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


# --- The tenant's checklist --------------------------------------------------------------------


@dataclass
class Step:
    """One step of the checklist. `state` is done, next (the first step not done: it gets the big
    button) or todo. `action` is the page that does the step; `links` are further pages."""

    key: str
    title: str
    why: str
    summary: str
    action_label: str = ""
    action_url: str = ""
    links: list[tuple[str, str]] = field(default_factory=list)
    warning: str = ""
    warning_url: str = ""
    optional: bool = False
    done: bool = False
    state: str = TODO


@dataclass
class Knowledge:
    """The tenant's active sources by state (one aggregate query)."""

    total: int = 0
    ready: int = 0
    in_flight: int = 0
    errors: int = 0
    pending: int = 0
    ready_chunks: int = 0


@dataclass
class Numbers:
    """The week's figures, each with the filtered admin list that shows them."""

    window: Window
    chats: int
    chats_url: str
    unanswered: int
    unanswered_url: str
    negative_feedback: int
    negative_feedback_url: str
    sources_in_error: int
    sources_in_error_url: str


@dataclass
class TenantStart:
    tenant: Tenant
    steps: list[Step]
    numbers: Numbers
    bot: BotProfile | None  # the bot the checklist's buttons act on

    @property
    def next_step(self) -> Step | None:
        return next((step for step in self.steps if step.state == NEXT), None)

    @property
    def done_count(self) -> int:
        return sum(1 for step in self.steps if step.done and not step.optional)

    @property
    def required_count(self) -> int:
        return sum(1 for step in self.steps if not step.optional)

    @property
    def complete(self) -> bool:
        return self.done_count == self.required_count


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def _knowledge(tenant: Tenant) -> Knowledge:
    sources = Source.objects.filter(tenant=tenant, is_active=True)
    ready = Q(status=SourceStatus.READY)
    row = sources.aggregate(
        total=Count("id"),
        ready=Count("id", filter=ready),
        in_flight=Count("id", filter=Q(status__in=IN_FLIGHT_STATUSES)),
        errors=Count("id", filter=Q(status=SourceStatus.ERROR)),
        pending=Count("id", filter=Q(status=SourceStatus.PENDING)),
        ready_chunks=Coalesce(Sum("chunk_count", filter=ready), 0),
    )
    return Knowledge(**row)


def _focus_bot(tenant: Tenant) -> BotProfile | None:
    """The bot the checklist points at: the active bot with the most searchable knowledge (the one
    the tenant is furthest along with), the oldest among equals."""
    ready = Q(sources__is_active=True, sources__status=SourceStatus.READY)
    return (
        BotProfile.objects.filter(tenant=tenant, is_active=True)
        .annotate(ready_chunks=Coalesce(Sum("sources__chunk_count", filter=ready), 0))
        .order_by("-ready_chunks", "created_at", "pk")
        .first()
    )


def _widget_tokens(tenant: Tenant, now: dt.datetime) -> dict[str, Any]:
    """The tenant's usable widget tokens (active, not revoked, not expired, not the dashboard's
    try-it tokens): how many, how many list the site's origins, and one without origins."""
    usable = ApiToken.objects.filter(
        tenant=tenant,
        bot_profile__isnull=False,
        is_active=True,
        revoked_at__isnull=True,
        is_dashboard_preview=False,
    ).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    # An empty JSON list is stored as "[]": excluding it leaves the tokens that name an origin.
    with_origins = usable.exclude(allowed_origins=[])
    counts = usable.aggregate(total=Count("id"))
    return {
        "total": counts["total"],
        "with_origins": with_origins.count(),
        "without_origins": usable.filter(allowed_origins=[]).values_list("pk", flat=True).first(),
    }


def _chats(tenant: Tenant, window: Window) -> dict[str, Any]:
    widget = Q(started_by_token__isnull=False, started_by_token__is_dashboard_preview=False)
    return Chat.objects.filter(tenant=tenant).aggregate(
        total=Count("id"),
        this_week=Count("id", filter=Q(created_at__gte=window.since, created_at__lt=window.until)),
        widget=Count("id", filter=widget),
        first_widget_at=Min("created_at", filter=widget),
        last_widget_at=Max("created_at", filter=widget),
    )


def tenant_start(tenant: Tenant, *, now: dt.datetime | None = None) -> TenantStart:
    """The checklist and the week's numbers of `tenant` (runs in its scope)."""
    now = now or timezone.now()
    window = Window.past_week(now)
    with tenant_scope(tenant):
        bot_count = BotProfile.objects.filter(tenant=tenant, is_active=True).count()
        bot = _focus_bot(tenant) if bot_count else None
        knowledge = _knowledge(tenant)
        tokens = _widget_tokens(tenant, now)
        chats = _chats(tenant, window)
        webhooks = Webhook.objects.filter(tenant=tenant, is_active=True).count()
        unanswered = UnansweredQuestion.objects.filter(
            tenant=tenant, created_at__gte=window.since, created_at__lt=window.until
        ).count()
        negative = Message.objects.filter(
            tenant=tenant,
            role=Message.Role.ASSISTANT,
            feedback=Message.Feedback.NEGATIVE,
            created_at__gte=window.since,
            created_at__lt=window.until,
        ).count()
    steps = _steps(bot_count, bot, knowledge, tokens, chats, webhooks)
    numbers = Numbers(
        window=window,
        chats=chats["this_week"],
        chats_url=admin_list_url("chat_chat", **window.query()),
        unanswered=unanswered,
        unanswered_url=admin_list_url("chat_unansweredquestion", **window.query()),
        negative_feedback=negative,
        negative_feedback_url=admin_list_url("chat_message", feedback__exact="negative", **window.query()),
        sources_in_error=knowledge.errors,
        sources_in_error_url=sources_in_error_url(),
    )
    return TenantStart(tenant=tenant, steps=steps, numbers=numbers, bot=bot)


def sources_in_error_url() -> str:
    return admin_list_url("sources_source", status__exact=SourceStatus.ERROR, is_active__exact=1)


def _steps(
    bot_count: int,
    bot: BotProfile | None,
    knowledge: Knowledge,
    tokens: dict[str, Any],
    chats: dict[str, Any],
    webhooks: int,
) -> list[Step]:
    bot_url = reverse("admin:bots_botprofile_change", args=[bot.pk]) if bot else ""
    add_bot = reverse("admin:bots_botprofile_add")
    steps: list[Step] = []

    # 1. A bot.
    steps.append(
        Step(
            key="bot",
            title="Create your assistant",
            why="A bot holds the model, the instructions and the knowledge your visitors talk to.",
            summary=(f"{bot.name}" + (f" (and {_plural(bot_count - 1, 'other bot')})" if bot_count > 1 else ""))
            if bot
            else "No bot yet.",
            action_label="Add a bot" if not bot else "Open the bot",
            action_url=add_bot if not bot else bot_url,
            done=bot is not None,
        )
    )

    # 2. Knowledge it can search.
    add_source = reverse("admin:sources_source_add") + (f"?bot_profile={bot.pk}" if bot else "")
    parts = []
    if knowledge.total:
        parts.append(f"{knowledge.ready} of {_plural(knowledge.total, 'source')} ready")
        parts.append(f"{_plural(knowledge.ready_chunks, 'chunk')} searchable")
        if knowledge.in_flight:
            parts.append(f"{knowledge.in_flight} being read now")
        if knowledge.pending:
            parts.append(f"{knowledge.pending} waiting to be ingested")
    knowledge_step = Step(
        key="knowledge",
        title="Give it knowledge",
        why="Add the pages, files or texts it should answer from; it answers only from these.",
        summary="; ".join(parts) + "." if parts else "No sources yet.",
        action_label="Add a source",
        action_url=add_source if bot else "",
        links=[("All sources", admin_list_url("sources_source"))] if knowledge.total else [],
        done=knowledge.ready > 0 and knowledge.ready_chunks > 0,
    )
    if knowledge.errors:
        knowledge_step.warning = f"{_plural(knowledge.errors, 'source')} failed to ingest: see why and fix them."
        knowledge_step.warning_url = sources_in_error_url()
    steps.append(knowledge_step)

    # 3. Try it: its answers, and what its search finds.
    try_url = reverse("admin:bots_botprofile_try", args=[bot.pk]) if bot else ""
    retrieval_url = reverse("admin:bots_botprofile_retrieval_test", args=[bot.pk]) if bot else ""
    steps.append(
        Step(
            key="test",
            title="Test it",
            why="Ask it what your visitors would ask, in the real widget; see what its search finds and why.",
            summary=f"{_plural(chats['total'], 'chat')} so far." if chats["total"] else "Not tried yet.",
            action_label="Try it",
            action_url=try_url,
            links=[("Test retrieval", retrieval_url)] if bot else [],
            done=chats["total"] > 0,
        )
    )

    # 4. A widget token allowed on the site.
    add_token = reverse("admin:tenants_apitoken_add") + (f"?bot_profile={bot.pk}" if bot else "")
    token_step = Step(
        key="token",
        title="Create a widget token for your site",
        why=(
            "The widget's key. It works only from the web addresses (origins) you list, "
            "such as https://www.example.com."
        ),
        summary=(
            f"{_plural(tokens['with_origins'], 'widget token')} with your site's origins."
            if tokens["with_origins"]
            else "No widget token lists your site's origin yet."
        ),
        action_label="Create a widget token",
        action_url=add_token if bot else "",
        done=tokens["with_origins"] > 0,
    )
    if tokens["without_origins"] and not tokens["with_origins"]:
        token_step.warning = "A widget token has no allowed origins: browsers are refused. Add your site's origin."
        token_step.warning_url = reverse("admin:tenants_apitoken_change", args=[tokens["without_origins"]])
    steps.append(token_step)

    # 5. The snippet on the site, proved by the first chat a visitor starts through the widget.
    first = chats["first_widget_at"]
    steps.append(
        Step(
            key="snippet",
            title="Put the snippet on your site",
            why="Copy the script tag from the bot's page and paste it before </body> on your pages.",
            summary=(
                f"{_plural(chats['widget'], 'chat')} from your site; the first on {timezone.localtime(first):%Y-%m-%d}."
                if first
                else "No visitor has chatted through the widget yet."
            ),
            action_label="Get the snippet",
            action_url=f"{bot_url}#embed-snippet" if bot else "",
            done=first is not None,
        )
    )

    # 6. Optional: a webhook into the tenant's own systems.
    steps.append(
        Step(
            key="webhook",
            title="Connect your systems (optional)",
            why=(
                "Webhooks tell your systems when a source is ingested or fails, a chat is answered, "
                "or spend nears the budget."
            ),
            summary=_plural(webhooks, "active webhook") + "." if webhooks else "No webhook.",
            action_label="Add a webhook",
            action_url=reverse("admin:webhooks_webhook_add"),
            links=[("Webhooks", admin_list_url("webhooks_webhook"))] if webhooks else [],
            optional=True,
            done=webhooks > 0,
        )
    )

    next_marked = False
    for step in steps:
        if step.done:
            step.state = DONE
        elif not next_marked:
            step.state = NEXT
            next_marked = True
        else:
            step.state = TODO
    return steps


# --- The operator's overview -------------------------------------------------------------------


@dataclass
class TenantRow:
    tenant: Tenant
    bots: int
    sources: int
    sources_in_error: int
    chats_this_week: int
    budget: Budget
    usage_url: str
    tenant_url: str
    sources_url: str
    errors_url: str

    @property
    def budget_used_percent(self) -> int | None:
        if not self.budget.budget_usd:
            return None
        return int(self.budget.spent_usd * 100 / self.budget.budget_usd)


@dataclass
class OperatorStart:
    rows: list[TenantRow]
    window: Window
    month: dt.date

    @property
    def sources_in_error(self) -> int:
        return sum(row.sources_in_error for row in self.rows)


def _by_tenant(rows: Any, *names: str) -> dict[uuid.UUID, dict[str, Any]]:
    return {row["tenant_id"]: {name: row[name] for name in names} for row in rows}


def operator_start(*, now: dt.datetime | None = None) -> OperatorStart:
    """Every tenant with its bots, sources (and those in error), chats this week and this month's
    spend against its budget: one query per figure, grouped by tenant."""
    now = now or timezone.now()
    window = Window.past_week(now)
    month = month_start(now)
    with tenant_scope_disabled("dashboard: the operator's overview of every tenant"):
        tenants = list(Tenant.objects.order_by("name", "slug"))
        bots = _by_tenant(
            BotProfile.objects.filter(is_active=True).values("tenant_id").annotate(n=Count("id")).order_by(), "n"
        )
        sources = _by_tenant(
            Source.objects.filter(is_active=True)
            .values("tenant_id")
            .annotate(n=Count("id"), errors=Count("id", filter=Q(status=SourceStatus.ERROR)))
            .order_by(),
            "n",
            "errors",
        )
        chats = _by_tenant(
            Chat.objects.filter(created_at__gte=window.since, created_at__lt=window.until)
            .values("tenant_id")
            .annotate(n=Count("id"))
            .order_by(),
            "n",
        )
        spend = _by_tenant(
            MonthlySpend.objects.filter(bot_profile__isnull=True, month=month).values("tenant_id", "spent_usd"),
            "spent_usd",
        )
    rows = []
    for tenant in tenants:
        source_row = sources.get(tenant.pk, {"n": 0, "errors": 0})
        tenant_filter = {"tenant__id__exact": str(tenant.pk)}
        rows.append(
            TenantRow(
                tenant=tenant,
                bots=bots.get(tenant.pk, {}).get("n", 0),
                sources=source_row["n"],
                sources_in_error=source_row["errors"],
                chats_this_week=chats.get(tenant.pk, {}).get("n", 0),
                # What providers.budgets.tenant_budget returns, from the one grouped ledger query.
                budget=Budget(
                    budget_usd=tenant.monthly_budget_usd,
                    spent_usd=spend.get(tenant.pk, {}).get("spent_usd") or Decimal(0),
                    month=month,
                ),
                usage_url=reverse("admin:usage") + "?" + urlencode({"tenant": tenant.slug}),
                tenant_url=reverse("admin:tenants_tenant_change", args=[tenant.pk]),
                sources_url=admin_list_url("sources_source", is_active__exact=1, **tenant_filter),
                errors_url=admin_list_url(
                    "sources_source", status__exact=SourceStatus.ERROR, is_active__exact=1, **tenant_filter
                ),
            )
        )
    return OperatorStart(rows=rows, window=window, month=month)
