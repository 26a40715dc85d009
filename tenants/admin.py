"""Dashboard pages for tenants, their users and API tokens. Secrets are never displayed: a new
token's raw value is shown once, on the page that answers its creation."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import ReadOnlyPasswordHashField
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from minirag.dashboard.access import is_operator, own_tenant
from minirag.dashboard.model_admin import (
    ADD,
    CHANGE,
    VIEW,
    NotFoundInsteadOfRedirect,
    ServiceForm,
    TenantModelAdmin,
    run_for_each,
    secret_once_response,
)
from minirag.vectorstore import get_vector_store
from providers.budgets import tenant_budget
from tenants.current_password import TooManyWrongPasswords
from tenants.models import RATE_LIMIT_FIELDS, ApiToken, Role, Tenant, User, role_at_least
from tenants.selectors import first_active_owner
from tenants.services import (
    api_token_create,
    api_token_revoke,
    api_token_update,
    user_create,
    user_deactivate,
    user_update,
)
from tenants.tenancy import tenant_scope, tenant_scope_disabled

# --- Tenants ----------------------------------------------------------------------------------


@admin.register(Tenant)
class TenantAdmin(NotFoundInsteadOfRedirect, admin.ModelAdmin):
    """Operators manage every tenant; a tenant's own admins see only theirs and may rename it."""

    list_display = ["name", "slug", "plan", "is_active", "created_at"]
    list_filter = ["is_active", "plan"]
    search_fields = ["name", "slug"]
    readonly_fields = ["id", "spent_this_month", "created_at", "updated_at"]
    fields = [
        "id",
        "name",
        "slug",
        "plan",
        "is_active",
        "members_see_all_chats",
        "monthly_budget_usd",
        "spent_this_month",
        "created_at",
        "updated_at",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tenant]:
        queryset = super().get_queryset(request)
        tenant = own_tenant(request)
        return queryset if tenant is None else queryset.filter(pk=tenant.pk)

    def get_readonly_fields(self, request: HttpRequest, obj: Tenant | None = None) -> list[str]:
        if is_operator(request):
            return list(self.readonly_fields)
        # Slug, plan, activation and the model budget are the platform's business, not the tenant's;
        # who reads the conversations is the owners' (as PATCH /v1/tenants/me).
        readonly = [*self.readonly_fields, "slug", "plan", "is_active", "monthly_budget_usd"]
        if request.user.role != Role.OWNER:
            readonly.append("members_see_all_chats")
        return readonly

    @admin.display(description="Spent on models this month")
    def spent_this_month(self, tenant: Tenant) -> str:
        with tenant_scope(tenant):
            budget = tenant_budget(tenant)
        return f"{budget.spent_usd:.2f} USD (forecast for the month: {budget.forecast_usd()} USD)"

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Tenant | None = None) -> bool:
        return request.user.is_active and (is_operator(request) or role_at_least(request.user.role, Role.ADMIN))

    def has_change_permission(self, request: HttpRequest, obj: Tenant | None = None) -> bool:
        return self.has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return is_operator(request)

    def has_delete_permission(self, request: HttpRequest, obj: Tenant | None = None) -> bool:
        return is_operator(request)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple:
        deleted, counts, _, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, set(), protected  # an operator removes a tenant with all it owns

    def delete_model(self, request: HttpRequest, obj: Tenant) -> None:
        self.delete_queryset(request, Tenant.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        """Deleting a tenant removes its rows (cascade) and, once committed, its vectors."""
        from sources.models import Source

        for tenant in queryset:
            with tenant_scope_disabled("dashboard: an operator deletes a tenant"):
                source_ids = list(Source.all_tenants.filter(tenant=tenant).values_list("pk", flat=True))
            tenant_id = tenant.pk
            tenant.delete()
            if source_ids:
                transaction.on_commit(
                    lambda tenant_id=tenant_id, ids=source_ids: get_vector_store().delete(
                        tenant_id=tenant_id, source_ids=ids
                    )
                )


# --- Users ------------------------------------------------------------------------------------


def may_manage_user(actor: User, target: User) -> bool:
    """Owners (and operators, who act as owners) manage anyone; admins manage non-owners."""
    return actor.tenant_id is None or actor.role == Role.OWNER or target.role != Role.OWNER


class UserAddForm(ServiceForm):
    password1 = forms.CharField(label="Password", widget=forms.PasswordInput, strip=False, min_length=8)
    password2 = forms.CharField(label="Password again", widget=forms.PasswordInput, strip=False)

    class Meta:
        model = User
        fields = ["tenant", "email", "display_name", "role"]

    def clean_password2(self) -> str:
        if self.cleaned_data.get("password1") != self.cleaned_data.get("password2"):
            raise forms.ValidationError("The two passwords differ.")
        return self.cleaned_data["password2"]

    error_fields = {"password": "password1"}

    def perform(self, tenant: Tenant) -> User:
        data = self.cleaned_data
        return user_create(
            tenant=tenant,
            actor=self.dashboard_request.user,
            email=data["email"],
            password=data["password1"],
            display_name=data.get("display_name") or "",
            role=data["role"],
        )


class UserChangeForm(ServiceForm):
    PROFILE_FIELDS = ("email", "display_name", "role", "is_active")

    # Django's masked summary of the stored hash with a link to the password page. Without it the
    # admin made a plain text input of the `password` column: the hash itself, in the page.
    password = ReadOnlyPasswordHashField(
        label="Password", help_text="Raw passwords are not stored, so there is no way to see the password."
    )

    # Shown on one's own page only (UserAdmin.get_fieldsets): changing one's own email needs it,
    # exactly as in the API (tenants/services.py: user_update).
    current_password = forms.CharField(
        label="Your current password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Needed to change your own email.",
    )

    class Meta:
        model = User
        fields = ["email", "display_name", "role", "is_active"]

    def perform(self, tenant: Tenant) -> User:
        data = self.cleaned_data
        request = self.dashboard_request
        user = User.objects.get(pk=self.instance.pk)  # the stored row, not the form's edited copy
        changes: dict[str, Any] = {field: data[field] for field in self.changed_data if field in self.PROFILE_FIELDS}
        if user.pk == request.user.pk:
            changes["current_password"] = data.get("current_password") or None
        version_before = user.auth_version
        try:
            user = user_update(tenant=tenant, actor=request.user, user=user, **changes)
        except TooManyWrongPasswords as exc:
            raise forms.ValidationError({"current_password": str(exc.detail)}) from None
        if user.pk == request.user.pk and user.auth_version != version_before:
            # The user's other sessions (and JWTs) ended with the new email; this one goes on.
            update_session_auth_hash(request, user)
        return user


@admin.register(User)
class UserAdmin(TenantModelAdmin, DjangoUserAdmin):
    """Tenant users, changed through the same rules as the API (only an owner grants or touches
    the owner role; the last active owner stays). Platform operator accounts are managed with
    `manage.py createsuperuser` / `changepassword`, not here."""

    operations = frozenset({VIEW, ADD, CHANGE})
    form = UserChangeForm
    add_form = UserAddForm
    list_display = ["email", "display_name", "role", "is_active", "last_login", "created_at"]
    list_filter = ["role", "is_active"]
    search_fields = ["email", "display_name", "tenant__slug"]
    ordering = ["email"]
    readonly_fields = ["id", "created_at", "updated_at", "last_login"]
    fieldsets = [
        (None, {"fields": ["id", "tenant", "email", "password"]}),
        ("Profile", {"fields": ["display_name", "role", "is_active"]}),
        ("Dates", {"fields": ["last_login", "created_at", "updated_at"]}),
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["tenant", "email", "display_name", "role", "password1", "password2"]}),
    ]
    filter_horizontal: list[str] = []
    actions = ["deactivate_users"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return super().get_queryset(request).filter(tenant__isnull=False).select_related("tenant")

    def get_fieldsets(self, request: HttpRequest, obj: User | None = None) -> list[tuple[str | None, dict]]:
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is not None and obj.pk == request.user.pk:
            fieldsets.append(("Confirm", {"fields": ["current_password"]}))
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: User | None = None) -> list[str]:
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None and not may_manage_user(request.user, obj):
            readonly += ["email", "display_name", "role", "is_active"]
        return readonly

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> HttpResponse:  # noqa: A002
        target = self.get_object(request, id)
        if target is not None and target.pk == request.user.pk:
            # This page sets a password without the old one: an owner's or admin's power over
            # *other* accounts. One's own goes through the page that asks for the current one.
            return HttpResponseRedirect(reverse("admin:password_change", current_app=self.admin_site.name))
        if target is not None and not may_manage_user(request.user, target):
            raise PermissionDenied("Only an owner can change an owner's password.")
        return super().user_change_password(request, id, form_url)

    @admin.action(description="Deactivate selected users (and revoke their tenant tokens)")
    def deactivate_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        run_for_each(
            request,
            queryset,
            lambda tenant, user: user_deactivate(tenant=tenant, actor=request.user, user=user),
            done="Deactivated {count} user(s).",
        )


# --- API tokens -------------------------------------------------------------------------------


def _origins_field() -> forms.CharField:
    return forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "https://www.example.com"}),
        help_text=(
            "Bot tokens only: the web sites (origins) whose pages may use this token, one per line. "
            "Empty refuses every browser; * allows any site."
        ),
    )


def _split_origins(text: str) -> list[str]:
    return [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]


RATE_LIMIT_HELP = "Empty: the server default. 0: unlimited."


NO_ORIGINS_MESSAGE = (
    "Browsers refuse a widget token without allowed origins. Add your site's address, such as "
    "https://www.example.com, or tick “Create it without origins” to use it from servers only."
)


class ApiTokenAddForm(ServiceForm):
    allowed_origins_text = _origins_field()
    allowed_origins_text.label = "Allowed origins"
    confirm_no_origins = forms.BooleanField(
        required=False,
        label="Create it without origins",
        help_text="For a widget token used only from servers, never from a web page.",
    )
    error_fields = {"allowed_origins": "allowed_origins_text", "bot_profile_id": "bot_profile"}

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        no_origins = not _split_origins(data.get("allowed_origins_text") or "")
        if data.get("bot_profile") and no_origins and not data.get("confirm_no_origins"):
            self.add_error("allowed_origins_text", NO_ORIGINS_MESSAGE)
        return data

    class Meta:
        model = ApiToken
        fields = ["tenant", "user", "name", "bot_profile", "expires_at", *RATE_LIMIT_FIELDS]
        help_texts = {field: RATE_LIMIT_HELP for field in RATE_LIMIT_FIELDS}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "user" in self.fields:
            self.fields["user"].required = False
            self.fields[
                "user"
            ].help_text = "The user a tenant token acts as (with that user's role). Default: the tenant's first owner."
            self.fields["user"].queryset = User.objects.filter(tenant__isnull=False, is_active=True)
        self.fields["bot_profile"].help_text = "Set it for a widget token: it may only chat with this bot."

    def _creator(self, tenant: Tenant) -> User:
        request_user = self.dashboard_request.user
        if request_user.tenant_id is not None:
            return request_user
        chosen = self.cleaned_data.get("user")
        if chosen is not None:
            return chosen
        owner = first_active_owner(tenant=tenant)
        if owner is None:
            raise forms.ValidationError({"user": "This tenant has no active owner; choose the user."})
        return owner

    def perform(self, tenant: Tenant) -> ApiToken:
        data = self.cleaned_data
        token, raw = api_token_create(
            tenant=tenant,
            user=self._creator(tenant),
            name=data["name"],
            bot_profile=data.get("bot_profile"),
            allowed_origins=_split_origins(data.get("allowed_origins_text") or ""),
            expires_at=data.get("expires_at"),
            rate_limits={field: data.get(field) for field in RATE_LIMIT_FIELDS if data.get(field) is not None},
        )
        self.raw_token = raw
        return token


class ApiTokenChangeForm(ServiceForm):
    allowed_origins_text = _origins_field()
    allowed_origins_text.label = "Allowed origins"
    error_fields = {"allowed_origins": "allowed_origins_text"}

    class Meta:
        model = ApiToken
        fields = ["name", *RATE_LIMIT_FIELDS]
        help_texts = {field: RATE_LIMIT_HELP for field in RATE_LIMIT_FIELDS}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["allowed_origins_text"].initial = "\n".join(self.instance.allowed_origins or [])

    def perform(self, tenant: Tenant) -> ApiToken:
        data = self.cleaned_data
        token = ApiToken.objects.get(pk=self.instance.pk)
        bot_fields: dict[str, Any] = {}
        if token.is_bot_token:
            bot_fields = {
                "allowed_origins": _split_origins(data.get("allowed_origins_text") or ""),
                "rate_limits": {field: data.get(field) for field in RATE_LIMIT_FIELDS},
            }
        return api_token_update(
            tenant=tenant, actor=self.dashboard_request.user, token=token, name=data["name"], **bot_fields
        )


@admin.register(ApiToken)
class ApiTokenAdmin(TenantModelAdmin):
    """Tokens are created here or with `manage.py createtoken`; revoked, never deleted (the row
    keeps the audit trail)."""

    operations = frozenset({VIEW, ADD, CHANGE})
    list_display = [
        "name",
        "token_prefix",
        "kind",
        "bot_profile",
        "user",
        "origins",
        "is_active",
        "expires_at",
        "last_used_at",
        "created_at",
    ]
    list_filter = ["is_active", "is_dashboard_preview", "bot_profile"]
    search_fields = ["name", "token_prefix", "user__email"]
    list_select_related = ["tenant", "bot_profile", "user"]
    readonly_fields = [
        "id",
        "token_prefix",
        "kind",
        "bot_profile",
        "user",
        "is_active",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "created_at",
    ]
    actions = ["revoke_tokens"]
    date_hierarchy = "created_at"

    def get_form(self, request: HttpRequest, obj: ApiToken | None = None, change: bool = False, **kwargs: Any) -> type:
        kwargs["form"] = ApiTokenChangeForm if obj is not None else ApiTokenAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: ApiToken | None = None) -> list[tuple[str | None, dict]]:
        if obj is None:
            fieldsets: list[tuple[str | None, dict]] = [
                (
                    None,
                    {
                        "fields": [
                            "tenant",
                            "user",
                            "name",
                            "bot_profile",
                            "allowed_origins_text",
                            "confirm_no_origins",
                            "expires_at",
                        ]
                    },
                ),
                ("Chat limits (bot tokens)", {"fields": list(RATE_LIMIT_FIELDS), "classes": ["collapse"]}),
            ]
            if not is_operator(request):
                fieldsets[0][1]["fields"] = [
                    "name",
                    "bot_profile",
                    "allowed_origins_text",
                    "confirm_no_origins",
                    "expires_at",
                ]
            return fieldsets
        editable = obj.is_active
        main = ["id", "name", "token_prefix", "kind", "bot_profile", "user"]
        if obj.is_bot_token:
            main.append("allowed_origins_text" if editable else "origins")
        fieldsets = [
            (None, {"fields": main}),
            ("State", {"fields": ["is_active", "expires_at", "last_used_at", "revoked_at", "created_at"]}),
        ]
        if obj.is_bot_token:
            fieldsets.insert(1, ("Chat limits", {"fields": list(RATE_LIMIT_FIELDS)}))
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> list[str]:
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is None:
            return ["id"]
        if not obj.is_active:
            readonly += ["name", "origins", *RATE_LIMIT_FIELDS]
        return readonly

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        if initial.get("bot_profile"):
            initial.setdefault("name", "Website widget")
        return initial

    def has_change_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return super().has_change_permission(request, obj) and (obj is None or obj.is_active)

    @admin.display(description="Kind")
    def kind(self, token: ApiToken) -> str:
        if token.is_dashboard_preview:
            return "try-it (dashboard)"
        return "bot (widget)" if token.is_bot_token else "tenant"

    @admin.display(description="Allowed origins")
    def origins(self, token: ApiToken) -> str:
        if not token.is_bot_token:
            return "—"
        return ", ".join(token.allowed_origins) or "none (browsers refused)"

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        # The form's service call saved the token; keep its raw value for this response only.
        request.new_raw_token = getattr(form, "raw_token", "")

    def response_add(self, request: HttpRequest, obj: ApiToken, post_url_continue: str | None = None) -> HttpResponse:
        if obj.is_bot_token:
            # A widget token is publishable and kept for the bot's snippet: the bot's page shows the
            # code to paste, with this token in it, instead of a "copy it now" page.
            messages.success(request, f"Widget token “{obj.name}” created: the code below contains it.")
            bot_page = reverse("admin:bots_botprofile_change", args=[obj.bot_profile_id])
            return HttpResponseRedirect(f"{bot_page}?token={obj.pk}#embed")
        return secret_once_response(
            request,
            title="Copy the new token now",
            opts=self.opts,
            items=[(f"{obj.name} ({obj.token_prefix}…)", getattr(request, "new_raw_token", ""))],
        )

    @admin.action(description="Revoke selected tokens")
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        run_for_each(
            request,
            queryset.filter(is_active=True),
            lambda tenant, token: api_token_revoke(tenant=tenant, token=token),
            done="Revoked {count} token(s).",
        )
