"""The contract of the tenancy core: scoped managers fail closed, scopes nest and restore, writes
are guarded, cross-tenant references are refused before they are created."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Count
from django.test.utils import isolate_apps

from bots.models import BotProfile
from bots.tests.factories import BotProfileFactory
from conftest import TenantWorld
from tenants.checks import check_tenant_owned_models_are_scoped, unscoped_tenant_models
from tenants.models import ApiToken, User
from tenants.tenancy import (
    TenantOwnedModel,
    TenantScopeError,
    _tenant_filtered_query,
    current_scope,
    current_tenant_id,
    tenant_scope,
    tenant_scope_disabled,
)

pytestmark = pytest.mark.django_db


# --- Unscoped execution raises, whatever the path to the database ----------------------------

UNSCOPED_OPERATIONS = {
    "iterate": lambda: list(BotProfile.objects.all()),
    "len": lambda: len(BotProfile.objects.all()),
    "bool": lambda: bool(BotProfile.objects.all()),
    "index": lambda: BotProfile.objects.order_by("name")[0],
    "count": lambda: BotProfile.objects.count(),
    "exists": lambda: BotProfile.objects.exists(),
    "get": lambda: BotProfile.objects.get(name="alpha bot"),
    "first": lambda: BotProfile.objects.first(),
    "last": lambda: BotProfile.objects.last(),
    "values_list": lambda: list(BotProfile.objects.values_list("name", flat=True)),
    "iterator": lambda: list(BotProfile.objects.iterator()),
    "in_bulk": lambda: BotProfile.objects.in_bulk(),
    "aggregate": lambda: BotProfile.objects.aggregate(n=Count("id")),
    "update": lambda: BotProfile.objects.update(name="pwned"),
    "delete": lambda: BotProfile.objects.all().delete(),
    "get_or_create": lambda: BotProfile.objects.get_or_create(name="x"),
    "create": lambda: BotProfile.objects.create(name="x"),
    "explain": lambda: BotProfile.objects.all().explain(),
    "subquery": lambda: list(ApiToken.all_tenants.filter(bot_profile__in=BotProfile.objects.all())),
    "related_manager": lambda: list(User(pk=uuid.uuid4()).api_tokens.all()),
    "user_manager": lambda: User.objects.count(),
}


@pytest.mark.parametrize("operation", sorted(UNSCOPED_OPERATIONS))
def test_executing_a_query_outside_any_scope_raises(alpha: TenantWorld, operation: str) -> None:
    with pytest.raises(TenantScopeError):
        UNSCOPED_OPERATIONS[operation]()
    with tenant_scope(alpha.tenant):
        assert BotProfile.objects.get(pk=alpha.bot.pk).name == "alpha bot"  # nothing was changed


def test_async_iteration_outside_a_scope_raises(alpha: TenantWorld) -> None:
    async def collect() -> list[Any]:
        return [bot async for bot in BotProfile.objects.all()]

    async def collect_iterator() -> list[Any]:
        return [bot async for bot in BotProfile.objects.aiterator()]

    with pytest.raises(TenantScopeError):
        asyncio.run(collect())
    with pytest.raises(TenantScopeError):
        asyncio.run(collect_iterator())


def test_building_a_queryset_outside_a_scope_is_legal_and_it_runs_in_the_scope_of_execution(
    alpha: TenantWorld, beta: TenantWorld
) -> None:
    lazy = BotProfile.objects.order_by("name")  # e.g. a class attribute built at import time
    with tenant_scope(alpha.tenant):
        assert [bot.pk for bot in lazy.all()] == [alpha.bot.pk]
    with tenant_scope(beta.tenant):
        assert [bot.pk for bot in lazy.all()] == [beta.bot.pk]
        assert lazy.count() == 1


def test_a_scope_sees_only_its_tenant_and_disabled_sees_all(alpha: TenantWorld, beta: TenantWorld) -> None:
    with tenant_scope(alpha.tenant):
        assert set(BotProfile.objects.values_list("pk", flat=True)) == {alpha.bot.pk}
        assert not BotProfile.objects.filter(pk=beta.bot.pk).exists()
        assert BotProfile.objects.filter(pk=beta.bot.pk).update(name="pwned") == 0
        assert BotProfile.objects.filter(pk=beta.bot.pk).delete()[0] == 0
        assert User.objects.count() == 3
    with tenant_scope_disabled("test: looking across tenants"):
        assert set(BotProfile.objects.values_list("pk", flat=True)) == {alpha.bot.pk, beta.bot.pk}
    with tenant_scope(beta.tenant):
        assert BotProfile.objects.get(pk=beta.bot.pk).name == "beta bot"


def test_the_scoped_filter_built_once_per_tenant_is_never_changed_by_what_is_built_on_it(
    alpha: TenantWorld, beta: TenantWorld
) -> None:
    # The manager starts every queryset from a cached copy of the tenant filter (tenancy.py,
    # _tenant_filtered_query): alternating tenants, narrowing and excluding must not leak into it.
    queries: list[str] = []
    for _ in range(2):
        with tenant_scope(alpha.tenant):
            assert not BotProfile.objects.filter(pk=beta.bot.pk).exists()
            assert not BotProfile.objects.exclude(pk=alpha.bot.pk).exists()
            assert list(BotProfile.objects.values_list("pk", flat=True)) == [alpha.bot.pk]
            assert set(alpha.owner.api_tokens.values_list("tenant_id", flat=True)) == {alpha.tenant.pk}
            queries.append(str(BotProfile.objects.all().query).replace("-", ""))
        with tenant_scope(beta.tenant):
            assert list(BotProfile.objects.values_list("pk", flat=True)) == [beta.bot.pk]
            assert list(BotProfile.objects.filter(name="alpha bot")) == []
            assert alpha.tenant.pk.hex not in str(BotProfile.objects.all().query).replace("-", "")
    assert queries[0] == queries[1] and alpha.tenant.pk.hex in queries[0] and beta.tenant.pk.hex not in queries[0]
    # Every queryset gets its own copy: the cached filter still holds its one condition.
    cached = _tenant_filtered_query(BotProfile, alpha.tenant.pk)
    with tenant_scope(alpha.tenant):
        assert BotProfile.objects.all().query is not cached
    assert len(cached.where.children) == 1


def test_scopes_nest_and_restore_even_on_errors(alpha: TenantWorld, beta: TenantWorld) -> None:
    assert not current_scope().is_set
    with tenant_scope(alpha.tenant):
        assert current_tenant_id() == alpha.tenant.pk
        with tenant_scope(beta.tenant):
            assert current_tenant_id() == beta.tenant.pk
            with tenant_scope_disabled("test"):
                assert current_scope().is_disabled
                with pytest.raises(TenantScopeError):
                    current_tenant_id()
            assert current_tenant_id() == beta.tenant.pk
        assert current_tenant_id() == alpha.tenant.pk
        with pytest.raises(RuntimeError), tenant_scope(beta.tenant):
            raise RuntimeError("boom")
        assert current_tenant_id() == alpha.tenant.pk
    assert not current_scope().is_set


def test_a_disabled_scope_needs_a_reason() -> None:
    with pytest.raises(ValueError), tenant_scope_disabled("  "):
        pass


def test_scopes_do_not_leak_into_new_threads_or_other_tasks(alpha: TenantWorld) -> None:
    seen: dict[str, Any] = {}

    def in_thread() -> None:
        seen["thread"] = current_scope().is_set

    async def other_task() -> bool:
        return current_scope().is_set

    async def main() -> tuple[bool, bool]:
        with tenant_scope(alpha.tenant):
            inside = asyncio.create_task(other_task())  # copies the context: inherits the scope
            inherited = await inside
        after = await asyncio.create_task(other_task())
        return inherited, after

    with tenant_scope(alpha.tenant):
        thread = threading.Thread(target=in_thread)
        thread.start()
        thread.join()
    assert seen["thread"] is False
    assert asyncio.run(main()) == (True, False)


# --- Writes -----------------------------------------------------------------------------------


def test_save_fills_the_tenant_from_the_scope(alpha: TenantWorld) -> None:
    with tenant_scope(alpha.tenant):
        bot = BotProfile(name="filled")
        bot.save()
    assert bot.tenant_id == alpha.tenant.pk


def test_save_refuses_another_tenants_row_and_unscoped_writes(alpha: TenantWorld, beta: TenantWorld) -> None:
    with tenant_scope(alpha.tenant), pytest.raises(TenantScopeError):
        BotProfile(tenant=beta.tenant, name="smuggled").save()
    with pytest.raises(TenantScopeError):
        BotProfile(tenant=alpha.tenant, name="nowhere").save()
    with tenant_scope(alpha.tenant), pytest.raises(TenantScopeError):
        beta.bot.delete()
    with tenant_scope_disabled("test: operator write"):
        with pytest.raises(TenantScopeError):
            BotProfile(name="whose?").save()  # no tenant given and none to infer
        BotProfile(tenant=beta.tenant, name="explicit").save()
    with tenant_scope_disabled("test"):
        assert not BotProfile.objects.filter(name__in=["smuggled", "nowhere", "whose?"]).exists()


def test_bulk_create_fills_and_guards_tenants(alpha: TenantWorld, beta: TenantWorld) -> None:
    with tenant_scope(alpha.tenant):
        created = BotProfile.objects.bulk_create([BotProfile(name="b1"), BotProfile(name="b2")])
        assert {bot.tenant_id for bot in created} == {alpha.tenant.pk}
        with pytest.raises(TenantScopeError):
            BotProfile.objects.bulk_create([BotProfile(name="b3", tenant=beta.tenant)])


def test_clean_rejects_a_foreign_key_to_another_tenants_row(alpha: TenantWorld, beta: TenantWorld) -> None:
    with tenant_scope(alpha.tenant):
        token = ApiToken(user=alpha.owner, name="t", token_prefix="p", token_hash="h" * 64, bot_profile_id=beta.bot.pk)
        with pytest.raises(ValidationError) as excinfo:
            token.full_clean()
    assert excinfo.value.message_dict == {"bot_profile": ["Bot profile not found."]}

    with tenant_scope(alpha.tenant):
        cross_user = ApiToken(user=beta.owner, name="t", token_prefix="p", token_hash="i" * 64)
        with pytest.raises(ValidationError) as excinfo:
            cross_user.full_clean()
    assert "user" in excinfo.value.message_dict


def test_clean_accepts_same_tenant_references(alpha: TenantWorld) -> None:
    with tenant_scope(alpha.tenant):
        token = ApiToken(user=alpha.owner, name="t", token_prefix="p", token_hash="j" * 64, bot_profile=alpha.bot)
        token.full_clean()


# --- The system check -------------------------------------------------------------------------


def test_project_models_pass_the_scoped_manager_check() -> None:
    assert check_tenant_owned_models_are_scoped() == []


@isolate_apps("tenants")
def test_a_tenant_model_without_the_scoped_manager_fails_the_check() -> None:
    class Leaky(models.Model):
        tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE)

        class Meta:
            app_label = "tenants"

    class ScopedButOverridden(TenantOwnedModel):
        objects = models.Manager()  # replaces the scoped default manager

        class Meta:
            app_label = "tenants"

    class Fine(TenantOwnedModel):
        class Meta:
            app_label = "tenants"

    errors = unscoped_tenant_models([Leaky, ScopedButOverridden, Fine])
    assert [(error.id, error.obj) for error in errors] == [
        ("tenants.E001", Leaky),
        ("tenants.E001", ScopedButOverridden),
    ]


def test_factories_and_fixtures_use_the_scope_like_the_application(alpha: TenantWorld) -> None:
    bot = BotProfileFactory(tenant=alpha.tenant)
    with tenant_scope(alpha.tenant):
        assert BotProfile.objects.filter(pk=bot.pk).exists()
