"""Model calls are outbound requests under the egress policy, and their failures read as one safe sentence.

A "canary" HTTP server on loopback plays an internal service (or a broken OpenAI-compatible endpoint): it
records every request and answers with a body that must never reach an API answer. LiteLLM is pointed at it
the way an operator would, with `OPENAI_API_BASE`, so the whole path runs for real: bot save, chat turn
(JSON and streamed), ingestion, and LiteLLM's own HTTP clients.
"""

from __future__ import annotations

import json
import pickle
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import ImproperlyConfigured

from chat.models import Message, UsageEvent
from chat.tests.conftest import add_knowledge, ask
from chat.tests.test_streaming import parse_stream
from conftest import TenantWorld
from minirag import model_gateway
from minirag.safe_http import destinations
from minirag.safe_http.egress import model_allowance
from minirag.tests.benches import run_bench
from sources.models import Source
from sources.services import source_create, source_ingest_request
from tenants.tenancy import tenant_scope

SECRET = "CANARY-INTERNAL-SECRET"
# What no answer of the API may carry: the canary's body, a traceback, a file path of this server.
LEAKS = (SECRET, "Traceback", "site-packages", 'File "', ".py", "/usr/", "/root/", "litellm.")


class Canary:
    """An HTTP server that records requests and answers each path with a configurable (status, body)."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.answers: dict[str, tuple[int, bytes, str]] = {}
        canary = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                canary.requests.append(self.path)
                status, body, content_type = canary.answers.get(
                    self.path, (200, f"<html><body>{SECRET}</body></html>".encode(), "text/html")
                )
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer_json(self, path: str, payload: Any, status: int = 200) -> None:
        self.answers[path] = (status, json.dumps(payload).encode(), "application/json")


@pytest.fixture
def canary() -> Iterator[Canary]:
    server = Canary()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def egress_policy(settings: Any) -> None:
    """Production posture (the test settings allow private networks for the suites' local servers)."""
    settings.ALLOW_PRIVATE_NETWORKS = False
    settings.MODEL_ALLOWED_NETWORKS = []


def openai_at(monkeypatch: pytest.MonkeyPatch, base: str) -> None:
    """Point LiteLLM's OpenAI provider at `base`, with a key, as an operator's environment would."""
    monkeypatch.setenv("OPENAI_API_BASE", base)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")


def set_bot_models(world: TenantWorld, **fields: str) -> None:
    """Bypasses the save-time check, as a bot saved before a policy change (or a DNS change) would."""
    with tenant_scope(world.tenant):
        type(world.bot).objects.filter(pk=world.bot.pk).update(**fields)
        world.bot.refresh_from_db()


def ingest_once(world: TenantWorld, settings: Any, content: str) -> Source:
    """A new text source of the bot, ingested with a single attempt (a failure is final at once)."""
    settings.INGEST_MAX_ATTEMPTS = 1
    with tenant_scope(world.tenant):
        source = source_create(
            tenant=world.tenant, bot_profile=world.bot, name="New", source_type="text", content=content
        )
        source_ingest_request(tenant=world.tenant, source=source)
        source.refresh_from_db()
    return source


def assert_no_leak(text: str) -> None:
    for leak in LEAKS:
        assert leak not in text, f"{leak!r} reached the API: {text}"


def read_stream(response: Any) -> str:
    async def read_all() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])

    assert response.status_code == 200, response.content
    return async_to_sync(read_all)().decode()


def stream_events(world: TenantWorld, question: str, who: str = "owner") -> list[tuple[str, dict[str, Any]]]:
    return parse_stream(read_stream(ask(world, question, who, stream=True)).encode())


# --- Saving a bot ------------------------------------------------------------------------------------------

LOCAL_BY_DEFAULT = {
    "llamafile/x": ("model", "127.0.0.1 (port 8080)"),
    "ollama/llama3": ("model", "localhost (port 11434)"),
    "ollama_chat/llama3": ("model", "localhost (port 11434)"),
    "lemonade/x": ("model", "localhost (port 8000)"),
    "docker_model_runner/x": ("model", "localhost (port 22088)"),
    "langgraph/x": ("model", "localhost (port 2024)"),
    "ollama/nomic-embed-text": ("embedding_model", "localhost (port 11434)"),
    "ollama_chat/qwen2.5": ("rewrite_model", "localhost (port 11434)"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("model", list(LOCAL_BY_DEFAULT))
def test_a_model_whose_endpoint_is_local_is_refused_when_the_bot_is_saved(
    alpha: TenantWorld, egress_policy: None, model: str
) -> None:
    field, destination = LOCAL_BY_DEFAULT[model]
    created = alpha.client("admin").post("/v1/bot-profiles", {"name": "Local", field: model}, format="json")
    assert created.status_code == 422, created.content
    detail = created.json()["detail"]
    assert model in detail and destination in detail and "MINIRAG_MODEL_ALLOWED_NETWORKS" in detail
    assert created.json()["errors"][field]

    before = alpha.client().get(f"/v1/bot-profiles/{alpha.bot.pk}").json()
    patched = alpha.client("admin").patch(f"/v1/bot-profiles/{alpha.bot.pk}", {field: model}, format="json")
    assert patched.status_code == 422 and model in patched.json()["detail"]
    assert alpha.client().get(f"/v1/bot-profiles/{alpha.bot.pk}").json() == before


@pytest.mark.django_db
def test_the_operator_can_allow_an_on_premises_model_server(
    alpha: TenantWorld, egress_policy: None, settings: Any
) -> None:
    settings.MODEL_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    assert alpha.client("admin").patch(f"/v1/bot-profiles/{alpha.bot.pk}", {"model": "llamafile/x"}).status_code == 200
    # "localhost" names this machine whatever the addresses: allowing it is allowing the name.
    settings.MODEL_ALLOWED_NETWORKS = ["localhost"]
    body = {"name": "On-premises", "model": "ollama/llama3", "embedding_model": "ollama/nomic-embed-text"}
    assert alpha.client("admin").post("/v1/bot-profiles", body, format="json").status_code == 201
    # Hosted providers and the offline models need nothing.
    settings.MODEL_ALLOWED_NETWORKS = []
    for model in ("gpt-4o-mini", "anthropic/claude-3-5-sonnet", "gemini/gemini-1.5-flash", "local/extractive"):
        assert alpha.client("admin").patch(f"/v1/bot-profiles/{alpha.bot.pk}", {"model": model}).status_code == 200


@pytest.mark.django_db
def test_a_provider_that_bypasses_the_guard_is_refused(alpha: TenantWorld) -> None:
    response = alpha.client("admin").patch(f"/v1/bot-profiles/{alpha.bot.pk}", {"model": "aiohttp_openai/gpt-4o"})
    assert response.status_code == 422 and "bypass the egress policy" in response.json()["detail"]


def test_the_allowance_setting_is_validated(settings: Any) -> None:
    settings.MODEL_ALLOWED_NETWORKS = [" 10.0.0.0/8 ", "Ollama.", "fd00::/64"]
    allowance = model_allowance()
    assert allowance.hosts == frozenset({"ollama"}) and len(allowance.networks) == 2
    settings.MODEL_ALLOWED_NETWORKS = ["http://ollama:11434"]
    with pytest.raises(ImproperlyConfigured, match="MINIRAG_MODEL_ALLOWED_NETWORKS"):
        model_allowance()


# --- At call time -----------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("streamed", [False, True], ids=["json", "sse"])
def test_a_model_call_to_a_private_address_is_refused_without_a_connection(
    alpha: TenantWorld, egress_policy: None, canary: Canary, monkeypatch: pytest.MonkeyPatch, streamed: bool
) -> None:
    openai_at(monkeypatch, f"http://127.0.0.1:{canary.port}/v1")
    set_bot_models(alpha, model="openai/gpt-4o-mini")
    question = "How long do refunds at alpha take?"
    if streamed:
        events = stream_events(alpha, question)
        assert [name for name, _ in events] == ["sources", "error"]
        detail = events[-1][1]["detail"]
    else:
        response = ask(alpha, question)
        assert response.status_code == 502, response.content
        detail = response.json()["detail"]
    assert "was not called" in detail and "MINIRAG_MODEL_ALLOWED_NETWORKS" in detail
    assert canary.requests == []
    with tenant_scope(alpha.tenant):
        asked = Message.objects.filter(role="user", content=question).latest("created_at")
        assert UsageEvent.objects.get(chat=asked.chat, outcome="error").error.startswith("The model openai/gpt-4o-mini")


@pytest.mark.django_db
def test_dns_rebinding_after_the_save_gets_nowhere(
    alpha: TenantWorld, egress_policy: None, canary: Canary, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter([["93.184.215.14"], ["127.0.0.1"]])  # public when the bot is saved, loopback afterwards
    resolved: list[str] = []
    real_resolve = destinations.resolve

    def rebinding(host: str, port: int) -> list[str]:
        resolved.append(host)
        return next(answers) if host == "models.rebind.test" else real_resolve(host, port)

    monkeypatch.setattr(destinations, "resolve", rebinding)
    openai_at(monkeypatch, f"http://models.rebind.test:{canary.port}/v1")
    saved = alpha.client("admin").patch(f"/v1/bot-profiles/{alpha.bot.pk}", {"model": "openai/gpt-4o-mini"})
    assert saved.status_code == 200, saved.content
    response = ask(alpha, "How long do refunds at alpha take?")
    assert response.status_code == 502 and "points to a private" in response.json()["detail"]
    assert "127.0.0.1" not in response.json()["detail"]  # what the internal DNS said is not told
    assert resolved == ["models.rebind.test", "models.rebind.test"] and canary.requests == []


@pytest.mark.django_db
def test_embedding_calls_are_guarded_too_in_chat_and_in_ingestion(
    alpha: TenantWorld, egress_policy: None, canary: Canary, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    openai_at(monkeypatch, f"http://127.0.0.1:{canary.port}/v1")
    set_bot_models(alpha, embedding_model="openai/text-embedding-3-small")
    response = ask(alpha, "How long do refunds at alpha take?")
    assert response.status_code == 502 and "was not called" in response.json()["detail"]
    source = ingest_once(alpha, settings, "Fresh words.")
    assert source.status == "error" and "MINIRAG_MODEL_ALLOWED_NETWORKS" in source.error_message
    assert canary.requests == []


# --- Failures read as one safe sentence -------------------------------------------------------------------


@pytest.fixture
def allowed_canary(canary: Canary, egress_policy: None, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Canary:
    """The canary as an allowed on-premises endpoint, so its answers reach LiteLLM."""
    settings.MODEL_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    openai_at(monkeypatch, f"http://127.0.0.1:{canary.port}/v1")
    return canary


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["owner", "member", "bot"])
@pytest.mark.parametrize("streamed", [False, True], ids=["json", "sse"])
def test_a_failing_provider_never_shows_its_body_or_a_traceback(
    alpha: TenantWorld, allowed_canary: Canary, who: str, streamed: bool
) -> None:
    set_bot_models(alpha, model="openai/gpt-4o-mini")
    allowed_canary.answers["/v1/chat/completions"] = (401, f'{{"error": {{"message": "{SECRET}"}}}}'.encode(), "x")
    headers = {"HTTP_X_MINIRAG_VISITOR": "visitor-1"} if who == "bot" else {}
    question = f"How long do refunds at alpha take ({who}, {streamed})?"
    if streamed:
        response = alpha.client(who, **headers).post(
            "/v1/chat", {"bot_profile_id": str(alpha.bot.pk), "message": question, "stream": True}, format="json"
        )
        body = read_stream(response)
        assert [name for name, _ in parse_stream(body.encode())][-1] == "error"
        detail = parse_stream(body.encode())[-1][1]["detail"]
    else:
        response = alpha.client(who, **headers).post(
            "/v1/chat", {"bot_profile_id": str(alpha.bot.pk), "message": question}, format="json"
        )
        body = response.content.decode()
        assert response.status_code == 502, body
        detail = response.json()["detail"]
    assert_no_leak(body)
    assert len(detail) < 300
    if who == "bot":  # a website visitor: no model, no provider
        assert detail == "The model could not answer."
    else:  # the tenant's staff: which model and provider, and what kind of failure
        assert detail == (
            "The model could not answer. (The model openai/gpt-4o-mini failed: "
            "openai refused the API key (authentication failed).)"
        )
    assert allowed_canary.requests  # it was really called


@pytest.mark.django_db
@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")  # LiteLLM meeting the malformed vectors
@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("/v1/embeddings", {"object": "list", "model": "x"}),  # no `data`
        ("/v1/embeddings", {"object": "list", "data": [{"index": 0, "embedding": "not numbers"}]}),
        ("/v1/embeddings", {"object": "list", "data": [{"index": 0, "embedding": [0.1, 0.2]}, {"index": 1}]}),
    ],
    ids=["no-data", "not-numbers", "missing-vector"],
)
def test_a_malformed_embedding_answer_is_a_503_and_a_readable_ingestion_error(
    alpha: TenantWorld, allowed_canary: Canary, settings: Any, path: str, payload: dict[str, Any]
) -> None:
    set_bot_models(alpha, embedding_model="openai/text-embedding-3-small")
    allowed_canary.answer_json(path, payload)
    response = ask(alpha, "How long do refunds at alpha take?", "member")
    assert response.status_code == 503, response.content
    assert_no_leak(response.content.decode())
    assert "openai sent an answer that could not be read" in response.json()["detail"]

    events = stream_events(alpha, "And shipping?")
    assert [name for name, _ in events] == ["error"] and "could not be read" in events[0][1]["detail"]

    source = ingest_once(alpha, settings, "Two short lines.")
    assert source.status == "error" and "could not be read" in source.error_message
    assert "unexpected" not in source.error_message.lower()


@pytest.mark.django_db
def test_a_malformed_completion_is_a_503(alpha: TenantWorld, allowed_canary: Canary) -> None:
    set_bot_models(alpha, model="openai/gpt-4o-mini")
    allowed_canary.answer_json("/v1/chat/completions", {"id": "x", "object": "chat.completion", "choices": []})
    response = ask(alpha, "How long do refunds at alpha take?")
    assert response.status_code == 503, response.content
    assert "could not be read" in response.json()["detail"]


@pytest.mark.django_db
def test_an_allowed_endpoint_that_answers_well_is_used(alpha: TenantWorld, allowed_canary: Canary) -> None:
    """The guard lets allowed traffic through unchanged: a real answer from the canary endpoint."""
    set_bot_models(alpha, model="openai/gpt-4o-mini")
    add_knowledge(alpha, "Refunds", "Refunds at alpha take five working days.")
    allowed_canary.answer_json(
        "/v1/chat/completions",
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "Five days [1]."}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
        },
    )
    response = ask(alpha, "How long do refunds at alpha take?")
    assert response.status_code == 200, response.content
    assert response.json()["message"]["content"] == "Five days [1]."
    assert response.json()["usage"]["prompt_tokens"] == 11
    assert allowed_canary.requests == ["/v1/chat/completions"]


def test_the_guard_is_off_outside_model_calls(canary: Canary, egress_policy: None) -> None:
    """Other clients (the Qdrant client talks to the operator's private Qdrant) are not affected."""
    assert httpx.post(f"http://127.0.0.1:{canary.port}/other", content=b"{}").status_code == 200
    assert canary.requests == ["/other"]


@pytest.mark.django_db
def test_a_missing_api_key_is_named(alpha: TenantWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    set_bot_models(alpha, model="openai/gpt-4o-mini")
    response = ask(alpha, "How long do refunds at alpha take?")
    assert response.status_code == 502
    assert response.json()["detail"] == (
        "The model could not answer. (The model openai/gpt-4o-mini failed: openai needs an API key and none is "
        "configured (set the bot's credentials, or OPENAI_API_KEY on the server).)"
    )


def test_model_errors_survive_pickling_for_celery() -> None:
    error = pickle.loads(pickle.dumps(model_gateway.ModelError("The model x failed.", transient=True)))
    assert (error.message, error.transient) == ("The model x failed.", True)


def test_the_egress_benchmark_runs_end_to_end() -> None:
    """bench/model_egress.py keeps working (a few calls; the real numbers are in docs/benchmarks.md)."""
    result = run_bench("model_egress.py", "--calls", "5")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "| completion (async; " in result.stdout and "| embedding (sync; " in result.stdout
    assert "probe median:" in result.stdout and "Traceback" not in result.stderr
