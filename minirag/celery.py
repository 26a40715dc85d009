"""The Celery application. Workers: `celery -A minirag worker`; scheduler: `celery -A minirag beat`."""

import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "minirag.settings")

app = Celery("minirag")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _tune_garbage_collector(**kwargs: object) -> None:
    """Before the pool starts (prefork children inherit it): minirag/process_limits.py."""
    from minirag.process_limits import tune_garbage_collector

    tune_garbage_collector()
