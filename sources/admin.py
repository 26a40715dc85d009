"""Dashboard pages for sources: add text, files, pages, sitemaps, crawls and external search; watch
ingestion progress live; read errors; ingest again. Secrets in a source's config are write-only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest, JsonResponse
from django.urls import URLPattern, path
from django.utils.html import format_html
from django.utils.text import Truncator

from minirag.dashboard.model_admin import (
    ADD,
    CHANGE,
    VIEW,
    ReadOnlyInline,
    ServiceForm,
    TenantModelAdmin,
    acting_tenant,
    run_for_each,
    status_badge,
)
from minirag.errors import ApplicationError
from minirag.lookups import parse_uuid
from sources.events import progress_snapshot
from sources.models import (
    IN_FLIGHT_STATUSES,
    Authority,
    Chunk,
    Document,
    RefreshSchedule,
    Source,
    SourceStatus,
    SourceType,
)
from sources.services import (
    source_create,
    source_deactivate,
    source_ingest_children,
    source_ingest_request,
    source_update,
    source_upload,
)
from tenants.models import Tenant
from tenants.tenancy import tenant_scope

# Sources whose ingestion creates one child source per page found.
PAGE_PARENT_TYPES = (SourceType.SITEMAP, SourceType.CRAWL)
URL_TYPES = (SourceType.URL, SourceType.SITEMAP, SourceType.CRAWL, SourceType.NYXCORE)
STATUS_TONES = {
    SourceStatus.PENDING: "muted",
    SourceStatus.QUEUED: "info",
    SourceStatus.PROCESSING: "info",
    SourceStatus.READY: "ok",
    SourceStatus.ERROR: "error",
}
EDITABLE_SOURCE_FIELDS = ("name", "description", "content", "authority", "refresh_schedule", "is_active")
# Service error keys → the form field that holds that value.
ERROR_FIELDS = {
    "config.url": "url",
    "config.base_url": "url",
    "config.api_token": "api_token",
    "config.max_pages": "max_pages",
    "config.max_depth": "max_depth",
    "config.path_prefix": "path_prefix",
    "config.limit": "search_limit",
    "bot_profile_id": "bot_profile",
}


def progress_of(source: Source) -> dict[str, Any]:
    """What the list's live progress bars show (also the JSON the page polls): the live-event
    snapshot (status, chunk counts, OCR pages, error) plus the label, the bar's percent and the
    line under it. While scanned pages are read (OCR, before any chunk exists) the bar follows
    the pages, then the chunks."""
    in_flight = source.status in IN_FLIGHT_STATUSES
    reading = in_flight and not source.chunks_total and source.ocr_pages_total > 0
    done, total = (
        (source.ocr_pages_done, source.ocr_pages_total) if reading else (source.chunks_done, source.chunks_total)
    )
    percent = 100 if source.status == SourceStatus.READY else (round(100 * done / total) if total else 0)
    if reading:
        detail = f"OCR: {done}/{total} pages"
    elif in_flight and total:
        detail = f"{done}/{total} chunks"
    else:
        detail = ""
    return {
        **progress_snapshot(source),  # what the live source events carry
        "label": SourceStatus(source.status).label,
        "percent": percent,
        "in_flight": in_flight,
        "detail": detail,
    }


class SourceFormFields(ServiceForm):
    """The fields a person fills in instead of a `config` JSON object."""

    url = forms.URLField(
        required=False,
        assume_scheme="https",
        label="URL",
        help_text="Web page, sitemap.xml, crawl start page, or the search service's base URL.",
    )
    max_pages = forms.IntegerField(
        required=False, min_value=1, help_text="Sitemaps and crawls: at most this many pages."
    )
    max_depth = forms.IntegerField(required=False, min_value=0, help_text="Crawls: links followed from the start page.")
    path_prefix = forms.CharField(
        required=False, help_text="Sitemaps and crawls: only pages under this path, e.g. /docs/."
    )
    api_token = forms.CharField(
        required=False,
        label="Search service API token",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="External search (nyxcore) only. Stored encrypted; leave empty to keep the current one.",
    )
    search_limit = forms.IntegerField(
        required=False, min_value=1, max_value=50, help_text="External search: results per question (default 10)."
    )
    error_fields = ERROR_FIELDS

    def config_for(self, source_type: str) -> dict[str, Any]:
        data = self.cleaned_data
        if source_type == SourceType.NYXCORE:
            config: dict[str, Any] = {"base_url": data.get("url") or ""}
            if data.get("api_token"):
                config["api_token"] = data["api_token"]
            if data.get("search_limit"):
                config["limit"] = data["search_limit"]
            return config
        if source_type not in URL_TYPES:
            return {}
        config = {"url": data.get("url") or ""}
        for key in ("max_pages", "path_prefix") if source_type != SourceType.URL else ():
            if data.get(key) not in (None, ""):
                config[key] = data[key]
        if source_type == SourceType.CRAWL and data.get("max_depth") is not None:
            config["max_depth"] = data["max_depth"]
        return config


class SourceAddForm(SourceFormFields):
    file = forms.FileField(
        required=False,
        help_text="For an uploaded file: .txt .md .csv .html .pdf .docx, or a scan as .png .jpg .tif (read with OCR)",
    )
    ingest_now = forms.BooleanField(
        required=False,
        initial=True,
        label="Ingest right away",
        help_text="Queue the ingestion when the source is saved, as the API does for uploaded files. "
        "Untick it to ingest later with the Ingest now action.",
    )

    class Meta:
        model = Source
        fields = [
            "tenant",
            "bot_profile",
            "name",
            "description",
            "source_type",
            "content",
            "authority",
            "refresh_schedule",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["name"].required = False
        self.fields["name"].help_text = "Defaults to the file name for uploads."
        self.fields["content"].help_text = "Text sources only: the text itself."
        self.fields["bot_profile"].queryset = self.fields["bot_profile"].queryset.filter(is_active=True)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        source_type = data.get("source_type")
        if source_type == SourceType.UPLOAD and not data.get("file"):
            self.add_error("file", "Choose the file to upload.")
        if source_type != SourceType.UPLOAD and not (data.get("name") or "").strip():
            self.add_error("name", "Give the source a name.")
        if source_type in URL_TYPES and not data.get("url"):
            self.add_error("url", "This kind of source needs a URL.")
        return data

    def perform(self, tenant: Tenant) -> Source:
        data = self.cleaned_data
        if data["source_type"] == SourceType.UPLOAD:
            # The upload service queues the ingestion itself once the page's transaction commits.
            return source_upload(
                tenant=tenant,
                bot_profile=data["bot_profile"],
                uploaded=data["file"],
                name=data.get("name") or "",
                description=data.get("description") or "",
                ingest=bool(data.get("ingest_now")),
            )
        return source_create(
            tenant=tenant,
            bot_profile=data["bot_profile"],
            name=data["name"],
            source_type=data["source_type"],
            description=data.get("description") or "",
            config=self.config_for(data["source_type"]),
            content=data.get("content") or "",
            refresh_schedule=data.get("refresh_schedule") or RefreshSchedule.NONE,
            authority=data.get("authority") or Authority.INFORMATIONAL,
        )


class SourceChangeForm(SourceFormFields):
    CONFIG_FORM_FIELDS = ("url", "max_pages", "max_depth", "path_prefix", "api_token", "search_limit")

    class Meta:
        model = Source
        fields = list(EDITABLE_SOURCE_FIELDS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        config = self.instance.config or {}
        self.fields["url"].initial = config.get("url") or config.get("base_url")
        for field in ("max_pages", "max_depth", "path_prefix"):
            self.fields[field].initial = config.get(field)
        self.fields["search_limit"].initial = config.get("limit")

    def perform(self, tenant: Tenant) -> Source:
        source = Source.objects.get(pk=self.instance.pk)
        data = self.cleaned_data
        changes = {field: data[field] for field in self.changed_data if field in EDITABLE_SOURCE_FIELDS}
        if any(field in self.changed_data for field in self.CONFIG_FORM_FIELDS):
            changes["config"] = self.config_for(source.source_type)
        return source_update(tenant=tenant, source=source, **changes)


class DocumentInline(ReadOnlyInline):
    model = Document
    fields = ["title", "url", "mime_type", "char_count", "updated_at"]
    readonly_fields = fields
    show_change_link = False


class ChildInline(ReadOnlyInline):
    model = Source
    fk_name = "parent"
    fields = ["name", "status", "chunk_count", "error_message", "is_active", "updated_at"]
    readonly_fields = fields
    verbose_name = "page"
    verbose_name_plural = "Pages found in this sitemap or crawl"


@admin.register(Source)
class SourceAdmin(TenantModelAdmin):
    """Sources are deactivated (their vectors removed), never deleted from the dashboard, exactly
    like `DELETE /v1/sources/{id}`."""

    operations = frozenset({VIEW, ADD, CHANGE})
    list_display = ["name", "bot_profile", "source_type", "progress", "chunks", "error", "updated_at"]
    list_filter = ["status", "source_type", "is_active", "authority", "bot_profile"]
    search_fields = ["name", "description", "error_message"]
    list_select_related = ["tenant", "bot_profile", "parent"]
    readonly_fields = [
        "id",
        "source_type",
        "bot_profile",
        "parent",
        "progress",
        "error_message",
        "document_count",
        "chunk_count",
        "config_summary",
        "last_refreshed_at",
        "next_refresh_at",
        "created_at",
        "updated_at",
    ]
    actions = ["ingest_now", "ingest_children", "deactivate_sources"]
    date_hierarchy = "created_at"

    class Media:
        js = ["dashboard/dashboard.js"]
        css = {"all": ["dashboard/dashboard.css"]}

    def get_form(self, request: HttpRequest, obj: Source | None = None, change: bool = False, **kwargs: Any) -> type:
        kwargs["form"] = SourceChangeForm if obj is not None else SourceAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Source | None = None) -> list[tuple[str | None, dict]]:
        if obj is None:
            fieldsets: list[tuple[str | None, dict]] = [
                (None, {"fields": ["tenant", "bot_profile", "source_type", "name", "description"]}),
                ("What to read", {"fields": ["file", "url", "content", "ingest_now"]}),
                ("Sitemaps and crawls", {"fields": ["max_pages", "max_depth", "path_prefix"], "classes": ["collapse"]}),
                ("External search (nyxcore)", {"fields": ["api_token", "search_limit"], "classes": ["collapse"]}),
                ("Options", {"fields": ["authority", "refresh_schedule"]}),
            ]
            return self.without_tenant_field(request, fieldsets)
        what = {
            SourceType.TEXT: ["content"],
            SourceType.UPLOAD: ["config_summary"],
            SourceType.URL: ["url"],
            SourceType.SITEMAP: ["url", "max_pages", "path_prefix"],
            SourceType.CRAWL: ["url", "max_pages", "max_depth", "path_prefix"],
            SourceType.NYXCORE: ["url", "api_token", "search_limit"],
        }[SourceType(obj.source_type)]
        if obj.is_group:
            what = ["config_summary"]
        return [
            (None, {"fields": ["name", "description", "bot_profile", "source_type", "parent", "is_active"]}),
            ("Ingestion", {"fields": ["progress", "error_message", "document_count", "chunk_count"]}),
            ("What to read", {"fields": what}),
            ("Options", {"fields": ["authority", "refresh_schedule", "last_refreshed_at", "next_refresh_at"]}),
            ("Record", {"fields": ["id", "created_at", "updated_at"], "classes": ["collapse"]}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Source | None = None) -> list[str]:
        return list(super().get_readonly_fields(request, obj)) if obj is not None else []

    def get_inlines(self, request: HttpRequest, obj: Source | None) -> list[type]:
        if obj is None:
            return []
        return [ChildInline] if _has_pages(obj) else [DocumentInline]

    @admin.display(description="Status")
    def progress(self, source: Source) -> str:
        state = progress_of(source)
        status = source.status
        return format_html(
            '<span class="mr-progress" data-source-progress="{}">{}'
            '<span class="mr-bar"><span class="mr-bar-fill" style="width:{}%"></span></span>'
            '<span class="mr-progress-text">{}</span></span>',
            source.pk,
            status_badge(status, SourceStatus(status).label, STATUS_TONES[SourceStatus(status)]),
            state["percent"],
            state["detail"],
        )

    # The next two columns are filled in again by the page's script as the progress JSON changes,
    # so the count and the error move together with the status badge.
    @admin.display(description="Chunks", ordering="chunk_count")
    def chunks(self, source: Source) -> str:
        return format_html('<span data-source-chunks="{}">{}</span>', source.pk, source.chunk_count)

    @admin.display(description="Error")
    def error(self, source: Source) -> str:
        message = Truncator(source.error_message).chars(120) if source.error_message else ""
        return format_html('<span data-source-error="{}">{}</span>', source.pk, message)

    @admin.display(description="Settings")
    def config_summary(self, source: Source) -> str:
        config = dict(source.config or {})
        if source.config_secrets_ciphertext:
            config["api_token"] = "set (hidden)"
        return ", ".join(f"{key}: {value}" for key, value in sorted(config.items())) or "—"

    def save_model(self, request: HttpRequest, obj: Source, form: Any, change: bool) -> None:
        if change or not form.cleaned_data.get("ingest_now"):
            return
        if obj.source_type == SourceType.UPLOAD:
            messages.info(request, "Ingestion queued.")  # by source_upload, on commit
            return
        # After the page's transaction commits, so a worker finds the new source.
        transaction.on_commit(lambda: self._ingest_after_commit(request, obj))

    def _ingest_after_commit(self, request: HttpRequest, source: Source) -> None:
        tenant = acting_tenant(request, source)
        try:
            with tenant_scope(tenant):
                messages.info(request, source_ingest_request(tenant=tenant, source=source))
        except ApplicationError as exc:
            messages.warning(request, f"The source was saved but not queued: {exc.detail}")

    def get_urls(self) -> list[URLPattern]:
        extra = [path("progress/", self.admin_site.admin_view(self.progress_json), name="sources_source_progress")]
        return extra + super().get_urls()

    def progress_json(self, request: HttpRequest) -> JsonResponse:
        """Live progress for the ids on the page (what the dashboard script polls). Ids the
        user's scope cannot reach are simply absent."""
        ids = request.GET.getlist("id")[:200]
        queryset = self.get_queryset(request).filter(pk__in=[i for i in ids if _is_uuid(i)])
        return JsonResponse({str(source.pk): progress_of(source) for source in queryset})

    @admin.action(description="Ingest now")
    def ingest_now(self, request: HttpRequest, queryset: QuerySet[Source]) -> None:
        run_for_each(
            request,
            queryset,
            lambda tenant, source: source_ingest_request(tenant=tenant, source=source),
            done="Queued {count} source(s) for ingestion.",
        )

    @admin.action(description="Re-ingest the pages of selected sitemaps and crawls")
    def ingest_children(self, request: HttpRequest, queryset: QuerySet[Source]) -> None:
        run_for_each(
            request,
            queryset.filter(Q(is_group=True) | Q(source_type__in=PAGE_PARENT_TYPES)),
            lambda tenant, parent: f"{source_ingest_children(tenant=tenant, parent=parent)} page(s) queued.",
            done="Re-ingesting the pages of {count} source(s).",
        )

    @admin.action(description="Deactivate selected sources (removes their vectors)")
    def deactivate_sources(self, request: HttpRequest, queryset: QuerySet[Source]) -> None:
        run_for_each(
            request,
            queryset.filter(is_active=True),
            lambda tenant, source: source_deactivate(tenant=tenant, source=source),
            done="Deactivated {count} source(s).",
        )


def _is_uuid(value: str) -> bool:
    return parse_uuid(value) is not None


def _has_pages(source: Source) -> bool:
    return source.is_group or source.source_type in PAGE_PARENT_TYPES


@admin.register(Chunk)
class ChunkAdmin(TenantModelAdmin):
    list_display = ["source", "chunk_index", "embedding_model", "created_at"]
    list_filter = ["embedding_model"]
    search_fields = ["content"]
    list_select_related = ["tenant", "source"]
    fields = ["id", "tenant", "source", "document", "chunk_index", "content", "content_hash", "embedding_model"]
    readonly_fields = fields
