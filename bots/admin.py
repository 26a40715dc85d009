"""Dashboard pages for bot profiles: settings (provider key write-only), the bot's sources and
tokens, the embed snippet with a copy button, and a "Try it" page with the real widget."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from bots.embed import bot_embed, public_base_url
from bots.models import BotProfile
from bots.services import EDITABLE_FIELDS, bot_profile_create, bot_profile_deactivate, bot_profile_update
from minirag.dashboard.model_admin import (
    ADD,
    CHANGE,
    VIEW,
    ReadOnlyInline,
    ServiceForm,
    TenantModelAdmin,
    acting_tenant,
    run_for_each,
)
from sources.models import Source
from tenants.models import ApiToken, Tenant
from tenants.selectors import first_active_owner
from tenants.services import bot_token_raw, preview_token_for
from tenants.tenancy import tenant_scope


class BotProfileForm(ServiceForm):
    """The provider key is write-only: typed in, encrypted, never shown again."""

    api_key = forms.CharField(
        required=False,
        strip=True,
        label="Provider API key",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Your own key for this bot's model provider (BYOK). Stored encrypted; leave empty to keep it.",
    )
    clear_credentials = forms.BooleanField(required=False, label="Remove the stored provider key")
    error_fields = {"credentials": "api_key"}

    class Meta:
        model = BotProfile
        fields = ["tenant", *sorted(EDITABLE_FIELDS)]

    def perform(self, tenant: Tenant) -> BotProfile:
        data = self.cleaned_data
        attributes = {field: data[field] for field in EDITABLE_FIELDS if field in data}
        credentials: dict[str, Any] | None
        if data.get("clear_credentials"):
            credentials = {}
        elif data.get("api_key"):
            credentials = {"api_key": data["api_key"]}
        else:
            credentials = None
        if self.instance._state.adding:
            return bot_profile_create(tenant=tenant, credentials=credentials, **attributes)
        bot = BotProfile.objects.get(pk=self.instance.pk)
        changes = {field: attributes[field] for field in self.changed_data if field in attributes}
        if credentials is None:
            return bot_profile_update(tenant=tenant, bot=bot, **changes)
        return bot_profile_update(tenant=tenant, bot=bot, credentials=credentials, **changes)


class SourceInline(ReadOnlyInline):
    model = Source
    fk_name = "bot_profile"
    fields = ["name", "source_type", "status", "chunk_count", "is_active", "updated_at"]
    readonly_fields = fields
    verbose_name_plural = "Sources (top level)"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Source]:
        return super().get_queryset(request).filter(parent__isnull=True).order_by("-created_at")


class BotTokenInline(ReadOnlyInline):
    model = ApiToken
    fk_name = "bot_profile"
    fields = ["name", "token_prefix", "allowed_origins", "is_active", "expires_at", "last_used_at"]
    readonly_fields = fields
    verbose_name_plural = "Widget tokens"

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiToken]:
        return super().get_queryset(request).filter(is_dashboard_preview=False)


@admin.register(BotProfile)
class BotProfileAdmin(TenantModelAdmin):
    operations = frozenset({VIEW, ADD, CHANGE})
    form = BotProfileForm
    list_display = ["name", "model", "embedding_model", "source_count", "is_active", "has_credentials", "created_at"]
    list_filter = ["is_active", "model"]
    search_fields = ["name", "description"]
    readonly_fields = ["id", "credentials_state", "created_at", "updated_at"]
    inlines = [SourceInline, BotTokenInline]
    actions = ["deactivate_bots", "activate_bots"]
    change_form_template = "admin/bots/botprofile/change_form.html"

    def get_fieldsets(self, request: HttpRequest, obj: BotProfile | None = None) -> list[tuple[str | None, dict]]:
        fieldsets: list[tuple[str | None, dict]] = [
            (None, {"fields": ["tenant", "name", "description", "is_active"]}),
            ("Model", {"fields": ["model", "embedding_model", "temperature", "max_tokens", "credentials"]}),
            ("Answers", {"fields": ["system_prompt", "refusal_message", "history_turns"]}),
            ("Retrieval", {"fields": ["top_k", "similarity_threshold", "chunk_size", "chunk_overlap"]}),
        ]
        credential_fields = ["api_key"] if obj is None else ["credentials_state", "api_key", "clear_credentials"]
        fieldsets[1][1]["fields"] = ["model", "embedding_model", "temperature", "max_tokens", *credential_fields]
        if obj is not None:
            fieldsets.append(("Record", {"fields": ["id", "created_at", "updated_at"], "classes": ["collapse"]}))
        return self.without_tenant_field(request, fieldsets)

    def get_queryset(self, request: HttpRequest) -> QuerySet[BotProfile]:
        active_sources = Count("sources", filter=Q(sources__is_active=True))
        bots = super().get_queryset(request).select_related("tenant").annotate(active_source_count=active_sources)
        return bots.order_by("name", "pk")  # a GROUP BY drops Meta.ordering; lists and autocomplete page

    @admin.display(description="Sources", ordering="active_source_count")
    def source_count(self, bot: BotProfile) -> int:
        return bot.active_source_count

    @admin.display(boolean=True, description="Provider key")
    def has_credentials(self, bot: BotProfile) -> bool:
        return bot.has_credentials

    @admin.display(description="Provider key")
    def credentials_state(self, bot: BotProfile) -> str:
        return "Set (hidden)" if bot.has_credentials else "Not set: the server's key for this provider is used"

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        """The bot's page also shows its embed snippet and the way to try it."""
        bot = self.get_object(request, object_id)
        if bot is not None:
            extra_context = {
                **(extra_context or {}),
                "embed": bot_embed(bot=bot, base_url=public_base_url(request)),
                "try_url": reverse("admin:bots_botprofile_try", args=[bot.pk]),
                "new_token_url": reverse("admin:tenants_apitoken_add") + f"?bot_profile={bot.pk}",
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self) -> list[URLPattern]:
        extra = [path("<uuid:object_id>/try/", self.admin_site.admin_view(self.try_it), name="bots_botprofile_try")]
        return extra + super().get_urls()

    def try_it(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The real widget, on this page, with a 30-minute token that works only here."""
        bot = self.get_object(request, str(object_id))
        if bot is None or not self.has_view_permission(request, bot):
            self._get_obj_does_not_exist_redirect(request, self.opts, str(object_id))
        base_url = public_base_url(request)
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": f"Try {bot.name}",
            "opts": self.opts,
            "original": bot,
            "bot": bot,
            "api_url": base_url,
            "script_url": bot_embed(bot=bot, base_url=base_url).script_url,
        }
        if bot.is_active:
            tenant = acting_tenant(request, bot)
            with tenant_scope(tenant):
                token = preview_token_for(
                    tenant=tenant,
                    user=self._preview_user(request, tenant),
                    bot_profile=bot,
                    origin=request.build_absolute_uri("/").rstrip("/"),
                )
            context.update(raw_token=bot_token_raw(token), expires_at=token.expires_at)
        return TemplateResponse(request, "admin/bots/botprofile/try_it.html", context)

    @staticmethod
    def _preview_user(request: HttpRequest, tenant: Tenant) -> Any:
        """Tokens belong to a tenant user; an operator's try-it token is recorded as the owner's."""
        if request.user.tenant_id is not None:
            return request.user
        owner = first_active_owner(tenant=tenant)
        if owner is None:
            raise Http404("This tenant has no active owner to issue a try-it token for.")
        return owner

    @admin.action(description="Deactivate selected bots (the widget answers 'not found')")
    def deactivate_bots(self, request: HttpRequest, queryset: QuerySet[BotProfile]) -> None:
        run_for_each(
            request,
            queryset.filter(is_active=True),
            lambda tenant, bot: bot_profile_deactivate(tenant=tenant, bot=bot),
            done="Deactivated {count} bot(s).",
        )

    @admin.action(description="Activate selected bots")
    def activate_bots(self, request: HttpRequest, queryset: QuerySet[BotProfile]) -> None:
        run_for_each(
            request,
            queryset.filter(is_active=False),
            lambda tenant, bot: bot_profile_update(tenant=tenant, bot=bot, is_active=True),
            done="Activated {count} bot(s).",
        )
