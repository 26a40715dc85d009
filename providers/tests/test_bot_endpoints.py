"""A bot reaches its models at its own endpoint — an OpenAI-compatible server, an Azure OpenAI
deployment, an Ollama — with its own key and extra headers, for answers (JSON and streamed) and for
embeddings. The endpoint is readable; the key and the headers are write-only. Everything runs
against a real HTTP server on loopback (`FakeProvider`), through LiteLLM and the egress guard."""

from __future__ import annotations

from typing import Any

import pytest

from chat.tests.conftest import add_knowledge, ask
from chat.tests.test_streaming import parse_stream
from conftest import TenantWorld
from minirag.tests.test_model_egress import read_stream
from providers.tests.fake_provider import FakeProvider
from sources.models import Chunk
from tenants.tenancy import tenant_scope

QUESTION = "How long do refunds at alpha take?"  # the fixture's knowledge answers it


@pytest.fixture
def allowed_loopback(settings: Any) -> None:
    """The production posture, with the operator's allowance for a model server on this machine."""
    settings.ALLOW_PRIVATE_NETWORKS = False
    settings.MODEL_ALLOWED_NETWORKS = ["127.0.0.1/32"]


def configure(world: TenantWorld, **fields: Any) -> dict[str, Any]:
    response = world.client("admin").patch(f"/v1/bot-profiles/{world.bot.pk}", fields, format="json")
    assert response.status_code == 200, response.content
    with tenant_scope(world.tenant):
        world.bot.refresh_from_db()
    return response.json()


def streamed_text(world: TenantWorld, question: str) -> tuple[str, list[str]]:
    events = parse_stream(read_stream(ask(world, question, stream=True)).encode())
    names = [name for name, _ in events]
    return "".join(data["content"] for name, data in events if name == "delta"), names


@pytest.mark.django_db
def test_a_bot_answers_from_its_own_openai_compatible_server_with_its_key_and_headers(
    alpha: TenantWorld, fake_provider: FakeProvider, allowed_loopback: None
) -> None:
    shown = configure(
        alpha,
        model="openai/fake-chat",
        api_base=f"{fake_provider.url}/v1/",
        credentials={"api_key": "sk-own-key", "headers": {"X-Team": "support"}},
    )
    assert shown["api_base"] == f"{fake_provider.url}/v1" and shown["has_credentials"] is True
    assert "credentials" not in shown and "sk-own-key" not in str(shown) and "support" not in str(shown)
    member_view = alpha.client("member").get(f"/v1/bot-profiles/{alpha.bot.pk}").json()
    assert member_view["api_base"] == shown["api_base"] and "X-Team" not in str(member_view)

    fake_provider.reply = "Refunds take five working days, says the company's own model."
    body = ask(alpha, QUESTION).json()
    assert body["message"]["content"] == fake_provider.reply and body["usage"]["model"] == "openai/fake-chat"
    call = fake_provider.requests[-1]
    assert call.path == "/v1/chat/completions" and call.model == "fake-chat"
    assert call.headers["authorization"] == "Bearer sk-own-key" and call.headers["x-team"] == "support"
    assert "five working days" in str(call.body["messages"])  # the grounded prompt reached it

    text, names = streamed_text(alpha, QUESTION)
    assert text == fake_provider.reply
    assert names[0] == "sources" and names[-1] == "done" and set(names[1:-1]) == {"delta"}
    assert fake_provider.requests[-1].body["stream"] is True


@pytest.mark.django_db
def test_embeddings_go_to_the_bots_endpoint_too(
    alpha: TenantWorld, fake_provider: FakeProvider, allowed_loopback: None
) -> None:
    configure(
        alpha,
        model="openai/fake-chat",
        embedding_model="openai/fake-embed",
        api_base=f"{fake_provider.url}/v1",
        credentials={"api_key": "sk-own-key"},
    )
    fake_provider.reset()
    source = add_knowledge(alpha, "Hours", "The warehouse in Tromsø opens at seven on weekdays.")
    with tenant_scope(alpha.tenant):
        source.refresh_from_db()
    assert source.status == "ready", source.error_message
    embedded = [call for call in fake_provider.requests if call.path == "/v1/embeddings"]
    assert embedded and embedded[0].model == "fake-embed"
    assert embedded[0].headers["authorization"] == "Bearer sk-own-key"
    with tenant_scope(alpha.tenant):
        assert Chunk.objects.filter(source=source).exists()
    # The question is embedded at the same endpoint.
    ask(alpha, "When does the warehouse open?")
    asked = [call for call in fake_provider.requests if call.path == "/v1/embeddings"][-1]
    assert asked.body["input"] == ["When does the warehouse open?"]


@pytest.mark.django_db
def test_an_azure_openai_deployment_gets_its_api_version(
    alpha: TenantWorld, fake_provider: FakeProvider, allowed_loopback: None
) -> None:
    configure(
        alpha,
        model="azure/support-gpt",
        api_base=fake_provider.url,
        api_version="2024-06-01",
        credentials={"api_key": "azure-key"},
    )
    body = ask(alpha, QUESTION).json()
    assert body["message"]["content"] == fake_provider.reply
    call = fake_provider.requests[-1]
    assert call.path == "/openai/deployments/support-gpt/chat/completions"
    assert call.query["api-version"] == "2024-06-01" and call.headers["api-key"] == "azure-key"


@pytest.mark.django_db
@pytest.mark.parametrize("model", ["ollama/llama3", "ollama_chat/llama3"])
def test_an_ollama_server_answers_streamed_and_not(
    alpha: TenantWorld, fake_provider: FakeProvider, allowed_loopback: None, model: str
) -> None:
    configure(alpha, model=model, api_base=fake_provider.url)
    assert ask(alpha, QUESTION).json()["message"]["content"] == fake_provider.reply
    assert fake_provider.requests[-1].path in ("/api/generate", "/api/chat")
    text, names = streamed_text(alpha, QUESTION)
    assert text.strip() == fake_provider.reply and names.count("done") == 1


@pytest.mark.django_db
def test_a_private_endpoint_needs_the_operators_allowance(
    alpha: TenantWorld, fake_provider: FakeProvider, settings: Any
) -> None:
    settings.ALLOW_PRIVATE_NETWORKS = False
    settings.MODEL_ALLOWED_NETWORKS = []
    response = alpha.client("admin").patch(
        f"/v1/bot-profiles/{alpha.bot.pk}",
        {"model": "openai/fake-chat", "api_base": f"{fake_provider.url}/v1"},
        format="json",
    )
    assert response.status_code == 422
    assert "MINIRAG_MODEL_ALLOWED_NETWORKS" in response.json()["detail"] and not fake_provider.requests
    with tenant_scope(alpha.tenant):
        alpha.bot.refresh_from_db()
    assert alpha.bot.api_base == "" and alpha.bot.model != "openai/fake-chat"  # nothing was stored
    # Changing only the endpoint re-checks the models already saved.
    settings.MODEL_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    configure(alpha, model="openai/fake-chat", api_base=f"{fake_provider.url}/v1")
    settings.MODEL_ALLOWED_NETWORKS = []
    moved = alpha.client("admin").patch(
        f"/v1/bot-profiles/{alpha.bot.pk}", {"api_base": "http://127.0.0.1:9/v1"}, format="json"
    )
    assert moved.status_code == 422 and moved.json()["errors"].keys() >= {"model"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"api_base": "https://user:secret@llm.example.com/v1"}, "api_base", "user name or password"),
        ({"api_base": "ftp://llm.example.com"}, "api_base", "http(s) URL"),
        ({"credentials": {"headers": {"Host": "evil.example"}}}, "credentials", "not a header that may be set"),
        ({"credentials": {"headers": {"X-Team": "a\r\nX-Injected: 1"}}}, "credentials", "one-line value"),
        ({"credentials": {"headers": ["X-Team"]}}, "credentials", "header names and values"),
        ({"credentials": {"token": "x"}}, "credentials", "Unknown keys: token"),
        ({"credentials": "sk-plain"}, "credentials", "Must be an object"),
        ({"fallback_models": ["a", "b", "c", "d"]}, "fallback_models", "3"),
        ({"fallback_models": ["gpt-4o-mini", "gpt-4o-mini"]}, "fallback_models", "distinct"),
    ],
)
def test_bad_endpoint_settings_are_a_422_and_change_nothing(
    alpha: TenantWorld, fields: dict[str, Any], field: str, words: str
) -> None:
    before = alpha.client("admin").get(f"/v1/bot-profiles/{alpha.bot.pk}").json()
    response = alpha.client("admin").patch(f"/v1/bot-profiles/{alpha.bot.pk}", fields, format="json")
    assert response.status_code == 422, response.content
    body = response.json()
    assert words in body["detail"] or words in str(body.get("errors", {}).get(field)), body
    assert alpha.client("admin").get(f"/v1/bot-profiles/{alpha.bot.pk}").json() == before


@pytest.mark.django_db
def test_a_new_key_alone_keeps_nothing_else_and_null_clears_everything(alpha: TenantWorld) -> None:
    from bots.services import bot_model_endpoint
    from minirag.model_gateway import Endpoint

    configure(alpha, credentials={"api_key": "sk-1", "headers": {"X-Team": "a"}})
    assert bot_model_endpoint(alpha.bot).headers == {"X-Team": "a"}
    configure(alpha, credentials={"api_key": "sk-2"})  # the API replaces the whole object
    endpoint = bot_model_endpoint(alpha.bot)
    assert (endpoint.api_key, dict(endpoint.headers)) == ("sk-2", {})
    assert configure(alpha, credentials=None)["has_credentials"] is False
    assert bot_model_endpoint(alpha.bot) == Endpoint()


@pytest.mark.django_db
def test_the_bots_key_and_endpoint_go_only_to_the_provider_of_its_chat_model(alpha: TenantWorld) -> None:
    from bots.services import bot_model_endpoint
    from minirag.model_gateway import PUBLIC_ENDPOINT

    configure(
        alpha,
        model="ollama_chat/llama3",
        api_base="http://ollama.example:11434",
        credentials={"api_key": "sk-own", "headers": {"X-Team": "a"}},
    )
    own = bot_model_endpoint(alpha.bot)
    assert (own.api_key, own.api_base, dict(own.headers)) == ("sk-own", "http://ollama.example:11434", {"X-Team": "a"})
    # The same server under LiteLLM's other name for it gets the endpoint too...
    assert bot_model_endpoint(alpha.bot, "ollama/nomic-embed-text") == own
    # ...another provider never sees the bot's key, headers or endpoint.
    assert bot_model_endpoint(alpha.bot, "anthropic/claude-3-5-haiku-20241022") == PUBLIC_ENDPOINT
    assert bot_model_endpoint(alpha.bot, "gpt-4o-mini") == PUBLIC_ENDPOINT
