"""The Celery application. Workers: `celery -A minirag worker`; scheduler: `celery -A minirag beat`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "minirag.settings")

app = Celery("minirag")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
