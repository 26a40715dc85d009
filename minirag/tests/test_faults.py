"""Faults: a backing service fails, the product keeps what it was given, and recovers by itself.

Each test breaks a real service and checks concrete outcomes — status codes, stored rows, queue
contents, vector counts — before, during and after the fault:

* Redis: a `redis-server` of the test's own (never the machine's shared one) is killed and
  restarted under the API and under a real Celery worker.
* Qdrant: no Qdrant server can run here, so "down" is the real client pointed at an address where
  nothing listens (the exceptions are exactly those of a server outage), and "up" is local mode.
* PostgreSQL: the shared server cannot be restarted, so the app's connections are terminated and
  the test database refuses connections for a while (what a restart looks like to the app).
* A Celery worker's pool process is SIGKILLed mid-ingestion (what the OOM killer does).
* Model providers fail or stall (LiteLLM's mock machinery and a custom provider).
* A webhook receiver whose process is down (nothing listening) comes back.

Recovery times are printed as `[fault timing]` lines (run with -s); docs/security.md quotes them.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import litellm
import psycopg
import psycopg.sql
import pytest
import redis
import uvicorn
from asgiref.sync import async_to_sync
from django.db import connection
from django.utils import timezone
from litellm.llms.custom_llm import CustomLLM
from litellm.utils import custom_llm_setup

from chat.models import Message, UsageEvent
from chat.tests.conftest import ModelSpy, use_model
from chat.tests.conftest import model_spy as model_spy  # the fixture, for the model fault tests
from chat.tests.test_streaming import parse_stream, stream_turn
from conftest import TenantWorld, api_client, build_world
from minirag import rate_limits
from minirag.celery import app as celery_app
from minirag.error_handlers import DATABASE_UNAVAILABLE
from minirag.vectorstore import close_vector_store, get_vector_store
from sources import lifecycle
from sources.models import Chunk, Source
from sources.services import source_create
from sources.tasks import ingest_source
from tenants.tenancy import tenant_scope
from webhooks.delivery import send_due_deliveries
from webhooks.models import DeliveryState, WebhookDelivery
from webhooks.tests.conftest import Received, assert_authentic, deliveries, fast_forward, register
from webhooks.tests.conftest import reload as reload_row

ROOT = Path(__file__).resolve().parents[2]
QUESTION = "How many working days do refunds at alpha take?"  # answered from build_world's text source
WAIT_SECONDS = 60


def timing(name: str, seconds: float) -> None:
    print(f"\n[fault timing] {name}: {seconds:.2f} s")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = WAIT_SECONDS) -> float:
    """Poll until `predicate()`; returns the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def reload(world: TenantWorld, source_id: Any) -> Source:
    with tenant_scope(world.tenant):
        return Source.objects.get(pk=source_id)


def text_source(world: TenantWorld, name: str, content: str) -> Source:
    with tenant_scope(world.tenant):
        return source_create(tenant=world.tenant, bot_profile=world.bot, name=name, source_type="text", content=content)


def read_events(response: Any) -> list[tuple[str, dict[str, Any]]]:
    """A streamed answer's events, read to the end as an ASGI server would."""

    async def read() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])

    return parse_stream(async_to_sync(read)())


def chat_body(world: TenantWorld, message: str = QUESTION, **extra: Any) -> dict[str, Any]:
    return {"bot_profile_id": str(world.bot.pk), "message": message, **extra}


# --- A Redis server and a Celery worker of the test's own --------------------------------------


class RedisServer:
    """`redis-server` on a free port, persisted like the Compose stack's (append-only file), but
    fsynced on every write so that a SIGKILL loses nothing the test relies on."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""),
                *("--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.directory), "--logfile", ""),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, "redis-server to start", timeout=10)

    def _answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.exceptions.ConnectionError:
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def queued(self, queue: str = "celery") -> int:
        return int(self.client().llen(queue))


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.kill()


def use_broker(url: str) -> None:
    """Point the Celery app at `url`: its connection and producer pools are built lazily from it."""
    celery_app.conf.broker_url = url
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def route_to(settings: Any) -> Iterator[Callable[[RedisServer], None]]:
    """`route_to(server)`: from now on the queue, the cache and the rate limits use `server`."""
    previous = celery_app.conf.broker_url

    def route(server: RedisServer) -> None:
        settings.TASKS_IN_PROCESS = False
        settings.REDIS_URL = settings.CELERY_BROKER_URL = server.url
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": server.url,
                "KEY_PREFIX": "minirag-faults",
            }
        }
        use_broker(server.url)

    yield route
    use_broker(previous)


class Worker:
    """`celery -A minirag worker` in its own process group, on the test database, `broker` and a
    local-mode Qdrant directory (in-memory Qdrant cannot be shared between processes)."""

    def __init__(self, broker: str, qdrant_path: Path, log_path: Path, *, pool: str = "solo") -> None:
        database = connection.settings_dict
        overrides = {
            "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
            "REDIS_URL": broker,
            "CELERY_BROKER_URL": broker,
            "MINIRAG_TASKS_IN_PROCESS": "false",
            "MINIRAG_TASKS_RUN_INLINE": "false",
            "QDRANT_PATH": str(qdrant_path),
            "MINIRAG_EMBEDDING_BATCH_SIZE": "8",
            "MINIRAG_LOG_LEVEL": "INFO",
        }
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "minirag.settings_test",
            "MINIRAG_TEST_ENV_OVERRIDES": json.dumps(overrides),
        }
        self.log_path = log_path
        self.log = log_path.open("ab")
        command = [sys.executable, "-m", "celery", "-A", "minirag", "worker", f"--pool={pool}", "--loglevel=INFO"]
        if pool == "prefork":
            command.append("--concurrency=1")
        self.process = subprocess.Popen(
            [*command, "--without-heartbeat", "--without-gossip", "--without-mingle"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def pool_processes(self) -> list[int]:
        """The pids of the prefork pool's child processes."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        self.log.close()


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


def indexed_point_count(world: TenantWorld, source_id: Any, qdrant_path: Path, settings: Any) -> tuple[int, set[str]]:
    """(points of the source, their ids) in a worker's local Qdrant directory, opened once the
    worker has let go of it."""
    settings.QDRANT_PATH = str(qdrant_path)
    try:
        store = get_vector_store()
        count = store.count("minirag_chunks", tenant_id=world.tenant.pk, source_ids=[source_id])
        ids = store.point_ids("minirag_chunks", tenant_id=world.tenant.pk, source_ids=[source_id])
        return count, ids
    finally:
        close_vector_store()


def stored_chunk_ids(world: TenantWorld, source_id: Any) -> set[str]:
    with tenant_scope(world.tenant):
        return {str(pk) for pk in Chunk.objects.filter(source_id=source_id).values_list("pk", flat=True)}


# --- 1. Redis down ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_redis_down_the_ingest_trigger_answers_503_loses_nothing_and_queued_work_resumes(
    own_redis: RedisServer, route_to: Callable[[RedisServer], None], workers: list[Worker], tmp_path: Path
) -> None:
    alpha = build_world("alpha")
    route_to(own_redis)
    admin = alpha.client("admin")
    accepted = text_source(alpha, "Accepted", "Parcels are shipped from Leeds within two working days.")
    refused = text_source(alpha, "Refused", "The help desk answers calls from eight to six.")
    with tenant_scope(alpha.tenant):  # it failed before: its status and message must survive a refused trigger
        Source.objects.filter(pk=refused.pk).update(status="error", error_message="example.com answered 404.")
    before = reload(alpha, refused.pk)

    # Accepted while Redis is up: 202, and the message is in the broker, waiting for a worker.
    assert admin.post(f"/v1/sources/{accepted.pk}/ingest").status_code == 202
    assert own_redis.queued() == 1 and reload(alpha, accepted.pk).status == "queued"

    own_redis.kill()
    started = time.monotonic()
    response = admin.post(f"/v1/sources/{refused.pk}/ingest")
    answered_in = time.monotonic() - started
    assert response.status_code == 503
    assert response.json() == {"detail": "The task queue is unavailable; nothing was queued. Try again shortly."}
    assert answered_in < 1.0, f"the 503 took {answered_in:.2f} s"  # one connection attempt, no retry loop
    fields = ("status", "error_message", "queued_at", "ingest_attempt", "updated_at")
    after = reload(alpha, refused.pk)
    assert [getattr(after, f) for f in fields] == [getattr(before, f) for f in fields]  # nothing half-queued
    assert reload(alpha, accepted.pk).status == "queued"
    assert admin.get(f"/v1/sources/{refused.pk}").json()["status"] == "error"
    timing("ingest trigger answers 503 with Redis down", answered_in)

    # Redis comes back (same data directory): the accepted message survived; the API reconnects
    # by itself, and the refused source can be triggered again.
    own_redis.start()
    assert own_redis.queued() == 1
    started = time.monotonic()
    assert admin.post(f"/v1/sources/{refused.pk}/ingest").status_code == 202
    timing("first ingest trigger after Redis returns", time.monotonic() - started)
    assert own_redis.queued() == 2

    workers.append(Worker(own_redis.url, tmp_path / "qdrant", tmp_path / "worker.log"))
    done = wait_until(
        lambda: {reload(alpha, s.pk).status for s in (accepted, refused)} == {"ready"}, "the worker to ingest both"
    )
    timing("worker start to both sources ready", done)
    for source in (accepted, refused):
        assert reload(alpha, source.pk).chunk_count == 1 == len(stored_chunk_ids(alpha, source.pk))

    # Redis dies again under the running worker and comes back: the worker reconnects by itself.
    own_redis.kill()
    time.sleep(0.5)
    own_redis.start()
    later = text_source(alpha, "Later", "Gift cards never expire and can be used in every shop.")
    restarted = time.monotonic()
    wait_until(lambda: admin.post(f"/v1/sources/{later.pk}/ingest").status_code == 202, "a 202", timeout=10)
    wait_until(lambda: reload(alpha, later.pk).status == "ready", "the reconnected worker to ingest")
    timing("Redis restart under a running worker to the next ingestion ready", time.monotonic() - restarted)
    assert "reconnect" in workers[0].log_text().lower() or "Connection to broker lost" in workers[0].log_text()


@pytest.mark.django_db(transaction=True)
def test_redis_down_chat_goes_on_rate_limits_fail_open_and_webhook_events_wait_in_the_database(
    own_redis: RedisServer,
    route_to: Callable[[RedisServer], None],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Decision: the per-visitor/token/address chat limits and the login/signup throttles fail
    OPEN when the cache is down, with a warning logged (at most once a minute per process). They
    guard a tenant's budget against abuse; failing closed would turn a cache outage into a refusal
    of every visitor of every tenant. Never a 500."""
    alpha = build_world("alpha")
    route_to(own_redis)
    widget = api_client(alpha.tokens["bot"], HTTP_X_MINIRAG_VISITOR="visitor-1", REMOTE_ADDR="203.0.113.9")
    assert widget.post("/v1/chat", chat_body(alpha), format="json").status_code == 200
    assert any(key.startswith(b"minirag-faults") for key in own_redis.client().keys()), "counted in this Redis"
    own_redis.client().delete("webhooks")  # the answer's chat.message delivery, sent while Redis was up
    with tenant_scope(alpha.tenant):
        sent_before = set(WebhookDelivery.objects.values_list("pk", flat=True))

    own_redis.kill()
    monkeypatch.setattr(rate_limits, "_last_outage_warnings", {})  # each warning is logged once a minute
    caplog.set_level("WARNING")
    started = time.monotonic()
    response = widget.post("/v1/chat", chat_body(alpha, "And how long do refunds take in December?"), format="json")
    took = time.monotonic() - started
    assert response.status_code == 200, response.content
    assert response.json()["message"]["outcome"] in ("answered", "refused")
    timing("widget chat turn with Redis down", took)
    assert "Rate limits not enforced: the shared cache is unavailable" in caplog.text
    streamed = widget.post("/v1/chat", chat_body(alpha, stream=True), format="json")
    assert streamed.status_code == 200 and read_events(streamed)[-1][0] == "done"
    login = api_client().post("/v1/auth/login", {"email": alpha.owner.email, "password": alpha.password}, format="json")
    assert login.status_code == 200, login.content
    assert "The login rate limit not enforced: the shared cache is unavailable" in caplog.text

    # Nothing is lost: the answers' webhook deliveries are in PostgreSQL, pending.
    with tenant_scope(alpha.tenant):
        waiting = WebhookDelivery.objects.exclude(pk__in=sent_before)
        assert [(d.event, d.state, d.attempt_count) for d in waiting] == [("chat.message", "pending", 0)] * 2

    # Redis back: the sweeper queues what never reached the broker (it waits REDISPATCH_AFTER_SECONDS
    # before deciding a message was lost; here the clock is moved on instead of waiting).
    own_redis.start()
    assert send_due_deliveries(now=timezone.now() + timedelta(minutes=3)) >= 1
    assert own_redis.queued("webhooks") >= 1
    assert widget.post("/v1/chat", chat_body(alpha), format="json").status_code == 200
    assert any(key.startswith(b"minirag-faults") for key in own_redis.client().keys()), "counting again"


# --- 2. Qdrant down -----------------------------------------------------------------------------


# The client warns that it cannot check the server's version: nothing answers, as intended.
qdrant_down = pytest.mark.filterwarnings("ignore:Failed to obtain server version:UserWarning")


@pytest.fixture
def qdrant_switch(settings: Any, tmp_path: Path) -> Callable[[bool], None]:
    """`qdrant(up)`: up is local mode on a directory (kept across the switch); down is the
    server client pointed at a port where nothing listens (a stopped Qdrant server: the client
    raises ResponseHandlingException(ConnectError), exactly as in production)."""
    settings.QDRANT_PATH = str(tmp_path / "qdrant")
    dead = f"http://127.0.0.1:{free_port()}"

    def switch(up: bool) -> None:
        settings.QDRANT_URL = "" if up else dead  # the client is rebuilt on the setting change

    return switch


@qdrant_down
@pytest.mark.django_db
def test_qdrant_down_chat_answers_503_keeps_the_question_and_recovers(qdrant_switch: Callable[[bool], None]) -> None:
    alpha = build_world("alpha")
    qdrant_switch(False)

    response = alpha.client().post("/v1/chat", chat_body(alpha), format="json")
    assert response.status_code == 503
    detail = response.json()["detail"]
    assert detail.startswith("The knowledge base is unavailable right now; please try again. (")
    assert "could not be reached" in detail  # the tenant's staff see why
    visitor = api_client(alpha.tokens["bot"], HTTP_X_MINIRAG_VISITOR="v-1").post(
        "/v1/chat", chat_body(alpha, "Visitor question about refunds?"), format="json"
    )
    assert visitor.status_code == 503
    assert visitor.json() == {"detail": "The knowledge base is unavailable right now; please try again."}
    _response, events = stream_turn(alpha, "Streamed question about refunds?")
    assert [name for name, _ in events] == ["error"]
    assert events[0][1]["detail"].startswith("The knowledge base is unavailable right now")

    with tenant_scope(alpha.tenant):
        for question in (QUESTION, "Visitor question about refunds?", "Streamed question about refunds?"):
            asked = Message.objects.get(role="user", content=question)
            assert not Message.objects.filter(chat=asked.chat, role="assistant").exists()
            failure = UsageEvent.objects.get(chat=asked.chat)
            assert failure.outcome == "error" and "vector store could not be reached" in failure.error

    qdrant_switch(True)
    recovered = alpha.client().post("/v1/chat", chat_body(alpha), format="json")
    assert recovered.status_code == 200
    assert recovered.json()["message"]["outcome"] == "answered" and recovered.json()["sources"]


@qdrant_down
@pytest.mark.django_db
def test_qdrant_down_ingestion_retries_with_backoff_then_gives_up_and_recovers(
    qdrant_switch: Callable[[bool], None], settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    alpha = build_world("alpha")
    settings.INGEST_MAX_ATTEMPTS = 3
    source = text_source(alpha, "Warranty", "Every appliance carries a two-year warranty from the day of delivery.")
    qdrant_switch(False)

    with django_capture_on_commit_callbacks() as retries:  # the retry is sent on commit, with its countdown
        assert alpha.client("admin").post(f"/v1/sources/{source.pk}/ingest").status_code == 202
    assert len(retries) == 1
    first = reload(alpha, source.pk)
    assert first.status == "queued"
    match = re.fullmatch(
        r"Temporary problem: The vector store could not be reached: \[Errno 111\] Connection refused\. "
        r"Retrying in (\d+) s \(attempt 2 of 3\)\.",
        first.error_message,
    )
    assert match, first.error_message
    assert 11 <= int(match[1]) <= 19  # 15 s ± 25%

    kwargs = {"tenant_id": str(alpha.tenant.pk), "source_id": str(source.pk)}
    with django_capture_on_commit_callbacks() as retries:
        assert ingest_source(**kwargs, attempt=2)["status"] == "retrying"
    second = re.search(r"Retrying in (\d+) s \(attempt 3 of 3\)", reload(alpha, source.pk).error_message)
    assert second and 33 <= int(second[1]) <= 57 and len(retries) == 1  # 45 s ± 25%

    assert ingest_source(**kwargs, attempt=3)["status"] == "error"
    failed = reload(alpha, source.pk)
    assert failed.status == "error"
    assert failed.error_message == (
        "The vector store could not be reached: [Errno 111] Connection refused. (gave up after 3 attempts)"
    )
    with tenant_scope(alpha.tenant):
        announced = WebhookDelivery.objects.get(webhook=alpha.webhook, event="source.failed")
    assert json.loads(announced.body)["error"] == failed.error_message

    qdrant_switch(True)
    assert alpha.client("admin").post(f"/v1/sources/{source.pk}/ingest").status_code == 202
    recovered = reload(alpha, source.pk)
    assert (recovered.status, recovered.error_message, recovered.chunk_count) == ("ready", "", 1)


# --- 3. PostgreSQL restart ----------------------------------------------------------------------


@pytest.fixture
def live_api(transactional_db: Any) -> Iterator[str]:
    """The ASGI app under uvicorn in a thread: requests take real pooled connections (not the
    test's transaction)."""
    from minirag.asgi import application

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(application, lifespan="off", log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="uvicorn-faults")
    thread.start()
    wait_until(lambda: server.started, "uvicorn to start", timeout=20)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)


def superuser_connection() -> psycopg.Connection:
    """A connection as the server's superuser (not the app's role), to the maintenance database."""
    url = os.environ.get("MINIRAG_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/minirag")
    return psycopg.connect(url, dbname="postgres", autocommit=True)


def terminate_app_connections(admin: psycopg.Connection, database: str) -> int:
    rows = admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        [database],
    ).fetchall()
    return len(rows)


def allow_connections(admin: psycopg.Connection, database: str, allowed: bool) -> None:
    admin.execute(
        psycopg.sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
            psycopg.sql.Identifier(database), psycopg.sql.SQL("true" if allowed else "false")
        )
    )


def test_postgres_restart_requests_recover_without_an_app_restart(live_api: str) -> None:
    alpha = build_world("alpha")
    database = connection.settings_dict["NAME"]
    connection.close()  # the test's own connection goes back to the pool and is killed with the rest
    headers = {"Authorization": f"Bearer {alpha.tokens['owner']}"}
    with httpx.Client(base_url=live_api, headers=headers, timeout=30) as client, superuser_connection() as admin:
        with ThreadPoolExecutor(max_workers=4) as pool:  # a few connections in the pool, not just one
            assert set(pool.map(lambda _: client.get("/v1/tenants/me").status_code, range(8))) == {200}
        assert client.post("/v1/chat", json=chat_body(alpha)).status_code == 200

        # Every connection of the app is cut (what a restart does to them), between two requests.
        assert terminate_app_connections(admin, database) >= 1
        started = time.monotonic()
        statuses = [client.get("/v1/tenants/me").status_code for _ in range(6)]
        timing("first request after the app's connections were terminated", time.monotonic() - started)
        assert statuses == [200] * 6, "a pooled connection the server closed must never reach a request"
        assert client.post("/v1/chat", json=chat_body(alpha)).status_code == 200
        with client.stream("POST", "/v1/chat", json=chat_body(alpha, stream=True)) as streamed:
            assert [name for name, _ in parse_stream(streamed.read())][-1] == "done"

        # A restart window: connections cut and refused for two seconds. A request arriving then
        # waits for the pool (up to MINIRAG_DB_POOL_TIMEOUT_SECONDS) and is answered once it is back.
        allow_connections(admin, database, False)
        try:
            terminate_app_connections(admin, database)
            with ThreadPoolExecutor(max_workers=1) as pool:
                started = time.monotonic()
                during = pool.submit(client.get, "/v1/tenants/me")
                time.sleep(2)
                assert not during.done()
                allow_connections(admin, database, True)
                assert during.result(timeout=30).status_code == 200
                timing("request sent during a 2 s database outage, answered after", time.monotonic() - started)
        finally:
            allow_connections(admin, database, True)
        assert client.get("/v1/chat").status_code == 200

        # An outage longer than the pool's timeout: a clear 503 (never a 500), then recovery.
        pool = connection.pool
        pool_timeout, pool.timeout = pool.timeout, 1.0  # MINIRAG_DB_POOL_TIMEOUT_SECONDS, 10 s by default
        allow_connections(admin, database, False)
        try:
            terminate_app_connections(admin, database)
            refused = client.get("/v1/tenants/me")
            assert refused.status_code == 503
            assert refused.json() == {"detail": DATABASE_UNAVAILABLE}
        finally:
            allow_connections(admin, database, True)
            pool.timeout = pool_timeout
        started = time.monotonic()
        wait_until(lambda: client.get("/v1/tenants/me").status_code == 200, "the API to answer again", timeout=15)
        timing("first success after a long database outage ends", time.monotonic() - started)


# --- 4. A worker killed mid-ingestion -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_worker_pool_process_sigkilled_mid_ingestion_recovers_without_duplicates(
    own_redis: RedisServer,
    route_to: Callable[[RedisServer], None],
    workers: list[Worker],
    tmp_path: Path,
    settings: Any,
) -> None:
    """The default (prefork) pool: its child process dies by SIGKILL in the middle of a large
    ingestion, as under the OOM killer. The parent rejects the message (reject_on_worker_lost)
    and the broker redelivers it at once — but the dead run's heartbeat is still fresh, so the
    redelivery is a no-op rather than a second concurrent run. Once the heartbeat is stale the
    reaper (beat's job, run here directly) requeues the source, and the same worker finishes it:
    `ready`, the right chunk count, one vector per chunk, none left over."""
    alpha = build_world("alpha")
    route_to(own_redis)
    paragraphs = [
        f"Rule {n} of the handbook says that order {n} ships on day {n % 7} of the week." * 4 for n in range(240)
    ]
    big = text_source(alpha, "Big handbook", "\n\n".join(paragraphs))
    worker = Worker(own_redis.url, tmp_path / "qdrant", tmp_path / "worker.log", pool="prefork")
    workers.append(worker)
    assert alpha.client("admin").post(f"/v1/sources/{big.pk}/ingest").status_code == 202
    wait_until(lambda: reload(alpha, big.pk).chunks_done > 0, "the ingestion to be under way")
    [child] = worker.pool_processes()
    os.kill(child, signal.SIGKILL)
    killed_at = time.monotonic()

    wait_until(lambda: worker.log_text().count("not queued, or already taken") >= 1, "the redelivered message")
    assert "WorkerLostError" in worker.log_text() or "signal 9" in worker.log_text()
    interrupted = reload(alpha, big.pk)
    assert interrupted.status == "processing" and interrupted.chunks_done < interrupted.chunks_total

    settings.INGEST_STALE_AFTER_SECONDS = 2
    wait_until(lambda: lifecycle.reap_stuck_sources() == 1, "the reaper to requeue the dead run", timeout=15)
    wait_until(lambda: reload(alpha, big.pk).status in ("ready", "error"), "the requeued ingestion")
    timing("SIGKILL of the pool process to source ready (stale after 2 s)", time.monotonic() - killed_at)
    recovered = reload(alpha, big.pk)
    assert recovered.status == "ready", recovered.error_message
    assert recovered.ingest_attempt == 0 and recovered.chunk_count == recovered.chunks_total > 100
    worker.stop()
    stored = stored_chunk_ids(alpha, big.pk)
    points, point_ids = indexed_point_count(alpha, big.pk, tmp_path / "qdrant", settings)
    assert points == len(stored) == recovered.chunk_count  # one vector per chunk: no duplicates
    assert point_ids == stored  # and none missing or left over from the killed run


# --- 5. Model provider errors and stalls --------------------------------------------------------


class StallsMidAnswer(CustomLLM):
    """A provider that starts answering, then goes silent (a hung connection)."""

    def astreaming(self, *args: Any, **kwargs: Any) -> Any:
        async def words() -> Any:
            for word in ("Refunds ", "take "):
                yield {"text": word, "is_finished": False, "finish_reason": "", "usage": None, "index": 0}
            await asyncio.sleep(30)
            yield {"text": "never", "is_finished": True, "finish_reason": "stop", "usage": None, "index": 0}

        return words()


@pytest.fixture
def stalling_provider() -> Iterator[str]:
    entry = {"provider": "stalling", "custom_handler": StallsMidAnswer()}
    litellm.custom_provider_map.append(entry)
    custom_llm_setup()
    yield "stalling/model"
    litellm.custom_provider_map.remove(entry)


PROVIDER_FAILURES = {
    "rate limit": {"mock_response": "litellm.RateLimitError"},
    "timeout": {"mock_timeout": True},
    "connection error": {
        "mock_response": litellm.APIConnectionError("connection refused", llm_provider="openai", model="gpt-4o-mini")
    },
}


@pytest.mark.django_db
@pytest.mark.parametrize("streamed", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("failure", list(PROVIDER_FAILURES))
def test_a_provider_failure_keeps_the_question_counts_the_error_and_says_why(
    model_spy: ModelSpy, settings: Any, failure: str, streamed: bool
) -> None:
    """What chat/tests/test_turns.py and test_streaming.py do not already cover: a connection
    error as JSON, and all three failures streamed, with the usage counted as an error."""
    alpha = build_world("alpha")
    use_model(alpha, "gpt-4o-mini")
    model_spy.calls.clear()  # build_world's own answer went through the spy
    model_spy.mock(**PROVIDER_FAILURES[failure])
    settings.LLM_TIMEOUT_SECONDS = 0.2
    question = f"How long do refunds at alpha take ({failure}, {streamed})?"
    if streamed:
        _response, events = stream_turn(alpha, question)
        assert [name for name, _ in events] == ["sources", "error"]
        detail = events[-1][1]["detail"]
    else:
        response = alpha.client().post("/v1/chat", chat_body(alpha, question), format="json")
        assert response.status_code == 503
        detail = response.json()["detail"]
    assert detail.startswith("The model is unavailable right now; please try again. (The model gpt-4o-mini failed: ")
    assert len(model_spy.calls) == 2  # a transient failure is retried once, before any text
    with tenant_scope(alpha.tenant):
        asked = Message.objects.get(role="user", content=question)
        assert not Message.objects.filter(chat=asked.chat, role="assistant").exists()
        failure_row = UsageEvent.objects.get(chat=asked.chat)
    assert (failure_row.outcome, failure_row.model, failure_row.streamed) == ("error", "gpt-4o-mini", streamed)


@pytest.mark.django_db
def test_a_stream_that_stalls_ends_with_an_error_and_keeps_what_was_said(stalling_provider: str, settings: Any) -> None:
    alpha = build_world("alpha")
    use_model(alpha, stalling_provider)
    settings.LLM_STREAM_IDLE_SECONDS = 0.5
    started = time.monotonic()
    _response, events = stream_turn(alpha, QUESTION)
    took = time.monotonic() - started
    assert [name for name, _ in events] == ["sources", "delta", "delta", "error"]
    assert events[-1][1]["detail"] == (
        "The model is unavailable right now; please try again. "
        "(The model stalling/model went silent for 0.5 s mid-answer.)"
    )
    assert took < 5, f"the stall was cut after {took:.1f} s"
    with tenant_scope(alpha.tenant):
        asked = Message.objects.get(role="user", content=QUESTION)
        answer = Message.objects.get(chat=asked.chat, role="assistant")
        usage = list(UsageEvent.objects.filter(chat=asked.chat).order_by("created_at"))
    assert (answer.outcome, answer.content) == ("partial", "Refunds take ")
    assert [(u.outcome, u.streamed) for u in usage] == [("partial", True), ("error", True)]
    assert "went silent" in usage[-1].error


# --- 6. Webhook receiver down -------------------------------------------------------------------


class ReceiverProcess:
    """A webhook receiver on a fixed port that can be 'down' (nothing listening) and come back."""

    def __init__(self) -> None:
        self.port = free_port()
        self.bodies: list[tuple[dict[str, str], bytes]] = []
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/minirag"

    def start(self) -> None:
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                bodies.append((dict(self.headers), self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.mark.django_db
def test_a_webhook_receiver_that_is_down_gets_the_same_delivery_once_it_is_back(
    django_capture_on_commit_callbacks: Any,
) -> None:
    """webhooks/tests/test_delivery.py covers receivers that answer errors (5xx, 408, 429 with
    Retry-After, timeouts, 410) with backoff, the attempt budget and auto-disabling; this is the
    receiver whose process is not running at all (connection refused)."""
    alpha = build_world("alpha")
    receiver = ReceiverProcess()
    webhook, secret = register(alpha, receiver.url, events=["chat.message"])
    with django_capture_on_commit_callbacks(execute=True):
        assert alpha.client().post("/v1/chat", chat_body(alpha), format="json").status_code == 200
    [delivery] = deliveries(alpha, webhook)
    assert delivery.state == DeliveryState.PENDING and delivery.last_status_code is None
    assert "refused" in delivery.last_error.lower() or "connect" in delivery.last_error.lower()
    assert 22 <= fast_forward(alpha, delivery) <= 38  # still down: the second attempt fails too
    try:
        receiver.start()
        assert 67 <= fast_forward(alpha, delivery) <= 113
    finally:
        receiver.stop()
    delivery = reload_row(alpha, delivery)
    assert delivery.state == DeliveryState.SUCCEEDED
    assert [a["status_code"] for a in delivery.attempts] == [None, None, 204]
    [(headers, body)] = receiver.bodies
    assert headers["X-MiniRAG-Delivery"] == str(delivery.pk) and body == delivery.body.encode()
    assert assert_authentic(Received("/hooks/minirag", headers, body, 0.0), secret)["event"] == "chat.message"
