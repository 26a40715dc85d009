"""The embedded mode's stand-in for Celery beat: a daemon thread in the server process that runs
the periodic tasks of CELERY_BEAT_SCHEDULE (scheduled refreshes, the reaper) at their intervals.
Production runs `celery beat` instead."""

from __future__ import annotations

import logging
import threading
import time

from celery import Task
from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)

_started = False
_lock = threading.Lock()
TICK_SECONDS = 5.0


def start_in_process_scheduler() -> bool:
    """Start the scheduler thread once per process, if this process runs tasks in-process."""
    global _started
    if not (settings.TASKS_IN_PROCESS and settings.IN_PROCESS_SCHEDULER):
        return False
    with _lock:
        if _started:
            return False
        _started = True
    threading.Thread(target=_loop, name="minirag-scheduler", daemon=True).start()
    return True


def periodic_tasks() -> dict[str, tuple[Task, float]]:
    """CELERY_BEAT_SCHEDULE as (task, interval in seconds) by entry name. The tasks modules are
    imported first, as a worker does when it starts: a web process has not imported them."""
    from minirag.celery import app

    app.loader.import_default_modules()
    return {
        name: (app.tasks[entry["task"]], float(entry["schedule"]))
        for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
    }


def _loop() -> None:
    schedule = periodic_tasks()
    next_run = dict.fromkeys(schedule, time.monotonic() + TICK_SECONDS)
    while True:
        time.sleep(TICK_SECONDS)
        now = time.monotonic()
        for name, due in next_run.items():
            if now < due:
                continue
            task, interval = schedule[name]
            next_run[name] = now + interval
            try:
                task()
            except Exception:
                logger.exception("Periodic task %s failed.", name)
            finally:
                connections.close_all()
