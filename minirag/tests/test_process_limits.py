"""The web process raises its soft limit on open files to the hard limit (one socket per open
stream: 1,024 would refuse the thousandth stream), and takes what it loaded at start-up out of the
garbage collector's way; minirag/process_limits.py."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys

import pytest

from minirag.process_limits import COLLECTOR_THRESHOLDS, raise_open_files_limit
from minirag.tests.benches import ROOT


@pytest.fixture
def restored_limit() -> object:
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    yield before
    resource.setrlimit(resource.RLIMIT_NOFILE, before)


def test_a_low_soft_limit_is_raised_to_the_hard_limit(restored_limit: tuple[int, int]) -> None:
    _soft, hard = restored_limit
    if hard == resource.RLIM_INFINITY or hard <= 256:
        pytest.skip(f"needs a finite hard limit above 256 (here {hard})")
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    assert raise_open_files_limit() == (hard, hard)
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)


def test_a_soft_limit_already_at_the_hard_limit_is_left_alone(restored_limit: tuple[int, int]) -> None:
    _soft, hard = restored_limit
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    assert raise_open_files_limit() == (hard, hard)


def _last_line_of(program: str) -> str:
    """What `program` printed last, run in a process of its own with the test settings: the open
    files limit and the collector's state are the process's."""
    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "minirag.settings_test"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[-1]


def test_the_asgi_entry_point_raises_it() -> None:
    """Started with a soft limit of 256, the process has the hard limit once `minirag.asgi` is loaded."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY or hard <= 256:
        pytest.skip(f"needs a finite hard limit above 256 (here {hard})")
    program = (
        "import resource\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))\n"
        "import minirag.asgi\n"
        "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n"
    )
    assert int(_last_line_of(program)) == hard


def test_the_asgi_entry_point_takes_its_start_up_out_of_the_collectors_way() -> None:
    """Once `minirag.asgi` is loaded, what it loaded is frozen (a full collection no longer walks it)
    and young collections run at the server's thresholds."""
    program = (
        "import gc, json\n"
        "import minirag.asgi\n"
        "print(json.dumps([gc.get_freeze_count(), len(gc.get_objects()), gc.get_threshold()]))\n"
    )
    frozen, still_walked, thresholds = json.loads(_last_line_of(program))
    assert frozen > 50_000  # Django, DRF and the app alone are a few hundred thousand objects
    assert still_walked < frozen / 10
    assert tuple(thresholds) == COLLECTOR_THRESHOLDS


def test_tuning_freezes_what_exists_and_sets_the_thresholds() -> None:
    program = (
        "import gc, json\n"
        "from minirag.process_limits import tune_garbage_collector\n"
        "kept = [[index] for index in range(10_000)]\n"
        "tune_garbage_collector()\n"
        "print(json.dumps([gc.get_freeze_count(), gc.get_threshold()]))\n"
    )
    frozen, thresholds = json.loads(_last_line_of(program))
    assert frozen >= 10_000 and tuple(thresholds) == COLLECTOR_THRESHOLDS


def test_a_celery_worker_tunes_it_before_starting_its_pool() -> None:
    program = (
        "import gc, json\n"
        "from celery.signals import worker_init\n"
        "from minirag.celery import app\n"
        "worker_init.send(sender=None)\n"
        "print(json.dumps([gc.get_freeze_count(), gc.get_threshold()]))\n"
    )
    frozen, thresholds = json.loads(_last_line_of(program))
    assert frozen > 10_000 and tuple(thresholds) == COLLECTOR_THRESHOLDS
