"""Dashboard pages for webhooks and their delivery log. Signing secrets are shown once — when the
endpoint is created or its secret rotated — and never again."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from minirag.dashboard.model_admin import (
    ADD,
    CHANGE,
    DELETE,
    VIEW,
    ServiceForm,
    TenantModelAdmin,
    acting_tenant,
    run_for_each,
    secret_once_response,
    status_badge,
)
from tenants.models import Tenant
from tenants.tenancy import tenant_scope
from webhooks.models import SUBSCRIBABLE_EVENTS, DeliveryState, Webhook, WebhookDelivery, WebhookEvent
from webhooks.services import (
    delivery_redeliver,
    webhook_create,
    webhook_delete,
    webhook_rotate_secret,
    webhook_send_test,
    webhook_update,
)

RECENT_DELIVERIES = 15
STATE_TONES = {DeliveryState.PENDING: "info", DeliveryState.SUCCEEDED: "ok", DeliveryState.FAILED: "error"}


class WebhookForm(ServiceForm):
    url = forms.URLField(assume_scheme="https", max_length=2048, label="URL", help_text="Where events are POSTed.")
    events = forms.MultipleChoiceField(
        choices=WebhookEvent.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="What this endpoint receives.",
    )

    secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="16 to 256 characters. Leave empty to have one generated (shown once).",
    )

    class Meta:
        model = Webhook
        fields = ["tenant", "url", "events", "description", "is_active"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance._state.adding:
            self.fields["events"].initial = list(SUBSCRIBABLE_EVENTS)

    def perform(self, tenant: Tenant) -> Webhook:
        data = self.cleaned_data
        if self.instance._state.adding:
            webhook, self.new_secret = webhook_create(
                tenant=tenant,
                url=data["url"],
                events=data["events"],
                description=data.get("description") or "",
                secret=data.get("secret") or None,
            )
            return webhook
        webhook = Webhook.objects.get(pk=self.instance.pk)
        changes = {field: data[field] for field in self.changed_data if field in ("url", "events", "description")}
        if "is_active" in self.changed_data:
            changes["is_active"] = data["is_active"]
        return webhook_update(tenant=tenant, webhook=webhook, **changes)


@admin.register(Webhook)
class WebhookAdmin(TenantModelAdmin):
    operations = frozenset({VIEW, ADD, CHANGE, DELETE})
    form = WebhookForm
    list_display = ["url", "event_list", "is_active", "failure_streak", "last_success_at", "last_failure_at"]
    list_filter = ["is_active"]
    search_fields = ["url", "description"]
    list_select_related = ["tenant"]
    readonly_fields = [
        "id",
        "secret_state",
        "failure_streak",
        "failing_since",
        "disabled_reason",
        "disabled_at",
        "last_success_at",
        "last_failure_at",
        "recent_deliveries",
        "created_at",
        "updated_at",
    ]
    actions = ["send_test", "rotate_secret", "enable_webhooks", "disable_webhooks"]

    class Media:
        css = {"all": ["dashboard/dashboard.css"]}

    def get_fieldsets(self, request: HttpRequest, obj: Webhook | None = None) -> list[tuple[str | None, dict]]:
        if obj is None:
            return self.without_tenant_field(
                request, [(None, {"fields": ["tenant", "url", "events", "description", "secret"]})]
            )
        return [
            (None, {"fields": ["url", "events", "description", "is_active", "secret_state"]}),
            (
                "Health",
                {
                    "fields": [
                        "failure_streak",
                        "failing_since",
                        "disabled_reason",
                        "disabled_at",
                        "last_success_at",
                        "last_failure_at",
                    ]
                },
            ),
            ("Recent deliveries", {"fields": ["recent_deliveries"]}),
            ("Record", {"fields": ["id", "created_at", "updated_at"], "classes": ["collapse"]}),
        ]

    @admin.display(description="Events")
    def event_list(self, webhook: Webhook) -> str:
        return ", ".join(webhook.events)

    @admin.display(description="Signing secret")
    def secret_state(self, webhook: Webhook) -> str:
        return "Set (hidden). Use the “Rotate signing secret” action for a new one." if webhook.has_secret else "None"

    @admin.display(description="Latest")
    def recent_deliveries(self, webhook: Webhook) -> str:
        rows = WebhookDelivery.objects.filter(tenant_id=webhook.tenant_id, webhook=webhook).order_by("-created_at")
        rows = list(rows[:RECENT_DELIVERIES])
        if not rows:
            return "No deliveries yet."
        log_url = reverse("admin:webhooks_webhookdelivery_changelist") + f"?webhook__id__exact={webhook.pk}"
        body = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    reverse("admin:webhooks_webhookdelivery_change", args=[delivery.pk]),
                    delivery.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                    delivery.event,
                    status_badge(delivery.state, delivery.get_state_display(), STATE_TONES[delivery.state]),
                    delivery.attempt_count,
                    delivery.last_status_code or "—",
                    delivery.last_error or "",
                )
                for delivery in rows
            ),
        )
        return format_html(
            '<table class="mr-table"><thead><tr><th>When</th><th>Event</th><th>State</th><th>Attempts</th>'
            '<th>Status</th><th>Error</th></tr></thead><tbody>{}</tbody></table><p><a href="{}">Whole log</a></p>',
            body,
            log_url,
        )

    def response_add(self, request: HttpRequest, obj: Webhook, post_url_continue: str | None = None) -> HttpResponse:
        return secret_once_response(
            request,
            title="Copy the signing secret now",
            opts=self.opts,
            items=[(obj.url, getattr(request, "new_webhook_secret", ""))],
        )

    def save_model(self, request: HttpRequest, obj: Webhook, form: Any, change: bool) -> None:
        # The form's service call saved it; keep a new secret for this response only.
        request.new_webhook_secret = getattr(form, "new_secret", "")

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple:
        deleted, counts, _, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, set(), protected  # the delivery log goes with its endpoint

    def delete_model(self, request: HttpRequest, obj: Webhook) -> None:
        tenant = acting_tenant(request, obj)
        with tenant_scope(tenant):
            webhook_delete(tenant=tenant, webhook=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Webhook]) -> None:
        for webhook in queryset:
            self.delete_model(request, webhook)

    @admin.action(description="Send a test ping")
    def send_test(self, request: HttpRequest, queryset: QuerySet[Webhook]) -> None:
        for webhook in queryset:
            tenant = acting_tenant(request, webhook)
            with tenant_scope(tenant):
                result = webhook_send_test(tenant=tenant, webhook=webhook).result
            if result.succeeded:
                messages.success(request, f"{webhook.url}: answered {result.status_code} in {result.latency_ms} ms.")
            else:
                reason = result.error or f"answered {result.status_code}"
                messages.error(request, f"{webhook.url}: {reason}.")

    @admin.action(description="Rotate signing secret (shows the new secret once)")
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[Webhook]) -> HttpResponse:
        items = []
        for webhook in queryset:
            tenant = acting_tenant(request, webhook)
            with tenant_scope(tenant):
                _, secret = webhook_rotate_secret(tenant=tenant, webhook=webhook)
            items.append((webhook.url, secret))
        return secret_once_response(request, title="Copy the new signing secrets now", opts=self.opts, items=items)

    @admin.action(description="Enable selected webhooks (clears the failure streak)")
    def enable_webhooks(self, request: HttpRequest, queryset: QuerySet[Webhook]) -> None:
        run_for_each(
            request,
            queryset.filter(is_active=False),
            lambda tenant, webhook: webhook_update(tenant=tenant, webhook=webhook, is_active=True),
            done="Enabled {count} webhook(s).",
        )

    @admin.action(description="Disable selected webhooks")
    def disable_webhooks(self, request: HttpRequest, queryset: QuerySet[Webhook]) -> None:
        run_for_each(
            request,
            queryset.filter(is_active=True),
            lambda tenant, webhook: webhook_update(tenant=tenant, webhook=webhook, is_active=False),
            done="Disabled {count} webhook(s).",
        )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(TenantModelAdmin):
    list_display = ["event", "webhook", "state_badge", "attempt_count", "last_status_code", "last_error", "created_at"]
    list_filter = ["state", "event", "webhook", "created_at"]
    search_fields = ["id", "webhook__url", "last_error"]
    list_select_related = ["tenant", "webhook"]
    date_hierarchy = "created_at"
    fields = [
        "id",
        "tenant",
        "webhook",
        "event",
        "state",
        "attempt_count",
        "series_attempts",
        "next_attempt_at",
        "delivered_at",
        "last_status_code",
        "last_latency_ms",
        "last_error",
        "last_response_body",
        "attempt_log",
        "body",
        "created_at",
    ]
    readonly_fields = [*fields]
    actions = ["redeliver"]

    class Media:
        css = {"all": ["dashboard/dashboard.css"]}

    @admin.display(description="State", ordering="state")
    def state_badge(self, delivery: WebhookDelivery) -> str:
        return status_badge(delivery.state, delivery.get_state_display(), STATE_TONES[delivery.state])

    @admin.display(description="Attempts")
    def attempt_log(self, delivery: WebhookDelivery) -> str:
        if not delivery.attempts:
            return "—"
        return format_html_join(
            "",
            "<div>{} · {} · {} ms {}</div>",
            (
                (
                    attempt.get("at", ""),
                    attempt.get("status_code") or "no answer",
                    attempt.get("latency_ms", "?"),
                    attempt.get("error", ""),
                )
                for attempt in delivery.attempts
            ),
        )

    @admin.action(description="Redeliver selected deliveries (same body and delivery id)")
    def redeliver(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        run_for_each(
            request,
            queryset.select_related("webhook"),
            lambda tenant, delivery: delivery_redeliver(tenant=tenant, delivery=delivery),
            done="Queued {count} delivery(ies) again.",
        )
