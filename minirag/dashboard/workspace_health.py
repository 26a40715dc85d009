"""What the health page shows a tenant's staff: what in *their* workspace needs attention — sources
that failed to ingest, webhooks that fail, the month's spend against their budget — and whether the
service works, in plain words. Never the platform's configuration, components or versions: those
are the operators' (the views decide who sees what).

A fixed number of queries whatever the number of sources or webhooks; runs in the tenant's scope.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import OuterRef, Q, Subquery
from django.urls import reverse
from django.utils import timezone

from minirag.dashboard.start import Window, admin_list_url, sources_in_error_url
from providers.budgets import Budget, tenant_budget
from sources.models import Source, SourceStatus
from tenants.models import Tenant
from tenants.tenancy import tenant_scope
from webhooks.models import DeliveryState, Webhook, WebhookDelivery

SHOWN_ROWS = 20


@dataclass
class WorkspaceHealth:
    sources_in_error: list[dict[str, Any]]
    sources_in_error_count: int
    sources_in_error_url: str
    failing_webhooks: list[dict[str, Any]]
    failed_deliveries_this_week: int
    failed_deliveries_url: str
    retrying_deliveries: int
    retrying_deliveries_url: str
    budget: Budget
    forecast_usd: Any
    window: Window

    @property
    def budget_used_percent(self) -> int | None:
        if not self.budget.budget_usd:
            return None
        return int(self.budget.spent_usd * 100 / self.budget.budget_usd)

    @property
    def forecast_over_budget(self) -> bool:
        return self.budget.budget_usd is not None and self.forecast_usd > self.budget.budget_usd

    @property
    def needs_attention(self) -> bool:
        return bool(self.sources_in_error_count or self.failing_webhooks or self.failed_deliveries_this_week)


def workspace_health(tenant: Tenant, *, now: dt.datetime | None = None) -> WorkspaceHealth:
    now = now or timezone.now()
    window = Window.past_week(now)
    with tenant_scope(tenant):
        errors = Source.objects.filter(tenant=tenant, is_active=True, status=SourceStatus.ERROR)
        error_count = errors.count()
        error_rows = list(errors.select_related("bot_profile", "parent").order_by("-updated_at")[:SHOWN_ROWS])
        latest_failed_attempt = (
            WebhookDelivery.objects.filter(webhook=OuterRef("pk"), attempt_count__gt=0)
            .exclude(state=DeliveryState.SUCCEEDED)
            .order_by("-updated_at")
        )
        webhooks = list(
            Webhook.objects.filter(tenant=tenant)
            .filter(Q(failure_streak__gt=0) | ~Q(disabled_reason=""))
            .annotate(
                last_error=Subquery(latest_failed_attempt.values("last_error")[:1]),
                last_status_code=Subquery(latest_failed_attempt.values("last_status_code")[:1]),
            )
            .order_by("-last_failure_at")[:SHOWN_ROWS]
        )
        deliveries = WebhookDelivery.objects.filter(tenant=tenant)
        failed_this_week = deliveries.filter(
            state=DeliveryState.FAILED, created_at__gte=window.since, created_at__lt=window.until
        ).count()
        retrying = deliveries.filter(state=DeliveryState.PENDING, attempt_count__gt=0).count()
        budget = tenant_budget(tenant)
    return WorkspaceHealth(
        sources_in_error=[
            {
                "name": source.name,
                "url": reverse("admin:sources_source_change", args=[source.pk]),
                "bot": source.bot_profile.name,
                "parent": source.parent.name if source.parent_id else "",
                "error": source.error_message or "No message was recorded.",
                "when": source.updated_at,
            }
            for source in error_rows
        ],
        sources_in_error_count=error_count,
        sources_in_error_url=sources_in_error_url(),
        failing_webhooks=[
            {
                "url": webhook.url,
                "page": reverse("admin:webhooks_webhook_change", args=[webhook.pk]),
                "active": webhook.is_active,
                "streak": webhook.failure_streak,
                "failing_since": webhook.failing_since,
                "last_failure_at": webhook.last_failure_at,
                "disabled_reason": webhook.disabled_reason,
                "last_error": _attempt_error(webhook.last_status_code, webhook.last_error),
                "deliveries_url": admin_list_url("webhooks_webhookdelivery", webhook__id__exact=str(webhook.pk)),
            }
            for webhook in webhooks
        ],
        failed_deliveries_this_week=failed_this_week,
        failed_deliveries_url=admin_list_url(
            "webhooks_webhookdelivery", state__exact=DeliveryState.FAILED, **window.query()
        ),
        retrying_deliveries=retrying,
        retrying_deliveries_url=admin_list_url("webhooks_webhookdelivery", state__exact=DeliveryState.PENDING),
        budget=budget,
        forecast_usd=budget.forecast_usd(now),
        window=window,
    )


def _attempt_error(status_code: int | None, error: str | None) -> str:
    if error:
        return error
    if status_code:
        return f"Your endpoint answered HTTP {status_code}."
    return ""
