"""Operator console for sources (the full console comes with the dashboard issue)."""

from __future__ import annotations

from django.contrib import admin

from sources.models import Chunk, Document, Source


class DocumentInline(admin.TabularInline):
    model = Document
    fields = ["title", "url", "mime_type", "char_count", "updated_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ["name", "tenant", "bot_profile", "source_type", "status", "chunk_count", "is_active", "updated_at"]
    list_filter = ["tenant", "status", "source_type", "is_active", "authority"]
    search_fields = ["name", "description"]
    readonly_fields = [
        "id",
        "status",
        "error_message",
        "document_count",
        "chunk_count",
        "chunks_done",
        "chunks_total",
        "last_refreshed_at",
        "next_refresh_at",
        "created_at",
        "updated_at",
    ]
    exclude = ["config_secrets_ciphertext"]
    inlines = [DocumentInline]


@admin.register(Chunk)
class ChunkAdmin(admin.ModelAdmin):
    list_display = ["source", "chunk_index", "embedding_model", "created_at"]
    list_filter = ["tenant", "embedding_model"]
    search_fields = ["content"]
    exclude = ["embedding"]
    readonly_fields = ["id", "source", "document", "chunk_index", "content", "content_hash", "embedding_model"]

    def has_add_permission(self, request: object) -> bool:
        return False
