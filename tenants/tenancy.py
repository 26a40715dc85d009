"""The tenancy core: which tenant the current code acts for, and querysets that obey it.

The current tenant lives in a ContextVar and changes only through two context managers:

* ``tenant_scope(tenant)``: queries on tenant-owned models are filtered to that tenant, and rows
  saved get (or must already have) that tenant;
* ``tenant_scope_disabled(reason)``: queries are unfiltered, for code that must see every tenant
  (the operator admin, authentication, migrations, reapers). The reason is required so every
  such place explains itself.

Outside both, *building* a queryset stays legal (class attributes, lazy querysets) but
*executing* one on a tenant-owned model raises ``TenantScopeError``: forgetting the scope fails
closed instead of leaking every tenant's rows.

Because it is a ContextVar, the scope follows the code across threads started through asgiref
and across asyncio tasks, and never leaks from one request or task to the next: both context
managers restore the previous value in ``finally``.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import sql

if TYPE_CHECKING:
    from tenants.models import Tenant


class TenantScopeError(RuntimeError):
    """A tenant-owned query or write happened outside a matching tenant scope."""


@dataclass(frozen=True, slots=True)
class ScopeState:
    """What the current context may see: one tenant, every tenant (disabled), or nothing."""

    tenant_id: uuid.UUID | None = None
    disabled_reason: str | None = None

    @property
    def is_set(self) -> bool:
        return self.tenant_id is not None or self.disabled_reason is not None

    @property
    def is_disabled(self) -> bool:
        return self.disabled_reason is not None


_UNSET = ScopeState()
_scope: ContextVar[ScopeState] = ContextVar("minirag_tenant_scope", default=_UNSET)


def _as_tenant_id(tenant: Tenant | uuid.UUID | str) -> uuid.UUID:
    if isinstance(tenant, uuid.UUID):
        return tenant
    if isinstance(tenant, str):
        return uuid.UUID(tenant)
    if tenant.pk is None:
        raise TenantScopeError("Cannot enter the scope of an unsaved tenant.")
    return tenant.pk


@contextmanager
def tenant_scope(tenant: Tenant | uuid.UUID | str) -> Iterator[uuid.UUID]:
    """Act for exactly one tenant inside the block (nesting allowed; the outer scope returns)."""
    token = _scope.set(ScopeState(tenant_id=_as_tenant_id(tenant)))
    try:
        yield _scope.get().tenant_id  # type: ignore[misc]
    finally:
        _scope.reset(token)


@contextmanager
def tenant_scope_disabled(reason: str) -> Iterator[None]:
    """See every tenant inside the block. ``reason`` says why, for the reader and the logs."""
    if not reason or not reason.strip():
        raise ValueError("tenant_scope_disabled() needs a reason.")
    token = _scope.set(ScopeState(disabled_reason=reason))
    try:
        yield
    finally:
        _scope.reset(token)


def current_scope() -> ScopeState:
    return _scope.get()


def current_tenant_id() -> uuid.UUID:
    """The tenant the current code acts for; raises when there is none (unset or disabled)."""
    state = _scope.get()
    if state.tenant_id is None:
        raise TenantScopeError(
            "No tenant is active here: wrap the code in tenant_scope(tenant)."
            if not state.is_disabled
            else f"The tenant scope is disabled here ({state.disabled_reason}); there is no current tenant."
        )
    return state.tenant_id


# --- Querysets and managers -------------------------------------------------------------------


class TenantScopedQuerySet(models.QuerySet):
    """A queryset that applies the tenant filter no later than the moment it is executed.

    ``_tenant_filtered`` records whether the filter is already in the query. A queryset built
    inside a scope is filtered at once; one built outside (an import-time class attribute, say)
    is filtered when executed, by the scope active *then* — or refuses to run if there is none.
    """

    _tenant_filtered: bool = False

    def _clone(self) -> Self:
        clone = super()._clone()
        clone._tenant_filtered = self._tenant_filtered
        return clone

    def _scope_filter_in_place(self) -> None:
        if self._tenant_filtered:
            return
        state = _scope.get()
        if state.tenant_id is not None:
            self.query.add_q(models.Q(tenant_id=state.tenant_id))
            self._tenant_filtered = True
        elif not state.is_disabled:
            raise TenantScopeError(
                f"Query on {self.model.__name__} executed outside a tenant scope. Wrap it in "
                "tenant_scope(tenant), or tenant_scope_disabled(reason) if it must see every tenant."
            )

    def _ready_to_execute(self) -> Self:
        """A copy of this queryset that is safe to execute under the current scope."""
        if self._tenant_filtered:
            return self
        clone = self._chain()
        clone._scope_filter_in_place()
        return clone

    # Every path by which a queryset reaches the database goes through one of these.
    def _fetch_all(self) -> None:
        if self._result_cache is None:
            self._scope_filter_in_place()
        super()._fetch_all()

    def _iterator(self, use_chunked_fetch: bool, chunk_size: int | None) -> Iterator[Any]:
        self._scope_filter_in_place()
        yield from super()._iterator(use_chunked_fetch, chunk_size)

    async def aiterator(self, chunk_size: int = 2000) -> Any:
        self._scope_filter_in_place()
        async for item in super().aiterator(chunk_size=chunk_size):
            yield item

    def count(self) -> int:
        if self._result_cache is not None:
            return len(self._result_cache)
        return super(TenantScopedQuerySet, self._ready_to_execute()).count()

    def exists(self) -> bool:
        if self._result_cache is not None:
            return bool(self._result_cache)
        return super(TenantScopedQuerySet, self._ready_to_execute()).exists()

    def contains(self, obj: models.Model) -> bool:
        return super(TenantScopedQuerySet, self._ready_to_execute()).contains(obj)

    def aggregate(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return super(TenantScopedQuerySet, self._ready_to_execute()).aggregate(*args, **kwargs)

    def update(self, **kwargs: Any) -> int:
        updated = super(TenantScopedQuerySet, self._ready_to_execute()).update(**kwargs)
        from tenants.credential_cache import after_queryset_update

        after_queryset_update(self.model, kwargs)
        return updated

    update.alters_data = True

    def _update(self, values: Any) -> Any:
        return super(TenantScopedQuerySet, self._ready_to_execute())._update(values)

    _update.alters_data = True

    def delete(self) -> tuple[int, dict[str, int]]:
        return super(TenantScopedQuerySet, self._ready_to_execute()).delete()

    delete.alters_data = True

    def _raw_delete(self, using: str) -> int:
        return super(TenantScopedQuerySet, self._ready_to_execute())._raw_delete(using)

    def explain(self, *, format: str | None = None, **options: Any) -> str:  # noqa: A002
        return super(TenantScopedQuerySet, self._ready_to_execute()).explain(format=format, **options)

    def resolve_expression(self, *args: Any, **kwargs: Any) -> Any:
        # Used as a subquery (`filter(x__in=qs)`): the inner query must be scoped too.
        return super(TenantScopedQuerySet, self._ready_to_execute()).resolve_expression(*args, **kwargs)

    def bulk_create(self, objs: Any, *args: Any, **kwargs: Any) -> list[Any]:
        objs = list(objs)
        for obj in objs:
            _assign_or_check_tenant(obj)
        return super().bulk_create(objs, *args, **kwargs)

    def bulk_update(self, objs: Any, fields: Any, batch_size: int | None = None) -> int:
        objs = list(objs)
        for obj in objs:
            _assign_or_check_tenant(obj)
        return super().bulk_update(objs, fields, batch_size=batch_size)


class TenantScopedManager(models.Manager.from_queryset(TenantScopedQuerySet)):  # type: ignore[misc]
    """Default manager of every tenant-owned model: filtered to the current tenant, fail-closed."""

    def get_queryset(self) -> TenantScopedQuerySet:
        queryset: TenantScopedQuerySet = super().get_queryset()
        state = _scope.get()
        if state.tenant_id is not None:
            if queryset.query.where:  # a manager further down already filters: add ours to it
                queryset = queryset.filter(tenant_id=state.tenant_id)
            else:
                queryset.query = _tenant_filtered_query(self.model, state.tenant_id).chain()
            queryset._tenant_filtered = True
        return queryset


@functools.lru_cache(maxsize=1024)
def _tenant_filtered_query(model: type[models.Model], tenant_id: uuid.UUID) -> sql.Query:
    """The query `model.objects.filter(tenant_id=...)` starts from, built once per model and tenant.

    Building the filter (`Query.add_q`: resolving the field, the lookup, the WHERE tree) costs ten
    times as much as copying the finished query, and every queryset of a request starts with it.
    Only copies (`chain()`) are ever handed out, so the cached query is never changed.
    """
    query = sql.Query(model)
    query.add_q(models.Q(tenant_id=tenant_id))
    return query


def _assign_or_check_tenant(obj: models.Model) -> None:
    """Fill ``tenant_id`` from the scope, or refuse a write that does not belong to it."""
    state = _scope.get()
    tenant_id = getattr(obj, "tenant_id", None)
    if state.tenant_id is not None:
        if tenant_id is None:
            obj.tenant_id = state.tenant_id  # type: ignore[attr-defined]
        elif tenant_id != state.tenant_id:
            raise TenantScopeError(
                f"Refusing to write {type(obj).__name__} of tenant {tenant_id} "
                f"inside the scope of tenant {state.tenant_id}."
            )
    elif state.is_disabled:
        if tenant_id is None and not obj._meta.get_field("tenant").null:
            raise TenantScopeError(
                f"{type(obj).__name__} written with the tenant scope disabled needs an explicit tenant."
            )
    else:
        raise TenantScopeError(f"{type(obj).__name__} written outside a tenant scope.")


# --- The abstract model -----------------------------------------------------------------------


class TenantOwnedModel(models.Model):
    """Base of every table that belongs to a tenant.

    ``objects`` is scoped (see the module docstring); ``all_tenants`` is the deliberately named
    escape hatch for the few places that must look across tenants (authentication, operator
    tooling). ``save()`` fills or guards ``tenant_id``; ``clean()`` refuses foreign keys that point
    at another tenant's rows, so services that call ``full_clean()`` stop cross-tenant
    references before they are created.
    """

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+", db_index=True)

    objects = TenantScopedManager()
    all_tenants = models.Manager()  # noqa: DJ012 - a manager, which ruff mistakes for a field

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        _assign_or_check_tenant(self)
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        _assign_or_check_tenant(self)
        return super().delete(*args, **kwargs)

    def full_clean(self, *args: Any, **kwargs: Any) -> None:
        # Validation runs before save(), so take the tenant from the scope here already.
        if self.tenant_id is None:
            state = _scope.get()
            if state.tenant_id is not None:
                self.tenant_id = state.tenant_id
        super().full_clean(*args, **kwargs)

    def clean_fields(self, exclude: Any = None) -> None:
        # A set foreign key to a tenant-owned row is checked by clean() instead, with one message
        # whether the row is missing or another tenant's (Django's own check would say "not a
        # valid choice", and under row-level security cannot see the other tenant's row anyway).
        exclude = set(exclude or ())
        exclude.update(field.name for field in _tenant_references(self) if getattr(self, field.attname) is not None)
        super().clean_fields(exclude=exclude)

    def clean(self) -> None:
        super().clean()
        errors = cross_tenant_reference_errors(self)
        if errors:
            raise ValidationError(errors)


def _tenant_references(obj: models.Model) -> list[models.Field]:
    """The foreign keys of `obj` (its tenant's own aside) that point at tenant-owned rows."""
    return [
        field
        for field in obj._meta.concrete_fields
        if field.is_relation
        and field.name != "tenant"
        and isinstance(field.related_model, type)
        and issubclass(field.related_model, TenantOwnedModel)
    ]


def cross_tenant_reference_errors(obj: models.Model) -> dict[str, str]:
    """Field name → message for each foreign key of ``obj`` that points at another tenant's row."""
    errors: dict[str, str] = {}
    own_tenant_id = getattr(obj, "tenant_id", None)
    for field in _tenant_references(obj):
        related_model = field.related_model
        related_id = getattr(obj, field.attname)
        if related_id is None:
            continue
        cached = obj._state.fields_cache.get(field.name)
        if cached is not None and cached.pk == related_id:
            related_tenant_id = cached.tenant_id
        else:
            related_tenant_id = (
                related_model.all_tenants.filter(pk=related_id).values_list("tenant_id", flat=True).first()
            )
        if related_tenant_id is None or related_tenant_id != own_tenant_id:
            # Worded exactly like a missing row: another tenant's id must not be confirmable.
            errors[field.name] = f"{related_model._meta.verbose_name.capitalize()} not found."
    return errors
