"""The model catalogue: what it lists, `GET /v1/models`, the check of a typed model string, the dashboard picker."""

from __future__ import annotations

import dataclasses

import pytest
from pytest_django.fixtures import Settings

from conftest import TenantWorld, api_client
from minirag.tests.api_schema import SchemaClient
from providers import widgets
from providers.catalogue import (
    ModelEntry,
    close_matches,
    is_routable,
    model_catalogue,
    unroutable_model_message,
)
from providers.widgets import ModelPickerWidget
from tenants.tenancy import tenant_scope

# Variables that would give the platform credentials for the providers these tests look at.
PROVIDER_VARIABLES = (
    "OPENAI_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "DATABRICKS_API_KEY",
    "DATABRICKS_API_BASE",
    "OLLAMA_API_BASE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


@pytest.fixture(autouse=True)
def _no_provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROVIDER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def by_id() -> dict[str, ModelEntry]:
    return {entry.id: entry for entry in model_catalogue()}


# --- What the catalogue holds -----------------------------------------------------------------


def test_the_catalogue_holds_hosted_and_offline_models() -> None:
    entries = by_id()
    gpt = entries["gpt-4o-mini"]
    assert (gpt.provider, gpt.mode, gpt.source) == ("openai", "chat", "litellm")
    assert gpt.context_window and gpt.context_window >= 100_000
    assert gpt.max_output_tokens and gpt.max_output_tokens > 0
    assert gpt.input_cost_per_token and gpt.input_cost_per_token > 0
    assert gpt.output_cost_per_token and gpt.output_cost_per_token > gpt.input_cost_per_token
    embedding = entries["text-embedding-3-small"]
    assert (embedding.provider, embedding.mode, embedding.max_output_tokens) == ("openai", "embedding", None)
    for model_id, mode in (("local/extractive", "chat"), ("local/minilm", "embedding")):
        local = entries[model_id]
        assert (local.provider, local.mode, local.source) == ("local", mode, "local")
        assert (local.input_cost_per_token, local.output_cost_per_token) == (0, 0)
        assert local.has_credentials
    assert entries["local/minilm"].context_window == 256


def test_only_routable_chat_and_embedding_models_are_listed() -> None:
    entries = model_catalogue()
    assert {entry.mode for entry in entries} == {"chat", "embedding"}
    assert "sample_spec" not in by_id()
    # Routing these starts an interactive login on the server's console.
    assert not [entry.id for entry in entries if entry.id.startswith(("github_copilot/", "chatgpt/"))]
    # Listed names LiteLLM cannot route without a provider prefix are left out.
    assert "deepseek-chat" not in by_id()
    sample = entries[:: max(1, len(entries) // 200)]
    assert all(is_routable(entry.id) for entry in sample)


def test_the_local_models_come_first_then_by_provider_and_id() -> None:
    entries = model_catalogue()
    assert [entry.id for entry in entries[:2]] == ["local/extractive", "local/minilm"]
    rest = [(entry.provider, entry.id) for entry in entries[2:]]
    assert rest == sorted(rest)


def test_credentials_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not by_id()["gpt-4o-mini"].has_credentials
    assert by_id()["ollama/llama3"].has_credentials  # a local server: no key at all
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert by_id()["gpt-4o-mini"].has_credentials
    assert by_id()["text-embedding-3-small"].has_credentials
    monkeypatch.setenv("OPENAI_API_KEY", "")  # an empty line in .env is no key
    assert not by_id()["gpt-4o-mini"].has_credentials


def test_credentials_of_providers_with_other_variable_names(monkeypatch: pytest.MonkeyPatch) -> None:
    def credentialed(provider: str) -> bool:
        return next(entry.has_credentials for entry in model_catalogue() if entry.provider == provider)

    assert not credentialed("gemini") and not credentialed("bedrock") and not credentialed("databricks")
    monkeypatch.setenv("GOOGLE_API_KEY", "g-test")
    monkeypatch.setenv("AWS_PROFILE", "prod")
    # LiteLLM's environment check does not cover databricks: its own variable decides.
    monkeypatch.setenv("DATABRICKS_API_KEY", "d-test")
    assert credentialed("gemini") and credentialed("bedrock") and credentialed("databricks")


def test_operator_prices_override_litellms(settings: Settings) -> None:
    listed = by_id()["gpt-4o-mini"]
    settings.MODEL_PRICES = {"gpt-4o-mini": [1.5, 6], "ollama/llama3": [0.25, 0.5]}
    gpt, llama = by_id()["gpt-4o-mini"], by_id()["ollama/llama3"]
    assert (gpt.input_cost_per_token, gpt.output_cost_per_token) == (1.5e-6, 6e-6)
    assert (llama.input_cost_per_token, llama.output_cost_per_token) == (2.5e-7, 5e-7)
    assert listed.input_cost_per_token != gpt.input_cost_per_token


def test_a_tenant_sees_the_models_of_its_own_named_connections_only(alpha: TenantWorld, beta: TenantWorld) -> None:
    with tenant_scope(alpha.tenant):
        entries = model_catalogue(tenant_id=alpha.tenant.pk)
    assert [entry.id for entry in entries[:2]] == ["local/extractive", "local/minilm"]
    rest = [(entry.provider, entry.id) for entry in entries[2:]]
    assert rest == sorted(rest)
    (served,) = [entry for entry in entries if entry.source == "connection"]
    assert (served.id, served.connection, served.mode, served.provider) == (
        "hosted_vllm/alpha-chat",
        "alpha-vllm",
        "chat",
        "hosted_vllm",
    )
    assert served.has_credentials  # the connection holds the key
    assert all(entry.source != "connection" for entry in model_catalogue())  # no tenant: none
    with tenant_scope(beta.tenant):
        beta_served = [entry.connection for entry in model_catalogue(tenant_id=beta.tenant.pk) if entry.connection]
    assert beta_served == ["beta-vllm"]


# --- Checking a typed model string ------------------------------------------------------------


@pytest.mark.parametrize(
    "model",
    [
        "gpt-4o-mini",
        "openai/whatever-custom-name",
        "ollama/llama3",
        "anthropic/claude-3-5-haiku-20241022",
        "local/minilm",
        "local/extractive",
    ],
)
def test_routable_strings_pass(model: str) -> None:
    assert is_routable(model)
    assert unroutable_model_message(model, mode="chat") is None


def test_a_mistyped_chat_model_is_named_and_the_right_one_suggested() -> None:
    suggestions = close_matches("gpt4o-mini")
    assert suggestions[0] == "gpt-4o-mini" and len(suggestions) == 3
    assert all(model.endswith("gpt-4o-mini") for model in suggestions), suggestions
    message = unroutable_model_message("gpt4o-mini", mode="chat")
    assert message == (
        f'The model "gpt4o-mini" is not one LiteLLM can route. Did you mean "{suggestions[0]}", "{suggestions[1]}" '
        f'or "{suggestions[2]}"? GET /v1/models lists the models you can choose.'
    )


def test_a_model_without_its_provider_finds_the_providers_that_serve_it() -> None:
    suggestions = close_matches("claude-3-5-haiku", mode="chat")
    assert len(suggestions) == 3
    assert all("claude" in model and "haiku" in model for model in suggestions), suggestions
    assert close_matches("mistral-large-latest", mode="chat")[0] == "mistral/mistral-large-latest"
    message = unroutable_model_message("claude-3-5-haiku", mode="chat")
    assert message is not None and message.startswith('The model "claude-3-5-haiku" is not one LiteLLM can route.')


def test_a_mistyped_embedding_model_prefers_embedding_models() -> None:
    assert close_matches("text-embeding-3-small", mode="embedding")[0] == "text-embedding-3-small"
    assert all(by_id()[model].mode == "embedding" for model in close_matches("text-embeding-3-small", mode="embedding"))
    message = unroutable_model_message("text-embeding-3-small", mode="embedding")
    assert message is not None and 'Did you mean "text-embedding-3-small"' in message


def test_an_unknown_local_model_is_not_routable() -> None:
    assert not is_routable("local/minlm")
    assert unroutable_model_message("local/minlm", mode="embedding") == (
        'The model "local/minlm" is not one LiteLLM can route. Did you mean "local/minilm"? '
        "GET /v1/models lists the models you can choose."
    )


def test_nonsense_gets_no_suggestion_and_a_long_string_is_not_echoed_whole() -> None:
    assert close_matches("") == []
    message = unroutable_model_message("zq" * 500, mode=None)
    assert message is not None and "Did you mean" not in message
    assert len(message) < 250


def test_providers_that_log_in_interactively_are_refused_without_trying() -> None:
    assert not is_routable("github_copilot/gpt-4o")
    message = unroutable_model_message("github_copilot/gpt-4o", mode="chat")
    assert message is not None and "interactive login" in message


# --- GET /v1/models ---------------------------------------------------------------------------


@pytest.fixture
def api(db: None) -> SchemaClient:
    return SchemaClient()


def ids(response: object) -> list[str]:
    return [entry["id"] for entry in response.json()]  # type: ignore[attr-defined]


def test_any_role_reads_the_catalogue_a_page_at_a_time(alpha: TenantWorld) -> None:
    with tenant_scope(alpha.tenant):
        total = len(model_catalogue(tenant_id=alpha.tenant.pk))
    for who in ("owner", "admin", "member"):
        response = alpha.client(who).get("/v1/models")
        assert response.status_code == 200, response.content
        assert response["X-Total-Count"] == str(total)
        assert len(response.json()) == 50
    assert response.json()[0] == {
        "id": "local/extractive",
        "provider": "local",
        "mode": "chat",
        "context_window": None,
        "max_output_tokens": None,
        "input_cost_per_token": 0.0,
        "output_cost_per_token": 0.0,
        "has_credentials": True,
        "source": "local",
        "connection": None,
    }
    everything = ids(alpha.client().get("/v1/models", {"limit": 1000}))
    page = alpha.client().get("/v1/models", {"limit": 3, "offset": 1})
    assert ids(page) == everything[1:4]
    assert page["X-Total-Count"] == str(total)
    assert alpha.client().get("/v1/models", {"limit": 1001}).status_code == 422


def test_filters(alpha: TenantWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    client = alpha.client("member")
    embedding = client.get("/v1/models", {"mode": "embedding", "limit": 1000})
    assert {entry["mode"] for entry in embedding.json()} == {"embedding"}
    assert {"text-embedding-3-small", "local/minilm"} <= set(ids(embedding))
    assert int(embedding["X-Total-Count"]) == len(embedding.json())

    openai = client.get("/v1/models", {"provider": "openai", "mode": "chat", "limit": 1000}).json()
    assert {(entry["provider"], entry["mode"]) for entry in openai} == {("openai", "chat")}
    assert "gpt-4o-mini" in [entry["id"] for entry in openai]

    found = client.get("/v1/models", {"q": "GPT-4O-MINI", "limit": 1000})
    assert "gpt-4o-mini" in ids(found)
    assert all("gpt-4o-mini" in model_id.lower() for model_id in ids(found))

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    usable = client.get("/v1/models", {"has_credentials": "true", "limit": 1000}).json()
    assert all(entry["has_credentials"] for entry in usable)
    assert {"local/extractive", "local/minilm", "gpt-4o-mini", "ollama/llama3"} <= {entry["id"] for entry in usable}
    others = client.get("/v1/models", {"has_credentials": "false", "q": "claude", "limit": 1000}).json()
    assert others and not any(entry["has_credentials"] for entry in others)

    assert client.get("/v1/models", {"provider": "no-such-provider"}).json() == []


@pytest.mark.parametrize(
    ("query", "field"), [({"mode": "bogus"}, "mode"), ({"has_credentials": "maybe"}, "has_credentials")]
)
def test_bad_filters_are_422_with_a_detail(alpha: TenantWorld, query: dict[str, str], field: str) -> None:
    response = alpha.client().get("/v1/models", query)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(f"{field}: Must be")
    assert field in response.json()["errors"]


def test_a_widget_token_and_strangers_are_kept_out(alpha: TenantWorld) -> None:
    response = alpha.client("bot").get("/v1/models")
    assert response.status_code == 403
    assert "Bot tokens" in response.json()["detail"]
    assert api_client().get("/v1/models").status_code == 401
    assert api_client("nrag_live_not-a-token").get("/v1/models").status_code == 401


def test_the_answer_is_what_the_schema_documents(alpha: TenantWorld, api: SchemaClient) -> None:
    response = api.conforming(alpha.tokens["member"], "GET", "/v1/models", query={"limit": 1000})
    assert len(response.json()) == 1000
    found = api.conforming(alpha.tokens["member"], "GET", "/v1/models", query={"q": "alpha-chat"})
    assert [(entry["source"], entry["connection"]) for entry in found.json()] == [("connection", "alpha-vllm")]
    assert api.conforming(alpha.tokens["member"], "GET", "/v1/models", query={"mode": "x"}).status_code == 422


# --- The dashboard's model picker -------------------------------------------------------------


def test_the_picker_suggests_the_models_of_its_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    hostile = dataclasses.replace(model_catalogue()[0], id='acme/"><script>alert(1)</script>')
    monkeypatch.setattr(widgets, "model_catalogue", lambda: [*model_catalogue(), hostile])
    html = ModelPickerWidget(mode="chat").render("model", "gpt-4o-mini", attrs={"id": "id_model"})
    assert 'list="minirag-models-chat"' in html and 'value="gpt-4o-mini"' in html
    assert '<datalist id="minirag-models-chat">' in html
    assert '<option value="local/extractive"></option>' in html
    assert 'value="local/minilm"' not in html
    assert "<script>" not in html
    assert '<option value="acme/&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"></option>' in html
    embedding = ModelPickerWidget(mode="embedding").render("embedding_model", "", attrs={"id": "id_embedding_model"})
    assert '<option value="local/minilm"></option>' in embedding and "local/extractive" not in embedding
    # A second picker of the same mode shares the first one's list instead of repeating it.
    shared = ModelPickerWidget(mode="chat", include_list=False).render("rewrite_model", "", attrs={"id": "id_r"})
    assert 'list="minirag-models-chat"' in shared and "<datalist" not in shared


def test_the_picker_refuses_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match="mode must be one of chat, embedding"):
        ModelPickerWidget(mode="rerank")  # type: ignore[arg-type]
