"""`TenantTask`: the Celery base class for every task that acts for one tenant.

Tasks receive `tenant_id` as a keyword argument (never a model instance: arguments are JSON) and
run inside that tenant's scope, which is always left when the task ends, so nothing leaks into the
next task the worker runs.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task

from minirag.lookups import parse_uuid
from tenants.models import Tenant
from tenants.tenancy import tenant_scope

logger = logging.getLogger(__name__)


class TenantTask(Task):
    abstract = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        tenant_id = parse_uuid(kwargs.get("tenant_id"))
        if tenant_id is None:
            raise TypeError(f"Task {self.name} must be called with tenant_id=<uuid> as a keyword argument.")
        tenant = Tenant.objects.filter(pk=tenant_id).first()
        if tenant is None or not tenant.is_active:
            logger.warning("Task %s skipped: tenant %s is missing or disabled.", self.name, tenant_id)
            return None
        with tenant_scope(tenant):
            return super().__call__(*args, **kwargs)
