"""The base of every dashboard ModelAdmin, and forms whose saves go through the services.

`TenantModelAdmin` decides permissions from the dashboard role (not Django's permission table):
an admin class lists the operations it offers (`operations`), and any user who may use the
dashboard may perform those — within the rows their scope lets them reach. Operators get a
tenant column and filter; tenant users never see the tenant field (their scope fills it).

`ServiceForm` makes the admin's "save" call the same service the API calls (validation, encryption,
SSRF checks, events), inside the acting tenant's scope, and turns the service's errors into form
errors — so the dashboard cannot write anything the API would refuse.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.html import format_html

from minirag.dashboard.access import can_use_dashboard, is_operator
from minirag.errors import ApplicationError
from tenants.models import Tenant
from tenants.tenancy import tenant_scope

VIEW, ADD, CHANGE, DELETE = "view", "add", "change", "delete"


def acting_tenant(request: HttpRequest, obj: models.Model | None = None) -> Tenant:
    """The tenant a dashboard write acts for: the user's own, or the row's (operators)."""
    if request.user.tenant_id is not None:
        return request.user.tenant
    if obj is not None and getattr(obj, "tenant_id", None) is not None:
        return obj.tenant
    raise Http404("No tenant to act for.")


def run_for_each(
    request: HttpRequest,
    queryset: models.QuerySet,
    operation: Callable[[Tenant, Any], object],
    *,
    done: str,
) -> None:
    """Run an admin action row by row, each in its row's tenant scope, so one refusal (an
    ingestion already running, say) neither stops nor undoes the others: each service call is
    its own transaction (and queues its tasks after committing). Reports `done` with the number
    that succeeded, any text an operation returns as a note, and every refusal readably."""
    succeeded = 0
    for obj in queryset:
        tenant = acting_tenant(request, obj)
        try:
            with tenant_scope(tenant):
                note = operation(tenant, obj)
        except ApplicationError as exc:
            messages.error(request, f"{obj}: {exc.detail}")
            continue
        succeeded += 1
        if isinstance(note, str):
            messages.info(request, f"{obj}: {note}")
    if succeeded:
        messages.success(request, done.format(count=succeeded))


def secret_once_response(request: HttpRequest, *, title: str, opts: Any, items: list[tuple[str, str]]) -> HttpResponse:
    """A page showing freshly made secrets (label, value) once. Never a message: messages wait in
    the session; these values are stored nowhere readable."""
    context = {**admin.site.each_context(request), "title": title, "opts": opts, "items": items}
    return TemplateResponse(request, "admin/dashboard/secret_once.html", context)


def status_badge(value: str, label: str, tone: str) -> str:
    return format_html('<span class="mr-badge mr-badge-{}" data-status="{}">{}</span>', tone, value, label)


class NotFoundInsteadOfRedirect:
    """A missing or other tenant's object is a 404 (Django's admin would redirect with a "perhaps
    it was deleted" note, which confirms nothing but is not the 404 the rest of MiniRAG answers)."""

    def _get_obj_does_not_exist_redirect(self, request: HttpRequest, opts: Any, object_id: str) -> HttpResponseRedirect:
        raise Http404(f"No {opts.verbose_name} with this id.")

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: dict | None = None) -> HttpResponse:
        # Django checks the delete permission before looking the object up; look it up first so
        # another tenant's id is a 404 whatever the model's permissions.
        if self.get_object(request, unquote(object_id)) is None:
            self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        return super().delete_view(request, object_id, extra_context)


class TenantModelAdmin(NotFoundInsteadOfRedirect, admin.ModelAdmin):
    """Permissions by dashboard role; tenant column and filter for operators only."""

    operations: frozenset[str] = frozenset({VIEW})

    def _may(self, request: HttpRequest, operation: str) -> bool:
        return operation in self.operations and can_use_dashboard(request.user)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return can_use_dashboard(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, VIEW) or self._may(request, CHANGE)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return self._may(request, ADD)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, CHANGE)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, DELETE)

    # --- The tenant column, filter and field ---------------------------------------------------

    def get_list_display(self, request: HttpRequest) -> Sequence[Any]:
        columns = [column for column in super().get_list_display(request) if column != "tenant"]
        if is_operator(request) and self._has_tenant_field():
            columns.insert(1, "tenant")
        return columns

    def get_list_filter(self, request: HttpRequest) -> Sequence[Any]:
        filters = [item for item in super().get_list_filter(request) if item != "tenant"]
        if is_operator(request) and self._has_tenant_field():
            filters.insert(0, "tenant")
        return filters

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list[tuple[str | None, dict[str, Any]]]:
        return self.without_tenant_field(request, super().get_fieldsets(request, obj))

    @staticmethod
    def without_tenant_field(request: HttpRequest, fieldsets: Sequence[tuple[str | None, dict[str, Any]]]) -> list:
        """Operators choose the tenant of what they add; a tenant user's scope sets it."""
        if is_operator(request):
            return list(fieldsets)
        return [
            (name, {**options, "fields": [field for field in options["fields"] if field != "tenant"]})
            for name, options in fieldsets
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Sequence[str]:
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None and self._has_tenant_field() and "tenant" not in readonly:
            readonly.append("tenant")  # a row never moves to another tenant
        return readonly

    def _has_tenant_field(self) -> bool:
        return any(field.name == "tenant" for field in self.model._meta.fields)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> type:
        form = super().get_form(request, obj, change=change, **kwargs)
        form.dashboard_request = request  # a fresh class per request (modelform_factory)
        return form

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not isinstance(form, ServiceForm):  # a service form's perform() saved it already
            super().save_model(request, obj, form, change)


class ServiceForm(forms.ModelForm):
    """A model form saved by a service. Subclasses implement `perform(tenant)`, which creates or
    changes the row through the service and returns it; it runs in that tenant's scope and in a
    savepoint, after the fields validated, so a refusal leaves nothing behind and shows up on the
    form. `error_fields` maps the service's error keys to form fields."""

    dashboard_request: HttpRequest
    error_fields: dict[str, str] = {}

    def acting_tenant(self) -> Tenant | None:
        request = self.dashboard_request
        if request.user.tenant_id is not None:
            return request.user.tenant
        if not self.instance._state.adding:
            return self.instance.tenant
        tenant = self.cleaned_data.get("tenant")
        if tenant is None and "tenant" not in self.errors:
            self.add_error("tenant" if "tenant" in self.fields else None, "Choose the tenant this belongs to.")
        return tenant

    def perform(self, tenant: Tenant) -> models.Model:
        raise NotImplementedError

    def _post_clean(self) -> None:
        # Replaces ModelForm's own instance validation: the service validates (full_clean) and saves.
        if self.errors:
            return
        tenant = self.acting_tenant()
        if tenant is None:
            return
        try:
            with transaction.atomic(), tenant_scope(tenant):
                self.instance = self.perform(tenant)
        except ApplicationError as exc:
            self._add_service_errors(exc.detail, exc.errors or {})
        except ValidationError as exc:
            self._add_service_errors("", exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages})

    def _add_service_errors(self, detail: str, errors: dict[str, list[str]]) -> None:
        placed = False
        for key, field_messages in errors.items():
            field = self.error_fields.get(key, key)
            if field in self.fields:
                for message in field_messages:
                    self.add_error(field, message)
                placed = True
            else:
                for message in field_messages:
                    self.add_error(None, f"{key}: {message}" if key else message)
                placed = placed or bool(field_messages)
        if not placed and detail:
            self.add_error(None, detail)

    def save(self, commit: bool = True) -> models.Model:
        self.save_m2m = lambda: None  # the service saved everything already
        return self.instance


class ReadOnlyInline(admin.TabularInline):
    """A list of related rows on a parent's page, linking to each row's own page."""

    extra = 0
    can_delete = False
    show_change_link = True
    max_num = 0

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_use_dashboard(request.user)
