"""The embedded mode's scheduler finds every periodic task in a fresh process (a web server
process imports no tasks module by itself)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, django
django.setup()
from minirag.scheduler import periodic_tasks
print(json.dumps({name: [task.name, interval] for name, (task, interval) in periodic_tasks().items()}))
"""


def test_every_periodic_task_resolves_in_a_fresh_process() -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "minirag.settings_test"}
    run = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    expected = {
        name: [entry["task"], float(entry["schedule"])] for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
    }
    assert found == expected
    assert "send-due-webhook-deliveries" in found
