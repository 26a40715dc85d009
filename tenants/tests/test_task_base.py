"""TenantTask: a Celery task runs inside its tenant's scope and leaves nothing behind."""

from __future__ import annotations

import uuid

import pytest

from bots.models import BotProfile
from conftest import TenantWorld
from minirag.celery import app
from tenants.task_base import TenantTask
from tenants.tenancy import current_scope


@app.task(base=TenantTask, name="tests.count_visible_bots")
def count_visible_bots(*, tenant_id: str) -> list[str]:
    return [str(pk) for pk in BotProfile.objects.values_list("pk", flat=True)]


@app.task(base=TenantTask, name="tests.fail_inside_scope")
def fail_inside_scope(*, tenant_id: str) -> None:
    raise RuntimeError("task failed")


pytestmark = pytest.mark.django_db


def test_a_task_sees_only_its_tenant(alpha: TenantWorld, beta: TenantWorld) -> None:
    assert count_visible_bots.apply(kwargs={"tenant_id": str(alpha.tenant.pk)}).get() == [str(alpha.bot.pk)]
    assert count_visible_bots.apply(kwargs={"tenant_id": str(beta.tenant.pk)}).get() == [str(beta.bot.pk)]
    assert not current_scope().is_set


def test_the_scope_is_left_even_when_the_task_fails(alpha: TenantWorld) -> None:
    result = fail_inside_scope.apply(kwargs={"tenant_id": str(alpha.tenant.pk)})
    assert result.failed()
    assert isinstance(result.result, RuntimeError)
    assert not current_scope().is_set


def test_a_task_without_tenant_id_refuses_to_run(alpha: TenantWorld) -> None:
    result = count_visible_bots.apply(kwargs={})
    assert result.failed()
    assert "tenant_id" in str(result.result)


def test_a_task_for_a_missing_or_disabled_tenant_is_skipped(alpha: TenantWorld) -> None:
    assert count_visible_bots.apply(kwargs={"tenant_id": str(uuid.uuid4())}).get() is None
    alpha.tenant.is_active = False
    alpha.tenant.save()
    assert count_visible_bots.apply(kwargs={"tenant_id": str(alpha.tenant.pk)}).get() is None
