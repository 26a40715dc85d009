"""Shared fixtures: two fully populated tenants, API clients per credential, and a guard that no
test leaves a tenant scope behind."""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import environ
import psycopg
import psycopg.sql
import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from bots.models import BotProfile
from bots.tests.factories import BotProfileFactory
from chat import turns
from chat.services import prepare_turn
from minirag.vectorstore import close_vector_store
from providers import budgets
from providers.endpoints import encrypt_credentials
from providers.models import Connection, ConnectionGrant
from sources.curated import curated_answer_create
from sources.models import CuratedAnswer, Source
from sources.services import source_create, source_ingest_request, source_upload
from tenants.authentication import Principal
from tenants.models import ApiToken, Role, Tenant, User
from tenants.tenancy import current_scope, tenant_scope
from tenants.tests.factories import DEFAULT_PASSWORD, TenantFactory, UserFactory, make_token
from webhooks.models import SUBSCRIBABLE_EVENTS, Webhook
from webhooks.services import webhook_create


def _share_the_cores_between_xdist_workers() -> None:
    """Under pytest-xdist (`make test` runs one worker per core) every worker, and every process a
    test starts, gets its share of the cores for the offline embedder's onnxruntime threads, instead
    of one thread per core each: two workers' thread pools fighting over the same cores stall each
    other (an ingestion of the docs took 3-4x longer). Set MINIRAG_LOCAL_EMBEDDER_THREADS to choose."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    if workers <= 1 or "MINIRAG_LOCAL_EMBEDDER_THREADS" in os.environ:
        return
    share = str(max(1, len(os.sched_getaffinity(0)) // workers))
    os.environ["MINIRAG_LOCAL_EMBEDDER_THREADS"] = share  # the processes tests start
    settings.LOCAL_EMBEDDER_THREADS = int(share)  # this one (the embedder is loaded on first use)


_share_the_cores_between_xdist_workers()

# --- `make test` on every core (pytest-xdist, `-n auto --dist loadfile`) ---------------------------

# The real-browser tests: Chromium, and the product under uvicorn in a thread, for the package.
BROWSER_PACKAGE = "minirag/tests/widget/"
# The tests with a real Celery worker share one broker database (sources/tests/test_worker.py).
CELERY_WORKER_TESTS = ("sources/tests/test_worker.py", "webhooks/tests/test_worker.py")
# Work units that take long for their number of tests, handed out first (after the browser package)
# so that no worker is left with one of them at the end while the others wait. Only the balance
# between the workers depends on this list, never a result.
LONG_UNITS = (
    BROWSER_PACKAGE,
    "minirag/tests/test_fuzz_api.py",
    "celery worker tests",
    "minirag/tests/test_faults.py",
    "chat/tests/test_streams_smoke.py",
    "chat/tests/test_burst_smoke.py",
    "minirag/tests/test_load.py",
    "inbox/tests/test_bench_smoke.py",
    "sources/tests/test_bench_smoke.py",
    "evaluation/tests/test_evaluation.py",
    "providers/tests/test_embedding_batches.py",
    "minirag/tests/test_vector_index.py",
)


def work_unit(nodeid: str) -> str:
    """What one worker runs whole: a test file (its module fixtures are built once); the browser
    package (its package fixtures — a browser, a server thread — are built once, and stopped before
    the worker goes on with other files, as in a run in one process); the Celery worker tests."""
    path = nodeid.split("::", 1)[0]
    if path.startswith(BROWSER_PACKAGE):
        return BROWSER_PACKAGE
    return "celery worker tests" if path in CELERY_WORKER_TESTS else path


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadfile`, by `work_unit`, handed out in the workers' collection order (below)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class WorkUnitScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    config.option.loadscopereorder = False
    return WorkUnitScheduling(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On a pytest-xdist worker: the long units first (LONG_UNITS), then the others by their number
    of tests, largest first (pytest-xdist's own order); each unit's tests keep their order."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    sizes = Counter(work_unit(item.nodeid) for item in items)
    first = {unit: rank for rank, unit in enumerate(LONG_UNITS)}

    def order(item: pytest.Item) -> tuple[int, int]:
        unit = work_unit(item.nodeid)
        return (first.get(unit, len(first)), -sizes[unit])

    items.sort(key=order)  # stable: units of the same size keep the collection order


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """Before the test database is created: make sure the app's own database role exists (it owns
    no table and lacks BYPASSRLS, so row-level security applies to every query the suite makes),
    and drop a leftover test database it could not drop itself."""
    ensure_app_role(settings.DATABASE_OWNER_URL, settings.DATABASES["default"])


def ensure_app_role(owner_url: str, app_database: dict[str, Any]) -> None:
    role, test_database = (
        app_database["USER"],
        app_database.get("TEST", {}).get("NAME") or ("test_" + app_database["NAME"]),
    )
    owner = environ.Env.db_url_config(owner_url)
    with psycopg.connect(
        host=owner["HOST"] or "127.0.0.1",
        port=owner["PORT"] or 5432,
        user=owner["USER"],
        password=owner["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as connection:
        # pytest-xdist workers (and other runs on this server) get here at the same moment: one at a
        # time, or two CREATE/ALTER ROLE of the same role collide. Released when the connection closes.
        connection.execute("SELECT pg_advisory_lock(hashtext('minirag test app role'))")
        existing = connection.execute(
            "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = %s", [role]
        ).fetchone()
        quoted = psycopg.sql.Identifier(role)
        if existing is None:
            connection.execute(psycopg.sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS").format(quoted))
        elif existing[0]:
            # Never strip a powerful role of its rights: refuse to run the suite as it instead.
            pytest.exit(f"MINIRAG_TEST_APP_ROLE={role} is a superuser or bypasses RLS; name an ordinary role.", 2)
        # It creates (and drops) the throwaway test database, and can do nothing else special.
        connection.execute(psycopg.sql.SQL("ALTER ROLE {} LOGIN CREATEDB").format(quoted))
        owner_of_leftover = connection.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", [test_database]
        ).fetchone()
        if owner_of_leftover and owner_of_leftover[0] != role:
            connection.execute(
                psycopg.sql.SQL("DROP DATABASE {} WITH (FORCE)").format(psycopg.sql.Identifier(test_database))
            )


def api_client(raw_token: str | None = None, **headers: str) -> APIClient:
    client = APIClient()
    if raw_token:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_token}", **headers)
    elif headers:
        client.credentials(**headers)
    return client


def http_scope(
    token: str, method: str, path: str, body: bytes = b"", extra_headers: tuple[tuple[bytes, bytes], ...] = ()
) -> dict[str, Any]:
    """The ASGI scope of a JSON request to `path` (its query string included) with a bearer token,
    for driving the application directly (to see what it sends, as it sends it)."""
    path, _, query = path.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-length", str(len(body)).encode()),
            *extra_headers,
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }


@dataclass
class TenantWorld:
    """A tenant with one user per role, a token for each, a bot and a widget (bot) token."""

    tenant: Tenant
    owner: User
    admin: User
    member: User
    bot: BotProfile
    text_source: Source | None = None
    upload_source: Source | None = None
    curated_answer: CuratedAnswer | None = None
    webhook: Webhook | None = None
    connection: Connection | None = None  # a named connection the platform granted this tenant
    tokens: dict[str, str] = field(default_factory=dict)  # role or "bot" → raw token
    token_rows: dict[str, ApiToken] = field(default_factory=dict)

    def client(self, who: str = "owner", **headers: str) -> APIClient:
        return api_client(self.tokens[who], **headers)

    @property
    def password(self) -> str:
        return DEFAULT_PASSWORD


def build_world(slug: str) -> TenantWorld:
    tenant = TenantFactory(slug=slug, name=f"{slug.title()} Inc")
    owner = UserFactory(tenant=tenant, role=Role.OWNER, email=f"owner@{slug}.example")
    admin = UserFactory(tenant=tenant, role=Role.ADMIN, email=f"admin@{slug}.example")
    member = UserFactory(tenant=tenant, role=Role.MEMBER, email=f"member@{slug}.example")
    bot = BotProfileFactory(tenant=tenant, name=f"{slug} bot")
    world = TenantWorld(tenant=tenant, owner=owner, admin=admin, member=member, bot=bot)
    for who, user in (("owner", owner), ("admin", admin), ("member", member)):
        world.token_rows[who], world.tokens[who] = make_token(user, name=f"{slug} {who} token")
    world.token_rows["bot"], world.tokens["bot"] = make_token(owner, name=f"{slug} widget", bot_profile=bot)
    with tenant_scope(tenant):
        # Nothing listens there: its deliveries fail and wait for a retry, filling the delivery log.
        world.webhook, _ = webhook_create(
            tenant=tenant, url=f"http://127.0.0.1:9/{slug}-hooks", events=list(SUBSCRIBABLE_EVENTS)
        )
        # A curated answer (a `qa` source), on a subject no test asks about; the oldest source, so
        # that the newest is an ordinary one. Like the upload below, its ingestion is queued when
        # the transaction commits: never, inside a test's transaction.
        world.curated_answer = curated_answer_create(
            tenant=tenant,
            bot_profile=bot,
            question=f"Do {slug} gift cards expire?",
            answer=f"{slug.title()} gift cards never expire.",
            created_by_name=owner.email,
        )
        world.text_source = source_create(
            tenant=tenant,
            bot_profile=bot,
            name=f"{slug} handbook",
            source_type="text",
            content=f"The {slug} office opens at nine. Refunds at {slug} take five working days.",
        )
        source_ingest_request(tenant=tenant, source=world.text_source)  # runs inline in tests
        world.upload_source = source_upload(
            tenant=tenant,
            bot_profile=bot,
            uploaded=SimpleUploadedFile(f"{slug}-notes.md", f"# {slug} notes\n\nShipping is free.".encode()),
        )
        world.text_source.refresh_from_db()
    owner_principal = Principal(tenant=tenant, user=owner, method="api_token", api_token=world.token_rows["owner"])
    for question in (f"How long do refunds at {slug} take?", "What is the airspeed velocity of an unladen swallow?"):
        with tenant_scope(tenant):
            turn = prepare_turn(principal=owner_principal, bot_profile_id=bot.pk, message=question)
        async_to_sync(turns.answer)(turn)  # the second one is refused: it records an unanswered question
    with tenant_scope(tenant):
        # The offline models cost nothing: some spend of a paid model, so that the isolation suite
        # covers the budget ledger (providers/budgets.py).
        budgets.record_spend(tenant=tenant, bot=bot, cost_usd=Decimal("0.0125"))
    # The platform's named connection for this tenant (its key encrypted, like an operator's would be),
    # unused by the bot, so that the isolation suite and key rotation cover connections and their grants.
    world.connection = Connection.objects.create(
        name=f"{slug}-vllm",
        api_base=f"https://llm.{slug}.example/v1",
        credentials_ciphertext=encrypt_credentials({"api_key": f"sk-{slug}-connection", "headers": {"X-Org": slug}}),
        chat_models=[f"hosted_vllm/{slug}-chat"],
    )
    with tenant_scope(tenant):
        ConnectionGrant.objects.create(tenant=tenant, connection=world.connection)
    return world


@pytest.fixture
def alpha(db: Any) -> TenantWorld:
    return build_world("alpha")


@pytest.fixture
def beta(db: Any) -> TenantWorld:
    return build_world("beta")


@pytest.fixture(scope="session", autouse=True)
def _static_files_scanned_once_per_process() -> Iterator[None]:
    """servestatic's middleware lists and stats every static file (a few hundred) when it is built.
    A server builds it once per process; Django's test client builds the whole middleware chain
    anew for every client, which made the scan a large share of the suite's time. Here the scan's
    result (the same files, found by the same finders, with the same headers) is kept and reused
    by every later instance built with the same configuration. Static files do not change during
    a run; a test that changes the static settings gets a scan of its own."""
    from servestatic.middleware import ServeStaticMiddleware

    real = ServeStaticMiddleware.add_files_from_finders
    scans: dict[tuple[Any, ...], tuple[dict[str, Any], list[tuple[str, str]]]] = {}

    def add_files_from_finders(self: ServeStaticMiddleware) -> None:
        key = (
            self.static_prefix,
            self.max_age,
            self.allow_all_origins,
            self.charset,
            self.add_headers_function,
            self.index_file,
            repr(self._immutable_file_test),
            self.allow_unsafe_symlinks,
            repr(getattr(settings, "SERVESTATIC_MIMETYPES", None)),
            repr(settings.STATICFILES_DIRS),
            tuple(settings.STATICFILES_FINDERS),
            tuple(settings.INSTALLED_APPS),
        )
        if key not in scans:
            files_before, directories_before = dict(self.files), list(self.directories)
            real(self)
            scans[key] = (
                {url: found for url, found in self.files.items() if files_before.get(url) is not found},
                [directory for directory in self.directories if directory not in directories_before],
            )
            return
        files, directories = scans[key]
        for root, prefix in reversed(directories):
            self.insert_directory(root, prefix)
        self.files.update(files)

    ServeStaticMiddleware.add_files_from_finders = add_files_from_finders  # type: ignore[method-assign]
    yield
    ServeStaticMiddleware.add_files_from_finders = real  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _tenant_scope_never_leaks() -> Any:
    assert not current_scope().is_set, "a tenant scope was already active when the test started"
    yield
    assert not current_scope().is_set, "the test (or the code it ran) left a tenant scope active"


@pytest.fixture(autouse=True)
def _fresh_vector_store() -> Iterator[None]:
    """Each test starts with an empty in-memory Qdrant (the client is process-wide), and embeds
    its questions afresh (a test that breaks the embedder must see it fail)."""
    from chat.retrieval import question_vectors

    close_vector_store()
    question_vectors.clear()
    yield
    close_vector_store()


# --- A local website for URL, sitemap and crawl tests -----------------------------------------


@dataclass
class Page:
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


class LocalSite:
    """An HTTP server on loopback serving `pages` (path → Page) to GET and POST; records every
    request's path (`requests`) and method, headers and body (`calls`)."""

    def __init__(self) -> None:
        self.pages: dict[str, Page] = {}
        self.requests: list[str] = []
        self.calls: list[dict[str, Any]] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.do_GET()

            def do_GET(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                site.calls.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                )
                site.requests.append(self.path)
                page = site.pages.get(self.path) or Page(b"not found", "text/plain", 404)
                self.send_response(page.status)
                self.send_header("Content-Type", page.content_type)
                self.send_header("Content-Length", str(len(page.body)))
                for name, value in page.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(page.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, body: str | bytes, content_type: str = "text/html; charset=utf-8", **kwargs: Any) -> str:
        self.pages[path] = Page(body.encode() if isinstance(body, str) else body, content_type, **kwargs)
        return self.url(path)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site() -> Iterator[LocalSite]:
    local = LocalSite()
    yield local
    local.close()
