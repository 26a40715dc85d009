"""The dashboard's AdminSite: who may log in, the tenant-aware login form, the start page (its
index), where "View site" leads, and the pages that are not a model's (usage, health)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm, AdminPasswordChangeForm
from django.contrib.auth import authenticate
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import URLPattern, path, reverse

from inbox.selectors import inbox_waiting_count, user_may_operate
from minirag.dashboard.access import MEMBER_REFUSAL, can_use_dashboard, is_operator, may_enter_dashboard
from minirag.errors import ApplicationError
from tenants.current_password import TooManyWrongPasswords, verify_current_password
from tenants.services import validate_new_password


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
        if not may_enter_dashboard(user):
            raise ValidationError(MEMBER_REFUSAL, code="invalid_login")


class DashboardPasswordChangeForm(AdminPasswordChangeForm):
    """Django's own "change your password" form (old password, new one twice), with the API's
    rules: wrong old passwords are counted per account and refused for a while once there were too
    many (so the page cannot be used to guess the password), and the new one is 8-128
    characters. Saving changes the password hash, which ends the user's other sessions and every
    JWT; Django's view keeps this session."""

    def clean_old_password(self) -> str:
        old_password = self.cleaned_data.get("old_password", "")
        try:
            verify_current_password(user=self.user, password=old_password)
        except ApplicationError as exc:
            raise ValidationError(self.error_messages["password_incorrect"], code="password_incorrect") from exc
        except TooManyWrongPasswords as exc:
            raise ValidationError(str(exc.detail), code="throttled") from exc
        return old_password

    def clean_new_password1(self) -> str:
        password = self.cleaned_data.get("new_password1", "")
        try:
            validate_new_password(password, self.user)
        except ApplicationError as exc:
            raise ValidationError((exc.errors or {}).get("password") or [exc.detail]) from exc
        return password


# The site's own pages a member who only answers visitors may open: the start page (which sends
# them to the inbox), their password, logging out, and the admin's script translations.
INBOX_MEMBER_SITE_VIEWS = frozenset({"index", "logout", "password_change", "password_change_done", "i18n_javascript"})


class DashboardSite(admin.AdminSite):
    site_header = "MiniRAG dashboard"
    site_title = "MiniRAG"
    index_title = "Start"
    login_form = DashboardLoginForm
    # The widget lives under /dashboard/widget/ (served by minirag.widget, not by this site).
    final_catch_all_view = False

    def has_permission(self, request: HttpRequest) -> bool:
        # Members who answer visitors get in too, but only to the inbox (`admin_view`).
        return may_enter_dashboard(request.user)

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        context = super().each_context(request)
        context["is_operator"] = request.user.is_authenticated and is_operator(request)
        if request.user.is_authenticated and request.user.tenant_id is not None:
            context["workspace"] = request.user.tenant
            if user_may_operate(request.user):
                # The header's inbox link counts the visitors waiting for a person, on every page.
                context["inbox_waiting"] = inbox_waiting_count(tenant=request.user.tenant)
        context["site_url"], context["site_link_label"] = self.view_site_link(request, context.get("workspace"))
        return context

    def view_site_link(self, request: HttpRequest, workspace: Any) -> tuple[str, str]:
        """Where "View site" leads (Django's default, `/`, is only a redirect to the API docs).

        MiniRAG has no public site of its own: what a visitor sees is the widget on the customer's
        site. So, where the widget demo page runs (embedded mode, `make run`) and shows the viewer's
        own bot — for operators, and for the demo workspace's staff — it leads there: the product as
        visitors see it. Everyone else has no page of theirs outside the dashboard (the demo page
        would show another workspace's bot), so it leads to the start page, labelled as such."""
        start = reverse("admin:index", current_app=self.name)
        if not request.user.is_authenticated or not settings.WIDGET_DEMO_ENABLED:
            return start, "Start page"
        from minirag.demo import DEMO_SLUG
        from tenants.models import Tenant

        if workspace is not None:
            shows_own_bot = workspace.slug == DEMO_SLUG
        else:
            shows_own_bot = is_operator(request) and Tenant.objects.filter(slug=DEMO_SLUG, is_active=True).exists()
        return (reverse("widget-demo"), "View the demo site") if shows_own_bot else (start, "Start page")

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """The start page: Django's app list, plus what to do next (tenants) or every tenant at a
        glance (operators) — minirag/dashboard/start.py."""
        from minirag.dashboard import views

        if not can_use_dashboard(request.user):
            return redirect("admin:inbox", permanent=False)
        return super().index(request, {**views.start_context(request), **(extra_context or {})})

    def password_change(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        from django.contrib.auth.views import PasswordChangeView

        # AdminSite.password_change with the form above; the rest as Django's.
        request.current_app = self.name
        return PasswordChangeView.as_view(
            form_class=DashboardPasswordChangeForm,
            success_url=reverse("admin:password_change_done", current_app=self.name),
            extra_context={**self.each_context(request), **(extra_context or {})},
            template_name=self.password_change_template or "registration/password_change_form.html",
        )(request)

    def admin_view(self, view: Callable[..., Any], cacheable: bool = False) -> Callable[..., Any]:
        """Every dashboard page, fail-closed: members who only answer visitors (may_enter_dashboard)
        get a 403 everywhere but the inbox and their own session's pages."""

        @functools.wraps(view)
        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            if not can_use_dashboard(request.user) and not self._open_to_inbox_members(view):
                raise PermissionDenied(MEMBER_REFUSAL)
            return view(request, *args, **kwargs)

        return super().admin_view(guarded, cacheable)

    def _open_to_inbox_members(self, view: Callable[..., Any]) -> bool:
        if getattr(view, "__self__", None) is self:
            return view.__name__ in INBOX_MEMBER_SITE_VIEWS
        return getattr(view, "open_to_inbox_members", False)

    def get_urls(self) -> list[URLPattern]:
        from inbox import dashboard as inbox_pages
        from minirag.dashboard import views

        extra = [
            path("usage/", self.admin_view(views.usage), name="usage"),
            path("health/", self.admin_view(views.health), name="health"),
            path("inbox/", self.admin_view(inbox_pages.inbox), name="inbox"),
            path("inbox/list/", self.admin_view(inbox_pages.inbox_list), name="inbox_list"),
            path("inbox/<uuid:chat_id>/", self.admin_view(inbox_pages.transcript), name="inbox_transcript"),
            path(
                "inbox/<uuid:chat_id>/<str:action>/",
                self.admin_view(inbox_pages.chat_action),
                name="inbox_action",
            ),
        ]
        return extra + super().get_urls()
