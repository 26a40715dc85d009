"""Handing work to the background: Celery workers in production, threads in the embedded mode.

Callers never talk to Celery directly: `dispatch()` sends now and raises `QueueUnavailableError`
when the broker is down (so an API call can answer 503 and put things back); `enqueue_on_commit()`
sends once the surrounding transaction commits. In the embedded mode (no broker) the same task
objects run on a small thread pool in this process, with the same tenant scope handling.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from celery import Task
from django.conf import settings
from django.db import close_old_connections, connections, transaction
from kombu.exceptions import OperationalError as BrokerOperationalError

logger = logging.getLogger(__name__)

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


class QueueUnavailableError(Exception):
    """The task broker could not be reached."""


def dispatch(task: Task, *, countdown: float | None = None, **kwargs: Any) -> None:
    """Send `task(**kwargs)` to the background now (after `countdown` seconds, if given)."""
    if settings.TASKS_IN_PROCESS:
        _run_in_process_later(task, kwargs, countdown)
        return
    try:
        with task.app.producer_or_acquire() as producer:
            # One connection attempt, not kombu's default of retrying for broker_connection_timeout
            # (about 6 s): during a broker outage every API call that queues work, and every chat
            # turn that hands over a webhook delivery, would otherwise wait that long first.
            producer.connection.ensure_connection(max_retries=0)
            task.apply_async(kwargs=kwargs, countdown=countdown, retry=False, producer=producer)
    except BrokerOperationalError as exc:
        raise QueueUnavailableError(f"The task queue is unavailable: {exc}") from exc


def enqueue_on_commit(task: Task, *, countdown: float | None = None, **kwargs: Any) -> None:
    """Send `task(**kwargs)` once the current transaction commits (at once outside one). A broker
    outage here is logged, not raised: the work is recorded in the database, and the ingestion
    reaper or the webhook sweeper sends what never reached a worker."""

    def send() -> None:
        try:
            dispatch(task, countdown=countdown, **kwargs)
        except QueueUnavailableError:
            # What the message would have started is recorded in the database; a periodic job
            # (the ingestion reaper, the webhook sweeper) finds it and sends it again.
            logger.exception("Could not enqueue %s %s; a periodic job will send it again.", task.name, kwargs)

    transaction.on_commit(send)


# --- Embedded mode ------------------------------------------------------------------------------


def _get_executor() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=max(1, settings.IN_PROCESS_WORKERS), thread_name_prefix="minirag-task"
            )
        return _executor


def _run_in_process_later(task: Task, kwargs: dict[str, Any], countdown: float | None) -> None:
    if settings.TASKS_RUN_INLINE:
        _run_in_process(task, kwargs)  # tests: deterministic, in the calling thread; countdown ignored
        return
    if countdown:
        timer = threading.Timer(countdown, lambda: _get_executor().submit(_run_in_process, task, kwargs))
        timer.daemon = True
        timer.start()
    else:
        _get_executor().submit(_run_in_process, task, kwargs)


def _run_in_process(task: Task, kwargs: dict[str, Any]) -> None:
    """Run the task body like a worker would: through `Task.__call__` (so TenantTask enters the
    tenant scope), with fresh database connections, never letting an exception escape."""
    inline = settings.TASKS_RUN_INLINE
    if not inline:
        close_old_connections()
    try:
        task(**kwargs)
    except Exception:
        logger.exception("Background task %s failed.", task.name)
    finally:
        if not inline:
            connections.close_all()
