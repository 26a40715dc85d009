"""Celery tasks of the sources app. Thin: each calls sources/lifecycle.py."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from sources import lifecycle
from tenants.models import Tenant
from tenants.task_base import TenantTask


@shared_task(base=TenantTask, name="sources.ingest_source", acks_late=True, ignore_result=True)
def ingest_source(*, tenant_id: str, source_id: str, attempt: int = 1) -> dict[str, Any]:
    """Ingest one source (retries are re-sent by the run itself, with backoff)."""
    outcome = lifecycle.run_ingestion(tenant=Tenant.objects.get(pk=tenant_id), source_id=source_id, attempt=attempt)
    return {"status": outcome.status, "detail": outcome.detail}


@shared_task(name="sources.reap_stuck_sources", ignore_result=True)
def reap_stuck_sources() -> int:
    return lifecycle.reap_stuck_sources()


@shared_task(name="sources.refresh_due_sources", ignore_result=True)
def refresh_due_sources() -> int:
    return lifecycle.refresh_due_sources()
