"""Celery tasks of the webhooks app. Thin: each calls webhooks/delivery.py."""

from __future__ import annotations

from celery import shared_task

from tenants.task_base import TenantTask
from webhooks import delivery


@shared_task(base=TenantTask, name="webhooks.deliver", acks_late=True, ignore_result=True)
def deliver_webhook(*, tenant_id: str, delivery_id: str) -> str:
    """One attempt of one delivery, if it is due (duplicates of this message do nothing)."""
    result = delivery.attempt_delivery(delivery_id=delivery_id)
    if result is None:
        return "nothing to do"
    return "delivered" if result.succeeded else f"failed: {result.error}"


@shared_task(name="webhooks.send_due_deliveries", ignore_result=True)
def send_due_deliveries() -> int:
    """Periodic (every 10 s): queue the retries that are due and attempts whose message was lost."""
    return delivery.send_due_deliveries()
