"""System check: every model with a `tenant` foreign key must be scoped by default.

`manage.py check` (and so every test run, `migrate` and server start) fails with tenants.E001
when a model carries a tenant but its default manager would let an unscoped query through.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.apps import apps
from django.core import checks
from django.core.exceptions import FieldDoesNotExist
from django.db import models

from tenants.tenancy import TenantOwnedModel, TenantScopedManager


def _label(model: type[models.Model] | str) -> str:
    # An unresolved lazy reference ("tenants.Tenant") is still a string.
    return model if isinstance(model, str) else model._meta.label


def unscoped_tenant_models(candidates: Iterable[type[models.Model]]) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    for model in candidates:
        try:
            field = model._meta.get_field("tenant")
        except FieldDoesNotExist:
            continue
        if not isinstance(field, models.ForeignKey) or _label(field.related_model) != "tenants.Tenant":
            continue
        if not issubclass(model, TenantOwnedModel) or not isinstance(model._default_manager, TenantScopedManager):
            errors.append(
                checks.Error(
                    f"{model._meta.label} has a tenant foreign key but its default manager is not scoped.",
                    hint="Inherit from tenants.tenancy.TenantOwnedModel and keep TenantScopedManager "
                    "as the default manager (`objects`).",
                    obj=model,
                    id="tenants.E001",
                )
            )
    return errors


@checks.register(checks.Tags.models)
def check_tenant_owned_models_are_scoped(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    return unscoped_tenant_models(apps.get_models())
