"""The embedded mode's stand-in for Celery beat: a daemon thread in the server process that runs
the periodic tasks of CELERY_BEAT_SCHEDULE (scheduled refreshes, the reaper) at their intervals.
Production runs `celery beat` instead."""

from __future__ import annotations

import logging
import threading
import time

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


def _loop() -> None:
    from celery import current_app

    schedule = {name: float(entry["schedule"]) for name, entry in settings.CELERY_BEAT_SCHEDULE.items()}
    tasks = {name: entry["task"] for name, entry in settings.CELERY_BEAT_SCHEDULE.items()}
    next_run = dict.fromkeys(schedule, time.monotonic() + TICK_SECONDS)
    while True:
        time.sleep(TICK_SECONDS)
        now = time.monotonic()
        for name, due in next_run.items():
            if now < due:
                continue
            next_run[name] = now + schedule[name]
            try:
                current_app.tasks[tasks[name]]()
            except Exception:
                logger.exception("Periodic task %s failed.", name)
            finally:
                connections.close_all()
