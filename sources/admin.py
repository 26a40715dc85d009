"""Dashboard pages for sources: add text, files, pages, sitemaps, crawls and external search; watch
ingestion progress live; read errors; ingest again. Secrets in a source's config are write-only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
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
    MAX_CRAWL_DEPTH,
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


# What each kind of source asks for, in order (the add form shows only these), and its one line on
# the "Add knowledge" chooser.
KIND_FIELDS: dict[str, list[str]] = {
    SourceType.TEXT: ["name", "content", "description"],
    SourceType.UPLOAD: ["file", "name", "description"],
    SourceType.URL: ["url", "name", "description", "refresh_schedule"],
    SourceType.SITEMAP: ["url", "name", "max_pages", "path_prefix", "description", "refresh_schedule"],
    SourceType.CRAWL: ["url", "name", "max_pages", "max_depth", "path_prefix", "description", "refresh_schedule"],
    SourceType.NYXCORE: ["url", "name", "api_token", "search_limit", "description"],
}
KIND_SUMMARIES: dict[str, str] = {
    SourceType.TEXT: "Type or paste text: opening hours, a policy, answers to common questions.",
    SourceType.UPLOAD: "A document: PDF, Word, Markdown, text, CSV, HTML, or a scan (read with OCR).",
    SourceType.URL: "One page of a website, read again on a schedule if you like.",
    SourceType.CRAWL: "A whole website: the pages linked from a start page, on the same site.",
    SourceType.SITEMAP: "The pages a sitemap.xml lists.",
    SourceType.NYXCORE: "An external search service (nyxcore) the bot asks at every question.",
}
# The chooser's order: the most common first.
KIND_ORDER = (
    SourceType.UPLOAD,
    SourceType.URL,
    SourceType.CRAWL,
    SourceType.TEXT,
    SourceType.SITEMAP,
    SourceType.NYXCORE,
)
# Names a source may be given by what it reads: the file's name, or (for a page) its title.
NAME_OPTIONAL_KINDS = (SourceType.UPLOAD, SourceType.URL, SourceType.SITEMAP, SourceType.CRAWL)
AUTHORITY_CHOICES = [
    (Authority.INFORMATIONAL, "Informational: reference material, the usual choice."),
    (Authority.GUIDELINE, "Guideline: preferred practice, quoted before informational sources."),
    (Authority.MANDATORY, "Mandatory: rules the bot must follow; quoted first, they override everything else."),
]


def megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB" if size % (1024 * 1024) == 0 else f"{size / (1024 * 1024):.1f} MB"


def chosen_kind(request: HttpRequest) -> str | None:
    """The kind of source the add form is for (`?source_type=`, then the form's own hidden field).
    Curated answers are not among them: they have pages of their own (sources/curated_admin.py)."""
    kind = request.POST.get("source_type") or request.GET.get("source_type")
    return kind if kind in KIND_FIELDS else None


class BotChoiceField(forms.ModelChoiceField):
    """The bot a source belongs to; an operator, who sees every tenant's bots, reads whose each is."""

    show_tenant = False

    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.tenant.name}: {obj.name}" if self.show_tenant else obj.name


class SourceAddForm(SourceFormFields):
    """One kind of source at a time (`kind`, from the chooser): only the fields it needs, with their
    limits stated. The tenant is the chosen bot's, so an operator never picks a mismatching pair."""

    file = forms.FileField(required=False)
    ingest_now = forms.BooleanField(
        required=False,
        initial=True,
        label="Ingest right away",
        help_text="Read and index it as soon as it is saved. Untick it to ingest later with the Ingest now action.",
    )

    class Meta:
        model = Source
        fields = ["bot_profile", "name", "description", "source_type", "content", "authority", "refresh_schedule"]
        field_classes = {"bot_profile": BotChoiceField}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.dashboard_request
        kind = chosen_kind(request) or SourceType.TEXT
        self.fields["source_type"].widget = forms.HiddenInput()
        self.fields["source_type"].initial = kind
        bots = self.fields["bot_profile"]
        bots.queryset = bots.queryset.filter(is_active=True).select_related("tenant").order_by("tenant__name", "name")
        bots.show_tenant = request.user.tenant_id is None
        bots.empty_label = None if bots.queryset.count() == 1 else bots.empty_label
        bots.help_text = "The bot that answers from it."
        self.fields["authority"] = forms.ChoiceField(
            choices=AUTHORITY_CHOICES,
            initial=Authority.INFORMATIONAL,
            widget=forms.RadioSelect,
            help_text="How binding its content is for the bot's answers.",
        )
        name = self.fields["name"]
        name.required = kind not in NAME_OPTIONAL_KINDS
        name.help_text = {
            SourceType.UPLOAD: "Leave empty to use the file's name.",
            SourceType.URL: "Leave empty to use the page's title once it is read.",
            SourceType.SITEMAP: "Leave empty to use the sitemap's address.",
            SourceType.CRAWL: "Leave empty to use the start page's address.",
        }.get(kind, "What the source is called in lists and citations.")
        if "content" in self.fields:
            self.fields["content"].help_text = "The text the bot answers from."
        self._describe_limits(kind)
        # The other kinds' fields are not on the page: not in the form either, so nothing is checked for them.
        wanted = {"source_type", "bot_profile", "authority", "ingest_now", *KIND_FIELDS[kind]}
        for field in set(self.fields) - wanted:
            del self.fields[field]

    def _describe_limits(self, kind: str) -> None:
        """State the limits up front, where the values are typed."""
        upload_limit = settings.UPLOAD_MAX_BYTES
        self.fields["file"].help_text = (
            f"Up to {megabytes(upload_limit)}: .txt .md .csv .html .pdf .docx, or a scan as .png .jpg .tif "
            f"(read with OCR, at most {settings.OCR_MAX_PAGES} pages)."
        )
        self.fields["file"].widget.attrs.update(
            {
                "data-max-bytes": str(upload_limit),
                "data-too-large": f"This file is larger than the {megabytes(upload_limit)} limit.",
                "accept": ".txt,.md,.markdown,.csv,.html,.htm,.pdf,.docx,.png,.jpg,.jpeg,.tif,.tiff",
            }
        )
        self.fields["url"].help_text = {
            SourceType.URL: "The page's address; its main content is read, menus and footers are left out.",
            SourceType.SITEMAP: "The address of the sitemap, e.g. https://www.example.com/sitemap.xml.",
            SourceType.CRAWL: "The start page; links to pages on the same site are followed.",
            SourceType.NYXCORE: "The search service's base URL.",
        }.get(kind, "")
        self.fields["max_pages"].help_text = (
            f"At most this many pages (default {settings.CRAWL_DEFAULT_MAX_PAGES}, "
            f"up to {settings.CRAWL_MAX_PAGES_LIMIT})."
        )
        self.fields["max_pages"].max_value = settings.CRAWL_MAX_PAGES_LIMIT
        self.fields[
            "max_depth"
        ].help_text = f"How many links away from the start page to go (default 2, up to {MAX_CRAWL_DEPTH})."
        self.fields["max_depth"].max_value = MAX_CRAWL_DEPTH

    def acting_tenant(self) -> Tenant | None:
        if self.dashboard_request.user.tenant_id is not None:
            return super().acting_tenant()
        bot = self.cleaned_data.get("bot_profile")
        return bot.tenant if bot is not None else None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        source_type = data.get("source_type")
        # One message per field: a field that already failed (a malformed URL) gets no second one.
        if source_type == SourceType.UPLOAD and not data.get("file") and "file" not in self.errors:
            self.add_error("file", "Choose the file to upload.")
        if source_type in URL_TYPES and not data.get("url") and "url" not in self.errors:
            self.add_error("url", "Enter the address to read.")
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
                authority=data.get("authority") or Authority.INFORMATIONAL,
            )
        config = self.config_for(data["source_type"])
        return source_create(
            tenant=tenant,
            bot_profile=data["bot_profile"],
            # A page named by its address until ingestion finds its title (sources/lifecycle.py).
            name=(data.get("name") or "").strip() or config.get("url", "")[:200],
            source_type=data["source_type"],
            description=data.get("description") or "",
            config=config,
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
        "curated_answer",
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
        js = ["dashboard/dashboard.js", "dashboard/source_form.js"]
        css = {"all": ["dashboard/dashboard.css", "dashboard/forms.css"]}

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None) -> HttpResponse:
        """Without a kind chosen, the choice of kinds: each opens a form with only what it needs."""
        kind = chosen_kind(request)
        if kind is None:
            if not self.has_add_permission(request):
                raise PermissionDenied
            bot = request.GET.get("bot_profile", "")
            query = f"&bot_profile={bot}" if _is_uuid(bot) else ""
            kinds = [
                (SourceType(kind).label, KIND_SUMMARIES[kind], f"?source_type={kind}{query}") for kind in KIND_ORDER
            ]
            context = {
                **self.admin_site.each_context(request),
                "title": "Add knowledge",
                "opts": self.opts,
                "kinds": kinds,
                "upload_limit": megabytes(settings.UPLOAD_MAX_BYTES),
            }
            return TemplateResponse(request, "admin/sources/source/choose_kind.html", context)
        label = SourceType(kind).label.lower()
        extra_context = {**(extra_context or {}), "title": f"Add a source: {label}"}
        return super().add_view(request, form_url, extra_context)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        if not _is_uuid(str(initial.get("bot_profile", ""))):
            initial.pop("bot_profile", None)
        return initial

    def get_form(self, request: HttpRequest, obj: Source | None = None, change: bool = False, **kwargs: Any) -> type:
        kwargs["form"] = SourceChangeForm if obj is not None else SourceAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Source | None = None) -> list[tuple[str | None, dict]]:
        if obj is None:
            kind = chosen_kind(request) or SourceType.TEXT
            options = ["authority", "ingest_now"] if kind != SourceType.NYXCORE else ["authority"]
            return [
                (None, {"fields": ["source_type", "bot_profile", *KIND_FIELDS[kind]]}),
                ("How the bot uses it", {"fields": options}),
            ]
        what = {
            SourceType.TEXT: ["content"],
            SourceType.UPLOAD: ["config_summary"],
            SourceType.URL: ["url"],
            SourceType.SITEMAP: ["url", "max_pages", "path_prefix"],
            SourceType.CRAWL: ["url", "max_pages", "max_depth", "path_prefix"],
            SourceType.NYXCORE: ["url", "api_token", "search_limit"],
            SourceType.QA: ["curated_answer"],
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
        if obj is None:
            return []
        readonly = list(super().get_readonly_fields(request, obj))
        if obj.source_type == SourceType.QA:  # its question names it; it is always mandatory
            readonly += ["name", "authority"]
        return readonly

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

    @admin.display(description="Curated answer")
    def curated_answer(self, source: Source) -> str:
        """A curated answer's question and answer are changed together, on its own page."""
        question, answer = source.config.get("question", ""), Truncator(source.content).chars(300)
        if not source.is_active:  # no longer one of the bot's curated answers until activated again
            return format_html("<strong>{}</strong><br>{}", question, answer)
        url = reverse("admin:sources_curatedanswer_change", args=[source.pk])
        return format_html(
            '<strong>{}</strong><br>{}<br><a href="{}">Change the question or the answer</a>', question, answer, url
        )

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


# The curated answers' pages, in a module of their own (this one is long enough); it uses the helpers above.
from sources import curated_admin  # noqa: E402, F401
