"""The dashboard's AdminSite: who may log in, the tenant-aware login form, and the pages that are
not a model's (usage, health)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.urls import URLPattern, path

from minirag.dashboard.access import MEMBER_REFUSAL, can_use_dashboard, is_operator


class DashboardLoginForm(AdminAuthenticationForm):
    """Email and password, plus the workspace (tenant slug) for an email registered in several."""

    workspace = forms.SlugField(
        required=False,
        label="Workspace",
        help_text="Your tenant's slug. Needed only if your email belongs to several workspaces.",
    )

    def clean(self) -> dict[str, Any]:
        email = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if email is not None and password:
            self.user_cache = authenticate(
                self.request,
                username=email,
                password=password,
                tenant_slug=self.cleaned_data.get("workspace") or None,
            )
            if self.user_cache is None:
                raise ValidationError(
                    "Please enter the correct email and password (and the workspace, if your email "
                    "belongs to several). Both fields may be case-sensitive.",
                    code="invalid_login",
                )
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data

    def confirm_login_allowed(self, user: Any) -> None:
        if not can_use_dashboard(user):
            raise ValidationError(MEMBER_REFUSAL, code="invalid_login")


class DashboardSite(admin.AdminSite):
    site_header = "MiniRAG dashboard"
    site_title = "MiniRAG"
    index_title = "Overview"
    login_form = DashboardLoginForm
    # The widget lives under /dashboard/widget/ (served by minirag.widget, not by this site).
    final_catch_all_view = False

    def has_permission(self, request: HttpRequest) -> bool:
        return can_use_dashboard(request.user)

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        context = super().each_context(request)
        context["is_operator"] = request.user.is_authenticated and is_operator(request)
        if request.user.is_authenticated and request.user.tenant_id is not None:
            context["workspace"] = request.user.tenant
        return context

    def get_urls(self) -> list[URLPattern]:
        from minirag.dashboard import views

        extra = [
            path("usage/", self.admin_view(views.usage), name="usage"),
            path("health/", self.admin_view(views.health), name="health"),
        ]
        return extra + super().get_urls()
