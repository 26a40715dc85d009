"""Real-browser fixtures for the widget: the MiniRAG ASGI app served by uvicorn on loopback, host
pages served from a *different* origin (another port), and Debian's Chromium driven by
Playwright (never a downloaded browser). The server runs in this process against the test
database, so tests use `transactional_db`: what a fixture writes is committed and visible to it.
"""

from __future__ import annotations

import asyncio
import html
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import litellm
import pytest
import uvicorn
from litellm.llms.custom_llm import CustomLLM
from litellm.utils import custom_llm_setup

from conftest import TenantWorld, build_world
from sources.services import source_create, source_ingest_request
from tenants.tenancy import tenant_scope
from tenants.tests.factories import make_token

T = TypeVar("T")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
AXE = Path(__file__).resolve().parents[3] / "node_modules" / "axe-core" / "axe.min.js"


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class InFlight:
    """Counts requests the server is still working on (a stopped stream is stored after the
    browser hung up), so a test's database is not flushed under the server's feet."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.count = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.count += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.count -= 1

    def wait_idle(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while self.count and time.monotonic() < deadline:
            time.sleep(0.05)


# The server, the host pages and the browser are built once for this package's tests and stopped
# after them (not at the end of the session): their threads would otherwise share the process with
# every test that runs later, which, on a pytest-xdist worker, are most of the suite's.
@pytest.fixture(scope="package")
def api_server() -> Iterator[tuple[str, InFlight]]:
    """The whole product (minirag.asgi) under uvicorn, as `make run` serves it."""
    from minirag.asgi import application

    app = InFlight(application)
    sock = _free_socket()
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="uvicorn")
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", app
    server.should_exit = True
    thread.join(timeout=10)


class HostPages:
    """A tiny web server on its own port (another origin than the API) serving pages by path."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path.split("?")[0])
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write((body or "not found").encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True, name="host-pages").start()

    def add(self, path: str, body: str) -> str:
        self.pages[path] = body
        return self.origin + path


@pytest.fixture(scope="package")
def host_pages() -> Iterator[HostPages]:
    pages = HostPages()
    yield pages
    pages.server.shutdown()


class Chromium:
    """Debian's Chromium under sync Playwright, in a thread of its own: sync Playwright keeps an
    event loop running in the thread that drives it, where Django (async_to_sync, the ORM) cannot
    run, so fixtures and database checks stay in the test's thread and only scenarios — functions
    of a fresh page — run in the browser's thread. A scenario's failures are the test's."""

    def __init__(self) -> None:
        assert CHROMIUM.exists(), "The widget tests need Chromium at /usr/bin/chromium: apt-get install -y chromium"
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chromium")
        self._thread.submit(self._start).result(timeout=60)

    def _start(self) -> None:
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        self._browser = self._playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)

    def run(self, scenario: Callable[[Any], T], *, width: int = 1280, height: int = 800, **options: Any) -> T:
        """Run `scenario(page)` in a new browser context (fresh storage) and return its result.
        A JavaScript error on the page fails the test."""

        def job() -> T:
            context = self._browser.new_context(viewport={"width": width, "height": height}, **options)
            context.set_default_timeout(15_000)
            errors: list[str] = []
            page = context.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            try:
                result = scenario(page)
            finally:
                context.close()
            assert not errors, f"JavaScript errors on the page: {errors}"
            return result

        return self._thread.submit(job).result(timeout=180)

    def close(self) -> None:
        def stop() -> None:
            self._browser.close()
            self._playwright.stop()

        self._thread.submit(stop).result(timeout=60)
        self._thread.shutdown()


@pytest.fixture(scope="package")
def chromium() -> Iterator[Chromium]:
    browser = Chromium()
    yield browser
    browser.close()


# --- The tenant the widget talks to -----------------------------------------------------------

HANDBOOK = (
    "Opening hours. The Alpha office opens at nine in the morning and closes at five in the "
    "afternoon, Monday to Friday.\n\n"
    "Refunds. Refunds at Alpha take five working days from the day the returned parcel arrives."
)


@dataclass
class WidgetSite:
    """A tenant with a bot, knowledge, and a bot token allowed on the host pages' origin."""

    world: TenantWorld
    api_url: str
    origin: str
    token: str
    token_id: Any
    pages: HostPages
    extra: dict[str, Any] = field(default_factory=dict)

    def script_tag(self, *, token: str | None = None, attrs: str = "", asynchronous: bool = False) -> str:
        return (
            f'<script src="{self.api_url}/dashboard/widget/minirag-widget.js" '
            f'data-bot-id="{self.world.bot.pk}" data-api-url="{self.api_url}" '
            f'data-api-token="{html.escape(token or self.token)}" data-title="Alpha help" {attrs}'
            f"{' async' if asynchronous else ''}></script>"
        )

    def element(self, attrs: str = "") -> str:
        return (
            f'<minirag-widget bot-id="{self.world.bot.pk}" api-url="{self.api_url}" '
            f'api-token="{self.token}" title="Alpha help" {attrs}></minirag-widget>'
        )

    def page(self, path: str, *, head: str = "", body: str = "", style: str = "") -> str:
        return self.pages.add(
            path,
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>Host page</title><style>{style}</style>{head}</head>"
            f"<body><main><h1>Alpha Inc</h1><p>Welcome to our shop.</p></main>{body}</body></html>",
        )


@pytest.fixture
def site(transactional_db: Any, api_server: tuple[str, InFlight], host_pages: HostPages) -> Iterator[WidgetSite]:
    api_url, in_flight = api_server
    world = build_world("alpha")
    # A web page as a source, so answers cite it with a link; its name tries to inject markup.
    paragraphs = "".join(f"<p>{html.escape(text)}</p>" for text in HANDBOOK.split("\n\n"))
    handbook_url = host_pages.add(
        "/handbook", f"<html><head><title>Handbook</title></head><body><article>{paragraphs}</article></body></html>"
    )
    with tenant_scope(world.tenant):
        source = source_create(
            tenant=world.tenant,
            bot_profile=world.bot,
            name='Alpha handbook <img src=x onerror="window.__pwned=1">',
            source_type="url",
            config={"url": handbook_url},
        )
        source_ingest_request(tenant=world.tenant, source=source)
        source.refresh_from_db()
        assert source.status == "ready", source.error_message
    row, raw = make_token(world.owner, name="site", bot_profile=world.bot, allowed_origins=[host_pages.origin])
    yield WidgetSite(
        world=world, api_url=api_url, origin=host_pages.origin, token=raw, token_id=row.pk, pages=host_pages
    )
    in_flight.wait_idle()


# --- Model stand-ins (the providers on the internet cannot be reached from tests) --------------


class WidgetTestModel(CustomLLM):
    """`widgettest/slow`: a cited answer, one word every 0.08 s (time to press Stop, and proof the
    widget shows words as they arrive). `widgettest/broken`: three words, then the connection
    drops. `widgettest/hostile`: an answer that tries to inject HTML and script."""

    HOSTILE = (
        'Opening hours are **nine to five** [1]. <img src=x onerror="window.__pwned=1"> '
        "<script>window.__pwned=1</script> [click](javascript:window.__pwned=1)"
    )

    def astreaming(self, model: str, *args: Any, **kwargs: Any) -> Any:
        async def chunks() -> Any:
            if model.endswith("broken"):
                for word in ("The ", "office ", "opens "):
                    yield _chunk(word)
                raise litellm.APIConnectionError("connection reset by peer", llm_provider="widgettest", model=model)
            words = (
                self.HOSTILE.split(" ")
                if model.endswith("hostile")
                else ("The office opens at nine in the morning and closes at five [1]. " * 4).split(" ")
            )
            for word in words:
                if model.endswith("slow"):
                    await asyncio.sleep(0.08)
                yield _chunk(word + " ")
            yield {**_chunk(""), "is_finished": True, "finish_reason": "stop"}

        return chunks()


def _chunk(text: str) -> dict[str, Any]:
    return {"text": text, "is_finished": False, "finish_reason": "", "usage": None, "index": 0}


@pytest.fixture(scope="package")
def widget_test_models() -> Iterator[None]:
    entry = {"provider": "widgettest", "custom_handler": WidgetTestModel()}
    litellm.custom_provider_map.append(entry)
    custom_llm_setup()
    yield
    litellm.custom_provider_map.remove(entry)


def use_model(site: WidgetSite, model: str) -> None:
    response = site.world.client("admin").patch(
        f"/v1/bot-profiles/{site.world.bot.pk}", {"model": model}, format="json"
    )
    assert response.status_code == 200, response.json()


def run_axe(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page, shadow DOM included."""
    assert AXE.exists(), "axe-core is missing: run `npm ci` (make test does)"
    page.add_script_tag(path=str(AXE))
    results = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def dump(value: Any) -> str:
    return json.dumps(value, indent=2)
