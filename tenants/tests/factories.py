"""Factories for tenants, users and tokens. Tenant-owned rows are saved inside their tenant's
scope, exactly as the application does."""

from __future__ import annotations

from typing import Any

import factory
from factory.django import DjangoModelFactory

from tenants.models import ApiToken, Role, Tenant, User
from tenants.services import api_token_create
from tenants.tenancy import tenant_scope

DEFAULT_PASSWORD = "correct-horse-battery"


class TenantFactory(DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Tenant {n}")
    slug = factory.Sequence(lambda n: f"tenant-{n}")


class TenantOwnedFactory(DjangoModelFactory):
    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class: type, *args: Any, **kwargs: Any) -> Any:
        with tenant_scope(kwargs["tenant"]):
            return super()._create(model_class, *args, **kwargs)


class UserFactory(TenantOwnedFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    tenant = factory.SubFactory(TenantFactory)
    email = factory.Sequence(lambda n: f"user{n}@example.com")
    display_name = factory.Faker("name")
    role = Role.MEMBER

    @classmethod
    def _create(cls, model_class: type, *args: Any, password: str = DEFAULT_PASSWORD, **kwargs: Any) -> User:
        with tenant_scope(kwargs["tenant"]):
            user = model_class(*args, **kwargs)
            user.set_password(password)
            user.save()
            return user


def make_token(user: User, **kwargs: Any) -> tuple[ApiToken, str]:
    """An API token created through the service, as the API would. Returns (row, raw token)."""
    assert user.tenant is not None
    with tenant_scope(user.tenant):
        return api_token_create(tenant=user.tenant, user=user, name=kwargs.pop("name", "test token"), **kwargs)
