"""Dashboard pages that are not a model's: the start page's figures, usage (charts, cost, feedback,
unanswered questions) and health. They run inside the tenant scope the middleware set; an operator
picks the tenant (usage) or sees every one (start page)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from chat import stats
from minirag import health as health_checks
from minirag.dashboard import charts
from minirag.dashboard.access import own_tenant
from minirag.dashboard.start import operator_start, tenant_start
from minirag.dashboard.workspace_health import workspace_health
from providers.budgets import tenant_budget
from tenants.models import Tenant
from tenants.tenancy import tenant_scope

USAGE_WINDOWS = (7, 30, 90)


def chosen_tenant(request: HttpRequest) -> tuple[Tenant | None, list[Tenant]]:
    """A tenant user's own tenant; for an operator the one in ?tenant= (slug), else the first."""
    tenant = own_tenant(request)
    if tenant is not None:
        return tenant, []
    tenants = list(Tenant.objects.order_by("name"))
    slug = request.GET.get("tenant")
    if slug:
        chosen = next((t for t in tenants if t.slug == slug), None)
        if chosen is None:
            raise Http404("No tenant with this slug.")
        return chosen, tenants
    return (tenants[0] if tenants else None), tenants


def _days(request: HttpRequest) -> int:
    try:
        days = int(request.GET.get("days", 30))
    except ValueError:
        return 30
    return days if days in USAGE_WINDOWS else 30


def usage(request: HttpRequest) -> HttpResponse:
    tenant, tenants = chosen_tenant(request)
    days = _days(request)
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        "title": "Usage",
        "tenant": tenant,
        "tenants": tenants,
        "days": days,
        "windows": USAGE_WINDOWS,
    }
    if tenant is not None:
        with tenant_scope(tenant):
            context.update(_usage_figures(tenant, days))
    return TemplateResponse(request, "admin/dashboard/usage.html", context)


def _usage_figures(tenant: Tenant, days: int) -> dict[str, Any]:
    day_labels = charts.day_range(days, timezone.now().date())
    by_day = stats.usage_by_day(tenant, days, with_cost=True)
    trend = stats.feedback_trend(tenant, days)
    feedback_series = [
        charts.Series("positive", [row["positive_count"] for row in trend], "#009E73"),
        charts.Series("negative", [row["negative_count"] for row in trend], "#D55E00"),
    ]
    return {
        "budget": tenant_budget(tenant),
        "estimate": stats.cost_estimate(tenant, days),
        "feedback": stats.feedback(tenant, days),
        "unanswered": stats.unanswered(tenant, days)[:50],
        "tokens_chart": charts.stacked_bars(
            day_labels,
            charts.series_by_key(by_day, day_labels, key="model", value="total_tokens"),
            label=f"Tokens per day by model, last {days} days",
            fmt=charts.tokens,
        ),
        "cost_chart": charts.stacked_bars(
            day_labels,
            charts.series_by_key(by_day, day_labels, key="model", value="cost_usd"),
            label=f"Cost per day by model, last {days} days",
            fmt=charts.dollars,
        ),
        "feedback_chart": charts.stacked_bars(
            day_labels, feedback_series, label=f"Feedback per day, last {days} days", fmt=charts.count
        ),
        "by_day": by_day,
        "trend": trend,
    }


def health(request: HttpRequest) -> HttpResponse:
    """Two pages in one. A platform operator: what /v1/system/health/detailed reports, readable —
    each component labelled with what actually runs, with versions and errors, the uptime, the
    configuration with secrets masked. A tenant's staff: their workspace — sources in error,
    failing webhooks, the budget — and whether the service works, in plain words; nothing of the
    platform's configuration, components or versions."""
    components = health_checks.check_components()
    status = health_checks.overall_status(components)
    tenant = own_tenant(request)
    context: dict[str, Any] = {**admin.site.each_context(request), "title": "Health", "status": status}
    if tenant is None:
        context.update(
            {
                "components": [
                    {"key": name, "label": health_checks.component_label(name), **component.full()}
                    for name, component in components.items()
                ],
                "uptime_seconds": health_checks.uptime_seconds(),
                "config": flattened(health_checks.config_summary()),
            }
        )
        return TemplateResponse(request, "admin/dashboard/health.html", context)
    with tenant_scope(tenant):
        counts = health_checks.tenant_counts(tenant)
    context.update(
        {
            "service": [
                {
                    "purpose": health_checks.COMPONENT_PURPOSES.get(name, "Other parts of the service"),
                    "ok": component.status == "ok",
                }
                for name, component in components.items()
            ],
            "workspace_health": workspace_health(tenant),
            "counts": flattened(counts),
        }
    )
    return TemplateResponse(request, "admin/dashboard/health_tenant.html", context)


def start_context(request: HttpRequest) -> dict[str, Any]:
    """What the start page (the dashboard's index) adds to Django's app list: a tenant's checklist
    and numbers, or the operator's overview of every tenant."""
    tenant = own_tenant(request)
    if tenant is None:
        return {"overview": operator_start()}
    return {"start": tenant_start(tenant)}


def flattened(values: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """{"a": {"b": 1}} → [("a.b", 1)]: nested figures as readable rows; None shows as a dash."""
    rows: list[tuple[str, Any]] = []
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            rows.extend(flattened(value, f"{name}."))
        else:
            rows.append((name, "—" if value is None or value == {} else value))
    return rows
