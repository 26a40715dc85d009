"""Dashboard pages of the platform's named connections: operators only. A tenant's staff never see
this page, a connection's key, headers or address; they pick a connection by name on a bot."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from minirag.dashboard.access import is_operator
from minirag.dashboard.model_admin import NotFoundInsteadOfRedirect, ServiceForm
from minirag.errors import ApplicationError
from providers.endpoints import decrypt_credentials
from providers.forms import EndpointSecretsForm, lines
from providers.models import Connection, ConnectionGrant
from providers.services import connection_save
from tenants.models import Tenant
from tenants.tenancy import tenant_scope_disabled

FIELDS = [
    "name",
    "description",
    "api_base",
    "api_version",
    "prompt_price_per_1m",
    "completion_price_per_1m",
    "for_every_tenant",
    "is_active",
]


class ConnectionForm(EndpointSecretsForm, ServiceForm):
    chat_models = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60, "placeholder": "hosted_vllm/meta-llama/Llama-3.1-8B"}),
        help_text="One model string per line, as LiteLLM routes it (provider/model).",
    )
    embedding_models = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60, "placeholder": "openai/bge-m3"}),
        help_text="One per line, if the server also embeds.",
    )
    granted_to = forms.ModelMultipleChoiceField(
        queryset=Tenant.objects.order_by("name"),
        required=False,
        label="Tenants",
        widget=FilteredSelectMultiple("tenants", is_stacked=False),
        help_text="Who may pick it (not needed when it is available to every tenant).",
    )
    error_fields = {"credentials": "api_key"}

    class Meta:
        model = Connection
        fields = FIELDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["api_key"].help_text = "The key of the server or gateway. Stored encrypted; tenants never see it."
        if not self.instance._state.adding:
            self.initial["chat_models"] = "\n".join(self.instance.chat_models)
            self.initial["embedding_models"] = "\n".join(self.instance.embedding_models)
            with tenant_scope_disabled("dashboard: an operator reads a connection's grants"):
                self.initial["granted_to"] = list(
                    ConnectionGrant.objects.filter(connection=self.instance).values_list("tenant_id", flat=True)
                )

    def clean_chat_models(self) -> list[str]:
        return lines(self.cleaned_data.get("chat_models"))

    def clean_embedding_models(self) -> list[str]:
        return lines(self.cleaned_data.get("embedding_models"))

    def _post_clean(self) -> None:
        # Like ServiceForm's, without a tenant: connections are the platform's.
        if self.errors:
            return
        data = self.cleaned_data
        adding = self.instance._state.adding
        connection = Connection() if adding else Connection.objects.get(pk=self.instance.pk)
        credentials = self.credentials_change({} if adding else decrypt_credentials(connection.credentials_ciphertext))
        attributes = {field: data[field] for field in [*FIELDS, "chat_models", "embedding_models"] if field in data}
        extra = {} if credentials is None else {"credentials": credentials}
        try:
            with transaction.atomic(), tenant_scope_disabled("dashboard: an operator saves a connection"):
                self.instance = connection_save(
                    connection=connection, granted_to=data.get("granted_to") or [], **extra, **attributes
                )
        except ApplicationError as exc:
            self._add_service_errors(exc.detail, exc.errors or {})


@admin.register(Connection)
class ConnectionAdmin(NotFoundInsteadOfRedirect, admin.ModelAdmin):
    form = ConnectionForm
    list_display = ["name", "api_base", "served", "for_every_tenant", "tenant_count", "bot_count", "is_active"]
    list_filter = ["is_active", "for_every_tenant"]
    search_fields = ["name", "description", "api_base"]
    readonly_fields = ["credentials_state", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "description", "is_active"]}),
        (
            "Endpoint",
            {
                "fields": [
                    "api_base",
                    "api_version",
                    "credentials_state",
                    "api_key",
                    "headers",
                    "clear_credentials",
                    "chat_models",
                    "embedding_models",
                ],
                "description": (
                    "Where the models are served (an OpenAI-compatible server such as vLLM, an Azure OpenAI "
                    "resource with its API version, an Ollama, a gateway), and how to authenticate. An address "
                    "on a private network needs MINIRAG_MODEL_ALLOWED_NETWORKS."
                ),
            },
        ),
        (
            "Price",
            {
                "fields": ["prompt_price_per_1m", "completion_price_per_1m"],
                "description": "What usage and budgets count for these models; empty: LiteLLM's price list.",
            },
        ),
        ("Who may pick it", {"fields": ["for_every_tenant", "granted_to"]}),
        ("Record", {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Connection]:
        # The operator's dashboard runs unscoped: the counts take every tenant's grants and bots.
        return (
            super()
            .get_queryset(request)
            .annotate(granted=Count("grants", distinct=True), used_by=Count("bots", distinct=True))
        )

    def save_model(self, request: HttpRequest, obj: Connection, form: Any, change: bool) -> None:
        """The form's service call saved it already, grants and all."""

    @admin.display(description="Models")
    def served(self, connection: Connection) -> str:
        return ", ".join(connection.served_models)

    @admin.display(description="Granted to", ordering="granted")
    def tenant_count(self, connection: Connection) -> int:
        return connection.granted  # type: ignore[attr-defined]

    @admin.display(description="Bots using it", ordering="used_by")
    def bot_count(self, connection: Connection) -> int:
        return connection.used_by  # type: ignore[attr-defined]

    @admin.display(description="Key and headers")
    def credentials_state(self, connection: Connection) -> str:
        return "Stored (encrypted)" if connection.has_credentials else "None"

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_operator(request)

    def has_view_permission(self, request: HttpRequest, obj: Connection | None = None) -> bool:
        return is_operator(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return is_operator(request)

    def has_change_permission(self, request: HttpRequest, obj: Connection | None = None) -> bool:
        return is_operator(request)

    def has_delete_permission(self, request: HttpRequest, obj: Connection | None = None) -> bool:
        return is_operator(request)
