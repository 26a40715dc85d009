"""Operator console for bot profiles. Provider credentials are never displayed."""

from __future__ import annotations

from django.contrib import admin

from bots.models import BotProfile


@admin.register(BotProfile)
class BotProfileAdmin(admin.ModelAdmin):
    list_display = ["name", "tenant", "model", "embedding_model", "is_active", "has_credentials", "created_at"]
    list_filter = ["tenant", "is_active", "model"]
    search_fields = ["name", "description"]
    readonly_fields = ["id", "has_credentials", "created_at", "updated_at"]

    @admin.display(boolean=True)
    def has_credentials(self, bot: BotProfile) -> bool:
        return bot.has_credentials
