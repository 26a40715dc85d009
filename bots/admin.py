"""Dashboard pages for bot profiles: settings (provider key write-only), the bot's sources and
tokens, the embed snippet with a copy button, a "Try it" page with the real widget, and a "Test
retrieval" page (what the bot would search, find and decide for a question; bots/retrieval_test.py)."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from rest_framework.exceptions import APIException

from bots.appearance import APPEARANCE_FIELDSET, WidgetAppearanceForm
from bots.embed import bot_embed, public_base_url
from bots.model_test import run_model_test
from bots.models import BotProfile
from bots.retrieval_test import run_retrieval_test
from bots.serializers import MAX_HISTORY_MESSAGES, RetrievalTestInputSerializer
from bots.services import (
    EDITABLE_FIELDS,
    bot_profile_create,
    bot_profile_credentials,
    bot_profile_deactivate,
    bot_profile_update,
)
from chat.serializers import MAX_MESSAGE_CHARS
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
from minirag.error_handlers import flatten_errors
from minirag.errors import ApplicationError
from providers.budgets import bot_budget
from providers.forms import EndpointSecretsForm, lines
from providers.models import Connection
from providers.selectors import connections_available
from providers.widgets import ModelPickerWidget
from sources.models import Source, SourceStatus, SourceType
from tenants.models import ApiToken, Tenant
from tenants.selectors import first_active_owner
from tenants.services import bot_token_raw, preview_token_for
from tenants.tenancy import tenant_scope


class BotProfileForm(WidgetAppearanceForm, EndpointSecretsForm, ServiceForm):
    """The provider key and the extra headers are write-only: typed in, encrypted, never shown again."""

    fallback_models = forms.CharField(
        required=False,
        label="Fallback models",
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60, "placeholder": "gpt-4o-mini"}),
        help_text=(
            "One per line, at most three: tried in order when the model fails in a way that may pass "
            "(timeout, rate limit, server error)."
        ),
    )
    error_fields = {"credentials": "api_key"}

    class Meta:
        model = BotProfile
        fields = ["tenant", *sorted(EDITABLE_FIELDS - {"fallback_models", "widget"})]  # widget: WidgetAppearanceForm
        # Suggestions from the model catalogue (GET /v1/models) as one types; any model string is accepted.
        widgets = {
            "model": ModelPickerWidget("chat"),
            "rewrite_model": ModelPickerWidget("chat", include_list=False),
            "embedding_model": ModelPickerWidget("embedding"),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields[
            "api_key"
        ].help_text = "Your own key for this bot's model provider (BYOK). Stored encrypted; leave empty to keep it."
        if not self.instance._state.adding:
            self.initial["fallback_models"] = "\n".join(self.instance.fallback_models)
        if "connection" in self.fields:
            self.fields["connection"] = ConnectionChoiceField(self._connection_choices(), required=False)

    def _connection_choices(self) -> QuerySet[Connection]:
        """A tenant's staff see the connections the platform offers their workspace; an operator sees every
        active one (the service refuses one the bot's tenant may not pick)."""
        user = self.dashboard_request.user
        tenant_id = user.tenant_id or (None if self.instance._state.adding else self.instance.tenant_id)
        if tenant_id is None:
            return Connection.objects.filter(is_active=True)
        return connections_available(tenant_id=tenant_id)

    def clean_fallback_models(self) -> list[str]:
        return lines(self.cleaned_data.get("fallback_models"))

    def perform(self, tenant: Tenant) -> BotProfile:
        data = self.cleaned_data
        attributes = {field: data[field] for field in EDITABLE_FIELDS if field in data}
        adding = self.instance._state.adding
        credentials = self.credentials_change({} if adding else bot_profile_credentials(self.instance))
        user = self.dashboard_request.user
        actor_role = user.role if user.tenant_id is not None else None  # operators: the platform
        if adding:
            return bot_profile_create(tenant=tenant, credentials=credentials, actor_role=actor_role, **attributes)
        bot = BotProfile.objects.get(pk=self.instance.pk)
        changes = {field: attributes[field] for field in self.changed_data if field in attributes}
        if credentials is None:
            return bot_profile_update(tenant=tenant, bot=bot, actor_role=actor_role, **changes)
        return bot_profile_update(tenant=tenant, bot=bot, credentials=credentials, actor_role=actor_role, **changes)


class ConnectionChoiceField(forms.ModelChoiceField):
    """A connection by its name and what it serves; empty: none."""

    def __init__(self, queryset: QuerySet[Connection], **kwargs: Any) -> None:
        super().__init__(
            queryset,
            empty_label="None: the provider's own endpoint",
            help_text="A connection the platform set up for your workspace: the models it serves are called "
            "through it, with its key (which you never see).",
            **kwargs,
        )

    def label_from_instance(self, obj: Connection) -> str:
        described = f" ({obj.description})" if obj.description else ""
        return f"{obj.name}{described}: {', '.join(obj.served_models)}"


def _key_state(bot: BotProfile) -> str:
    """Whether the bot's models need a key and where it comes from, said neutrally: no key is no
    problem for the offline models or a connection."""
    models = {bot.model, bot.embedding_model, bot.rewrite_model, *bot.fallback_models} - {""}
    if bot.has_credentials:
        return "Its own key (stored encrypted)"
    if all(model.startswith("local/") for model in models):
        return "Not needed for the offline local models"
    if bot.connection_id is not None:
        return f"From the connection {bot.connection}"
    return "The server's key for each provider"


# The bot page's "add knowledge" buttons, the common kinds first (the chooser lists every kind).
ADD_SOURCE_BUTTONS = (
    (SourceType.UPLOAD, "Upload a file"),
    (SourceType.URL, "Add a web page"),
    (SourceType.CRAWL, "Add a whole website"),
    (SourceType.TEXT, "Write text"),
)

# "user: ..." or "assistant: ..." starts a turn; any other line continues the turn above it.
TURN_LINE = re.compile(r"^\s*(user|assistant)\s*:\s?(.*)$", re.IGNORECASE)


def parse_turns(text: str) -> list[dict[str, str]]:
    """The preceding turns typed one per line, oldest first; raises ValidationError on a first
    line that names no role."""
    turns: list[dict[str, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = TURN_LINE.match(line)
        if match:
            turns.append({"role": match[1].lower(), "content": match[2]})
        elif turns:
            turns[-1]["content"] += "\n" + line
        elif line.strip():
            raise forms.ValidationError(f'Line {number}: start each turn with "user:" or "assistant:".')
    return [{"role": turn["role"], "content": turn["content"].strip()} for turn in turns]


class RetrievalTestForm(forms.Form):
    """The API's input (RetrievalTestInputSerializer), typed: the question, and the turns before it."""

    question = forms.CharField(
        max_length=MAX_MESSAGE_CHARS,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 80}),
        help_text="As a visitor would ask it.",
    )
    history = forms.CharField(
        required=False,
        strip=False,
        label="Preceding turns",
        widget=forms.Textarea(
            attrs={"rows": 5, "cols": 80, "placeholder": "user: Do you ship abroad?\nassistant: Yes, to the EU."}
        ),
        help_text=(
            'Optional, oldest first: one turn per line, starting with "user:" or "assistant:" (a line without '
            f"one continues the turn above). At most {MAX_HISTORY_MESSAGES} turns; like a chat, only the bot's "
            "last history_turns exchanges are used to resolve a follow-up question."
        ),
    )

    def clean_history(self) -> list[dict[str, str]]:
        return parse_turns(self.cleaned_data.get("history") or "")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        checked = RetrievalTestInputSerializer(data={"question": cleaned["question"], "history": cleaned["history"]})
        if not checked.is_valid():
            for key, messages in flatten_errors(checked.errors).items():
                field, _, rest = key.partition(".")
                where = f"Turn {int(rest.split('.')[0]) + 1}: " if rest[:1].isdigit() else ""
                for message in messages:
                    self.add_error(field if field in self.fields else None, where + message)
        return cleaned


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
    list_display = ["name", "model", "embedding_model", "source_count", "is_active", "key_state", "created_at"]
    list_filter = ["is_active", "model"]
    search_fields = ["name", "description"]
    readonly_fields = ["id", "credentials_state", "spent_this_month", "created_at", "updated_at"]
    inlines = [SourceInline, BotTokenInline]
    actions = ["deactivate_bots", "activate_bots"]
    change_form_template = "admin/bots/botprofile/change_form.html"

    def get_fieldsets(self, request: HttpRequest, obj: BotProfile | None = None) -> list[tuple[str | None, dict]]:
        credential_fields = ["api_key", "headers"]
        if obj is not None:
            credential_fields = ["credentials_state", *credential_fields, "clear_credentials"]
        models = ["model", "fallback_models", "embedding_model", "rewrite_model", "temperature", "max_tokens"]
        fieldsets: list[tuple[str | None, dict]] = [
            (None, {"fields": ["tenant", "name", "description", "is_active"]}),
            ("Model", {"fields": models}),
            (
                "Endpoint and credentials",
                {
                    "fields": ["connection", "api_base", "api_version", *credential_fields],
                    "description": (
                        "A connection is a model server the platform set up for your workspace: pick one and the "
                        "models it serves go through it. Otherwise, leave the endpoint empty to reach each "
                        "provider at its public address, or set it to use your own model server (an "
                        "OpenAI-compatible server such as vLLM or LM Studio, an Ollama, an Azure OpenAI resource "
                        "with its API version, or a gateway such as OpenRouter) for every model of this bot "
                        "except the offline local/ ones. Addresses on a private network need the operator's "
                        "allowance (MINIRAG_MODEL_ALLOWED_NETWORKS)."
                    ),
                },
            ),
            ("Answers", {"fields": ["system_prompt", "refusal_message", "history_turns"]}),
            ("Retrieval", {"fields": ["top_k", "similarity_threshold", "chunk_size", "chunk_overlap"]}),
            (
                "Budget",
                {
                    "fields": ["monthly_budget_usd", "spent_this_month"] if obj is not None else ["monthly_budget_usd"],
                    "description": (
                        "The most this bot may spend on models per calendar month (UTC), within the workspace's "
                        "budget; owners set it. Over it, its chats are refused until the month ends."
                    ),
                },
            ),
        ]
        fieldsets.append(APPEARANCE_FIELDSET)
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

    @admin.display(description="Provider key")
    def key_state(self, bot: BotProfile) -> str:
        return _key_state(bot)

    @admin.display(description="Spent this month")
    def spent_this_month(self, bot: BotProfile) -> str:
        with tenant_scope(bot.tenant_id):
            budget = bot_budget(bot)
        return f"{budget.spent_usd:.2f} USD (forecast for the month: {budget.forecast_usd()} USD)"

    @admin.display(description="Stored credentials")
    def credentials_state(self, bot: BotProfile) -> str:
        if not bot.has_credentials:
            return _key_state(bot)
        stored = bot_profile_credentials(bot)
        parts = ["a provider key (hidden)"] if stored.get("api_key") else []
        if stored.get("headers"):
            parts.append(f"headers {', '.join(sorted(stored['headers']))} (values hidden)")
        return "Set: " + " and ".join(parts)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        """The bot's page is the centre of a bot: what it knows (and buttons to add more), the code
        to put it on a site (and the widget token that code needs, created right here), and the
        ways to try it."""
        bot = self.get_object(request, object_id)
        if bot is not None:
            try:
                embed = bot_embed(
                    bot=bot, base_url=public_base_url(request), token_id=request.GET.get("token"), for_dashboard=True
                )
            except ApplicationError:  # a token id that is not (or no longer) one of the bot's
                embed = bot_embed(bot=bot, base_url=public_base_url(request), for_dashboard=True)
            add_source = reverse("admin:sources_source_add")
            extra_context = {
                **(extra_context or {}),
                "embed": embed,
                "knowledge": self._knowledge(bot),
                "add_source_links": [
                    (label, f"{add_source}?source_type={kind}&bot_profile={bot.pk}")
                    for kind, label in ADD_SOURCE_BUTTONS
                ],
                "sources_url": reverse("admin:sources_source_changelist") + f"?bot_profile__id__exact={bot.pk}",
                "token_url": (
                    reverse("admin:tenants_apitoken_change", args=[embed.token.pk]) if embed.token is not None else ""
                ),
                "try_url": reverse("admin:bots_botprofile_try", args=[bot.pk]),
                "retrieval_test_url": reverse("admin:bots_botprofile_retrieval_test", args=[bot.pk]),
                "model_test_url": reverse("admin:bots_botprofile_model_test", args=[bot.pk]),
                "new_token_url": reverse("admin:tenants_apitoken_add") + f"?bot_profile={bot.pk}",
            }
        return super().change_view(request, object_id, form_url, extra_context)

    @staticmethod
    def _knowledge(bot: BotProfile) -> dict[str, int]:
        """How many of the bot's sources are ready, in progress and in error, and its chunks."""
        with tenant_scope(bot.tenant_id):
            return Source.objects.filter(bot_profile=bot, is_active=True, parent__isnull=True).aggregate(
                total=Count("pk"),
                ready=Count("pk", filter=Q(status=SourceStatus.READY)),
                errors=Count("pk", filter=Q(status=SourceStatus.ERROR)),
                chunks=Coalesce(Sum("chunk_count"), 0),
            )

    def get_urls(self) -> list[URLPattern]:
        extra = [
            path("<uuid:object_id>/try/", self.admin_site.admin_view(self.try_it), name="bots_botprofile_try"),
            path(
                "<uuid:object_id>/retrieval-test/",
                self.admin_site.admin_view(self.retrieval_test),
                name="bots_botprofile_retrieval_test",
            ),
            path(
                "<uuid:object_id>/test-model/",
                self.admin_site.admin_view(self.model_test),
                name="bots_botprofile_model_test",
            ),
        ]
        return extra + super().get_urls()

    def retrieval_test(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """What the bot would search, find and decide for a question (POST runs the test; a GET
        may prefill the question with ?question=). Records nothing; rate-limited with the API."""
        bot = self.get_object(request, str(object_id))
        if bot is None or not self.has_view_permission(request, bot):
            self._get_obj_does_not_exist_redirect(request, self.opts, str(object_id))
        report: dict[str, Any] | None = None
        if request.method == "POST":
            form = RetrievalTestForm(request.POST)
            if form.is_valid():
                tenant = acting_tenant(request, bot)
                try:
                    with tenant_scope(tenant):
                        report = run_retrieval_test(
                            tenant_id=tenant.pk,
                            bot=bot,
                            question=form.cleaned_data["question"],
                            history=form.cleaned_data["history"],
                        )
                except ApplicationError as exc:
                    form.add_error(None, exc.detail)
                except APIException as exc:  # the rate limit
                    form.add_error(None, str(exc.detail))
        else:
            form = RetrievalTestForm(initial={"question": request.GET.get("question", "")[:MAX_MESSAGE_CHARS]})
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": f"Test retrieval: {bot.name}",
            "opts": self.opts,
            "original": bot,
            "bot": bot,
            "form": form,
            "report": report,
            "passed_count": sum(1 for chunk in report["chunks"] if chunk["passed"]) if report else 0,
        }
        return TemplateResponse(request, "admin/bots/botprofile/retrieval_test.html", context)

    def model_test(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Whether the bot reaches its models (POST runs the test: it spends a few tokens; a GET
        shows the button). Rate-limited with the API."""
        bot = self.get_object(request, str(object_id))
        if bot is None or not self.has_change_permission(request, bot):
            self._get_obj_does_not_exist_redirect(request, self.opts, str(object_id))
        report: dict[str, Any] | None = None
        error = ""
        if request.method == "POST":
            tenant = acting_tenant(request, bot)
            try:
                with tenant_scope(tenant):
                    report = run_model_test(tenant_id=tenant.pk, bot=bot)
            except APIException as exc:  # the rate limit
                error = str(exc.detail)
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": f"Test the models: {bot.name}",
            "opts": self.opts,
            "original": bot,
            "bot": bot,
            "report": report,
            "error": error,
        }
        return TemplateResponse(request, "admin/bots/botprofile/model_test.html", context)

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
