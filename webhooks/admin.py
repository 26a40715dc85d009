"""Operator console for webhooks and their delivery log. Signing secrets are never displayed."""

from __future__ import annotations

from django.contrib import admin

from webhooks.models import Webhook, WebhookDelivery


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    list_display = ["url", "tenant", "is_active", "failure_streak", "last_success_at", "last_failure_at", "created_at"]
    list_filter = ["tenant", "is_active"]
    search_fields = ["url", "description"]
    readonly_fields = [
        "id",
        "failure_streak",
        "failing_since",
        "disabled_reason",
        "disabled_at",
        "last_success_at",
        "last_failure_at",
        "created_at",
        "updated_at",
    ]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["event", "webhook", "tenant", "state", "attempt_count", "last_status_code", "created_at"]
    list_filter = ["state", "event", "tenant"]
    search_fields = ["id", "webhook__url"]
    readonly_fields = [field.name for field in WebhookDelivery._meta.fields]
