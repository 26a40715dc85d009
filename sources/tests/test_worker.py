"""A real Celery worker on the real Redis runs ingestion end to end, and a worker killed
(SIGKILL) in the middle of an ingestion leaves a source the reaper brings back to `ready`."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from django.db import connection

from conftest import TenantWorld, build_world
from minirag.celery import app as celery_app
from minirag.vectorstore import close_vector_store, get_vector_store
from sources import lifecycle
from sources.models import Chunk, Source
from sources.services import source_create
from tenants.tenancy import tenant_scope

ROOT = Path(__file__).resolve().parents[2]
BROKER_URL = os.environ.get("MINIRAG_TEST_WORKER_BROKER_URL", "redis://127.0.0.1:6379/13")
WAIT_SECONDS = 120

pytestmark = pytest.mark.django_db(transaction=True)


class Worker:
    """`celery -A minirag worker` in its own process group, on the test database and broker."""

    def __init__(self, qdrant_path: Path, log_path: Path) -> None:
        database = connection.settings_dict
        overrides = {
            "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
            "CELERY_BROKER_URL": BROKER_URL,
            "MINIRAG_TASKS_IN_PROCESS": "false",
            "MINIRAG_TASKS_RUN_INLINE": "false",
            "QDRANT_PATH": str(qdrant_path),
            "MINIRAG_EMBEDDING_BATCH_SIZE": "8",
        }
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "minirag.settings_test",
            "MINIRAG_TEST_ENV_OVERRIDES": json.dumps(overrides),
        }
        self.log = log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "minirag",
                "worker",
                "--pool=solo",
                "--loglevel=INFO",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@pytest.fixture
def worker_env(tmp_path: Path, settings: Any) -> Iterator[Callable[[], Worker]]:
    # One test at a time on this machine owns the broker database (pytest-xdist runs two test
    # files at once; a worker of one would take the other's tasks, and the flush below would drop them).
    with _broker_lock():
        yield from _worker_env(tmp_path, settings)


@contextmanager
def _broker_lock() -> Iterator[None]:
    digest = hashlib.sha256(BROKER_URL.encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"minirag-test-broker-{digest}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _worker_env(tmp_path: Path, settings: Any) -> Iterator[Callable[[], Worker]]:
    redis.Redis.from_url(BROKER_URL).flushdb()  # this database is the worker tests' own queue
    settings.TASKS_IN_PROCESS = False
    previous = celery_app.conf.broker_url
    _use_broker(BROKER_URL)
    workers: list[Worker] = []

    def start() -> Worker:
        workers.append(Worker(tmp_path / "qdrant", tmp_path / "worker.log"))
        return workers[-1]

    yield start
    for worker in workers:
        worker.stop()
    _use_broker(previous)
    if any(worker.process.returncode not in (0, -signal.SIGKILL, -signal.SIGTERM) for worker in workers):
        print((tmp_path / "worker.log").read_text()[-5000:])


def _use_broker(url: str) -> None:
    celery_app.conf.broker_url = url
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def reload(world: TenantWorld, source_id: Any) -> Source:
    with tenant_scope(world.tenant):
        return Source.objects.get(pk=source_id)


def indexed_ids(world: TenantWorld, source_id: Any, qdrant_path: Path, settings: Any) -> set[str]:
    """Open the worker's local Qdrant directory (only once the worker has let go of it)."""
    settings.QDRANT_PATH = str(qdrant_path)
    try:
        return get_vector_store().point_ids("minirag_chunks", tenant_id=world.tenant.pk, source_ids=[source_id])
    finally:
        close_vector_store()


def test_a_real_worker_ingests_end_to_end(worker_env: Callable[[], Worker], tmp_path: Path, settings: Any) -> None:
    alpha = build_world("alpha")
    worker = worker_env()
    source_id = (
        alpha.client("admin")
        .post(
            "/v1/sources",
            {
                "bot_profile_id": str(alpha.bot.pk),
                "name": "Guide",
                "source_type": "text",
                "content": "Our support desk answers within one hour. " * 40,
            },
            format="json",
        )
        .json()["id"]
    )
    response = alpha.client("admin").post(f"/v1/sources/{source_id}/ingest")
    assert response.status_code == 202
    assert reload(alpha, source_id).status == "queued"  # the request returned before the work was done
    wait_until(lambda: reload(alpha, source_id).status in ("ready", "error"), "the worker to ingest")
    source = reload(alpha, source_id)
    assert source.status == "ready", source.error_message
    worker.stop()
    with tenant_scope(alpha.tenant):
        stored = {str(pk) for pk in Chunk.objects.filter(source_id=source_id).values_list("pk", flat=True)}
    assert len(stored) == source.chunk_count > 0
    assert indexed_ids(alpha, source_id, tmp_path / "qdrant", settings) == stored


def test_a_worker_killed_mid_ingestion_leaves_a_recoverable_source(
    worker_env: Callable[[], Worker], tmp_path: Path, settings: Any
) -> None:
    alpha = build_world("alpha")
    paragraphs = [
        f"Paragraph {n} explains rule {n} of the handbook in plain words for every reader." * 5 for n in range(160)
    ]
    with tenant_scope(alpha.tenant):
        source = source_create(
            tenant=alpha.tenant,
            bot_profile=alpha.bot,
            name="Big handbook",
            source_type="text",
            content="\n\n".join(paragraphs),
        )
    first = worker_env()
    assert alpha.client("admin").post(f"/v1/sources/{source.pk}/ingest").status_code == 202
    wait_until(lambda: reload(alpha, source.pk).chunks_done > 0, "the ingestion to be under way")
    first.kill()
    interrupted = reload(alpha, source.pk)
    assert interrupted.status == "processing" and interrupted.chunks_done < interrupted.chunks_total

    # Nothing moves by itself: the run is dead. Once its heartbeat is stale the reaper requeues it.
    settings.INGEST_STALE_AFTER_SECONDS = 1
    time.sleep(1.5)
    with tenant_scope(alpha.tenant):
        assert lifecycle.reap_stuck_sources() == 1
    assert reload(alpha, source.pk).status == "queued"
    second = worker_env()
    wait_until(lambda: reload(alpha, source.pk).status in ("ready", "error"), "the requeued ingestion")
    recovered = reload(alpha, source.pk)
    assert recovered.status == "ready", recovered.error_message
    second.stop()
    with tenant_scope(alpha.tenant):
        stored = {str(pk) for pk in Chunk.objects.filter(source=source).values_list("pk", flat=True)}
    assert len(stored) == recovered.chunk_count
    assert indexed_ids(alpha, source.pk, tmp_path / "qdrant", settings) == stored  # no duplicates, nothing missing
