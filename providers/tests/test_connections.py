"""Named connections: a model server the platform's operators set up once (its address, key, headers
and price) and grant to tenants, whose bots pick it by name without ever seeing the key. Runs against
the loopback fake provider, through LiteLLM and the egress guard."""

from __future__ import annotations

import io
import re
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from chat.models import UsageEvent
from chat.tests.conftest import ask
from conftest import TenantWorld
from minirag.tests.test_dashboard import admin_url, form_data, operator_client, tenant_client  # noqa: F401
from providers.endpoints import encrypt_credentials
from providers.models import Connection, ConnectionGrant
from providers.selectors import connection_endpoint
from providers.tests.fake_provider import FakeProvider
from providers.tests.test_bot_endpoints import QUESTION
from tenants.tenancy import tenant_scope

pytestmark = pytest.mark.django_db
CONNECTION_KEY = "sk-company-vllm-key-never-shown"
PROMPT_PRICE, COMPLETION_PRICE = Decimal("2"), Decimal("8")  # USD per million tokens


@pytest.fixture
def loopback_allowed(settings: Any) -> None:
    settings.ALLOW_PRIVATE_NETWORKS = False
    settings.MODEL_ALLOWED_NETWORKS = ["127.0.0.1/32"]


def operator_saves(client: Client, fake: FakeProvider | None, url: str | None = None, **values: Any) -> Any:
    url = url or admin_url(Connection, "add")
    fields = {
        "name": "company-llm",
        "description": "Our vLLM",
        "api_base": f"{fake.url}/v1" if fake else "",
        "api_key": CONNECTION_KEY,
        "headers": "X-Org: acme",
        "chat_models": "openai/fake-chat",
        "embedding_models": "openai/fake-embed",
        "prompt_price_per_1m": str(PROMPT_PRICE),
        "completion_price_per_1m": str(COMPLETION_PRICE),
        "is_active": "on",
    }
    return client.post(url, form_data(client, url, **{**fields, **values}))


def pick(world: TenantWorld, **fields: Any) -> Any:
    return world.client("admin").patch(f"/v1/bot-profiles/{world.bot.pk}", fields, format="json")


def test_a_tenant_bot_answers_through_an_operators_connection_without_seeing_its_key(
    alpha: TenantWorld,
    beta: TenantWorld,
    fake_provider: FakeProvider,
    loopback_allowed: None,
    operator_client: Client,  # noqa: F811
) -> None:
    saved = operator_saves(operator_client, fake_provider, granted_to=[str(alpha.tenant.pk)])
    assert saved.status_code == 302, saved.context and saved.context["adminform"].form.errors
    connection = Connection.objects.get(name="company-llm")
    assert CONNECTION_KEY not in connection.credentials_ciphertext

    # The tenant finds its models in the catalogue, at the connection's price, and picks it by name.
    listed = alpha.client("member").get("/v1/models", {"q": "fake-chat"}).json()
    assert [(e["id"], e["connection"], e["has_credentials"]) for e in listed] == [
        ("openai/fake-chat", "company-llm", True)
    ]
    assert listed[0]["input_cost_per_token"] == pytest.approx(2e-6)
    shown = pick(alpha, connection="company-llm", model="openai/fake-chat")
    assert shown.status_code == 200, shown.content
    body = shown.json()
    assert body["connection"] == "company-llm" and body["api_base"] == "" and body["has_credentials"] is False
    for view in (str(body), alpha.client("member").get("/v1/models", {"q": "fake"}).content.decode()):
        assert CONNECTION_KEY not in view and fake_provider.url not in view and "acme" not in view

    fake_provider.reply = "Refunds take five working days, says the company's model."
    answer = ask(alpha, QUESTION).json()
    assert answer["message"]["content"] == fake_provider.reply
    call = fake_provider.requests[-1]
    assert call.path == "/v1/chat/completions" and call.model == "fake-chat"
    assert call.headers["authorization"] == f"Bearer {CONNECTION_KEY}" and call.headers["x-org"] == "acme"
    with tenant_scope(alpha.tenant):
        usage = UsageEvent.objects.filter(model="openai/fake-chat").get()
    expected = (PROMPT_PRICE * usage.prompt_tokens + COMPLETION_PRICE * usage.completion_tokens) / 1_000_000
    assert usage.cost_usd == expected.quantize(Decimal("0.00000001")) and usage.cost_usd > 0

    # Another tenant can neither see nor pick it.
    assert "company-llm" not in beta.client("admin").get("/v1/models", {"q": "fake-chat"}).content.decode()
    refused = pick(beta, connection="company-llm", model="openai/fake-chat")
    assert refused.status_code == 422
    assert refused.json()["detail"] == 'connection: No connection named "company-llm" is available to this workspace.'
    assert pick(beta, connection="alpha-vllm").status_code == 422  # the fixture's grant to alpha


def test_a_withdrawn_connection_fails_the_bots_calls_readably_and_the_bot_can_leave_it(
    alpha: TenantWorld, fake_provider: FakeProvider, loopback_allowed: None
) -> None:
    connection = Connection.objects.create(
        name="shared-llm",
        api_base=f"{fake_provider.url}/v1",
        credentials_ciphertext=encrypt_credentials({"api_key": "sk-shared"}),
        chat_models=["openai/fake-chat"],
        for_every_tenant=True,
    )
    assert pick(alpha, connection="shared-llm", model="openai/fake-chat").status_code == 200
    assert ask(alpha, QUESTION).status_code == 200
    requests_before = len(fake_provider.requests)

    Connection.objects.filter(pk=connection.pk).update(is_active=False)
    failed = ask(alpha, QUESTION)
    assert failed.status_code in (502, 503), failed.content
    assert "The connection shared-llm is no longer available to this workspace" in failed.json()["detail"]
    assert len(fake_provider.requests) == requests_before  # nothing was sent
    assert pick(alpha, connection=None, model="local/extractive").status_code == 200
    assert ask(alpha, QUESTION).status_code == 200


def test_a_connection_must_serve_one_of_the_bots_models(alpha: TenantWorld) -> None:
    refused = pick(alpha, connection="alpha-vllm")  # the bot stays on the offline models
    assert refused.status_code == 422
    assert "serves none of this bot's models; it serves hosted_vllm/alpha-chat" in refused.json()["detail"]
    assert pick(alpha, connection="no-such-thing").status_code == 422


def test_the_operators_form_checks_models_and_egress_and_keeps_the_key(
    alpha: TenantWorld,
    fake_provider: FakeProvider,
    settings: Any,
    operator_client: Client,  # noqa: F811
) -> None:
    settings.ALLOW_PRIVATE_NETWORKS = False
    settings.MODEL_ALLOWED_NETWORKS = []
    private = operator_saves(operator_client, fake_provider)
    assert private.status_code == 200
    errors = private.context["adminform"].form.errors
    assert "MINIRAG_MODEL_ALLOWED_NETWORKS" in " ".join(errors["chat_models"])
    unroutable = operator_saves(operator_client, None, chat_models="gpt4o-mini", embedding_models="")
    assert 'Did you mean "gpt-4o-mini"' in " ".join(unroutable.context["adminform"].form.errors["chat_models"])
    assert not Connection.objects.filter(name="company-llm").exists()

    settings.MODEL_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    assert operator_saves(operator_client, fake_provider, for_every_tenant="on").status_code == 302
    connection = Connection.objects.get(name="company-llm")
    change = admin_url(Connection, "change", connection.pk)
    page = operator_client.get(change).content.decode()
    assert "Stored (encrypted)" in page and CONNECTION_KEY not in page
    # Saving without typing the key again keeps it; a new price applies.
    assert (
        operator_saves(operator_client, fake_provider, url=change, api_key="", prompt_price_per_1m="3").status_code
        == 302
    )
    connection.refresh_from_db()
    assert connection.prompt_price_per_1m == 3
    assert connection_endpoint(connection, tenant_id=alpha.tenant.pk).api_key == CONNECTION_KEY


def test_connections_are_the_operators_pages_only(alpha: TenantWorld) -> None:
    client = tenant_client(alpha)
    assert client.get(admin_url(Connection, "changelist")).status_code == 403
    assert client.get(admin_url(Connection, "change", alpha.connection.pk)).status_code in (403, 404)
    bot_page = client.get(admin_url(alpha.bot.__class__, "change", alpha.bot.pk)).content.decode()
    assert "alpha-vllm" in bot_page and "beta-vllm" not in bot_page  # the tenant's choices only
    with tenant_scope(alpha.tenant):
        assert ConnectionGrant.objects.count() == 1


def test_a_deployment_sets_up_a_connection_from_a_script(
    alpha: TenantWorld, fake_provider: FakeProvider, loopback_allowed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VLLM_KEY", CONNECTION_KEY)
    base = ["company-llm", "--api-base", f"{fake_provider.url}/v1", "--chat-model", "openai/fake-chat"]
    out = io.StringIO()
    call_command("connection", *base, "--api-key-env", "VLLM_KEY", "--header", "X-Org: acme", stdout=out)
    assert out.getvalue().strip() == "Created connection company-llm (active): openai/fake-chat"
    connection = Connection.objects.get(name="company-llm")
    assert not connection.for_every_tenant and CONNECTION_KEY not in connection.credentials_ciphertext

    # Run again (as on every start), granting it and pricing it: the key and headers stay.
    call_command("connection", "company-llm", "--grant", "alpha", "--prompt-price", "2", stdout=io.StringIO())
    connection.refresh_from_db()
    with tenant_scope(alpha.tenant):
        endpoint = connection_endpoint(connection, tenant_id=alpha.tenant.pk)
    assert (endpoint.api_key, endpoint.headers, endpoint.unavailable) == (CONNECTION_KEY, {"X-Org": "acme"}, None)
    assert connection.prompt_price_per_1m == PROMPT_PRICE
    assert pick(alpha, connection="company-llm", model="openai/fake-chat").status_code == 200

    for arguments, message in (
        (["--api-key-env", "NO_SUCH_VARIABLE"], "NO_SUCH_VARIABLE is not set"),
        (["--grant", "nobody"], "no tenant with the slug nobody"),
        (["--chat-model", "gpt4o-mini"], 'Did you mean "gpt-4o-mini"'),
        (["--header", "no colon"], "write each header as Name: value"),
    ):
        with pytest.raises(CommandError, match=re.escape(message)):
            call_command("connection", "company-llm", *arguments, stdout=io.StringIO())
    call_command("connection", "company-llm", "--inactive", stdout=io.StringIO())
    with tenant_scope(alpha.tenant):
        assert connection_endpoint(connection, tenant_id=alpha.tenant.pk).unavailable
