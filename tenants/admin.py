"""Operator console for tenants, users and API tokens. Secrets are never displayed."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm

from tenants.models import ApiToken, Tenant, User


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "plan", "is_active", "created_at"]
    list_filter = ["is_active", "plan"]
    search_fields = ["name", "slug"]
    readonly_fields = ["id", "created_at", "updated_at"]


class UserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ["tenant", "email", "role"]


class UserChangeFormWithEmail(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserChangeFormWithEmail
    add_form = UserCreationForm
    list_display = ["email", "tenant", "role", "is_active", "is_staff", "last_login"]
    list_filter = ["tenant", "role", "is_active", "is_staff", "is_superuser"]
    search_fields = ["email", "display_name", "tenant__slug"]
    ordering = ["email"]
    readonly_fields = ["id", "created_at", "updated_at", "last_login"]
    fieldsets = [
        (None, {"fields": ["id", "tenant", "email", "password"]}),
        ("Profile", {"fields": ["display_name", "role"]}),
        ("Access", {"fields": ["is_active", "is_staff", "is_superuser"]}),
        ("Dates", {"fields": ["last_login", "created_at", "updated_at"]}),
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["tenant", "email", "role", "password1", "password2"]}),
    ]
    filter_horizontal: list[str] = []


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "token_prefix", "tenant", "user", "bot_profile", "is_active", "expires_at", "last_used_at"]
    list_filter = ["tenant", "is_active"]
    search_fields = ["name", "token_prefix", "user__email"]
    exclude = ["token_hash"]
    readonly_fields = ["id", "token_prefix", "last_used_at", "revoked_at", "created_at"]

    def has_add_permission(self, request: object) -> bool:
        # A token's raw value must be shown once: create tokens via the API or `manage.py createtoken`.
        return False
