"""`POST /v1/bot-profiles/{id}/test-model`, and its button in the dashboard: one tiny completion from
each of the bot's chat models and one tiny embedding, through the bot's own endpoint, key and
headers; ok or failed, latency, and a one-line cause that never carries the provider's body."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from conftest import TenantWorld
from minirag.tests.test_dashboard import login
from minirag.tests.test_model_egress import assert_no_leak
from providers.tests.fake_provider import FakeProvider
from providers.tests.test_bot_endpoints import configure

SECRET_BODY = {"error": {"message": "Incorrect API key provided: INTERNAL-TRACE /srv/app.py", "type": "auth"}}


@pytest.fixture
def remote_bot(alpha: TenantWorld, fake_provider: FakeProvider, settings: Any) -> TenantWorld:
    settings.MODEL_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    configure(
        alpha,
        model="openai/fake-chat",
        fallback_models=["openai/backup"],
        embedding_model="openai/fake-embed",
        api_base=f"{fake_provider.url}/v1",
        credentials={"api_key": "sk-own-key", "headers": {"X-Team": "support"}},
    )
    fake_provider.reset()
    return alpha


def request_model_test(world: TenantWorld, who: str = "admin") -> Any:
    return world.client(who).post(f"/v1/bot-profiles/{world.bot.pk}/test-model")


@pytest.mark.django_db
def test_every_model_of_the_bot_is_tried_once_with_its_endpoint(
    remote_bot: TenantWorld, fake_provider: FakeProvider
) -> None:
    response = request_model_test(remote_bot)
    assert response.status_code == 200, response.content
    report = response.json()
    assert report["status"] == "ok" and report["detail"] is None
    assert [(c["purpose"], c["model"], c["status"]) for c in report["checks"]] == [
        ("chat", "openai/fake-chat", "ok"),
        ("fallback", "openai/backup", "ok"),
        ("embedding", "openai/fake-embed", "ok"),
    ]
    assert report["checks"][-1]["dimensions"] == fake_provider.dimensions
    assert all(check["latency_ms"] >= 0 and check["detail"] is None for check in report["checks"])
    assert [call.model for call in fake_provider.requests] == ["fake-chat", "backup", "fake-embed"]
    assert all(call.headers["x-team"] == "support" for call in fake_provider.requests)


@pytest.mark.django_db
def test_a_failure_is_named_in_one_line_without_the_providers_body(
    remote_bot: TenantWorld, fake_provider: FakeProvider
) -> None:
    fake_provider.fail_next(401, path="chat", body=SECRET_BODY)
    # (LiteLLM's OpenAI embeddings retry twice whatever they are told: every attempt fails.)
    fake_provider.fail_next(503, path="embeddings", times=3)
    report = request_model_test(remote_bot).json()
    assert report["status"] == "failed"
    chat, fallback, embedding = report["checks"]
    assert chat["status"] == "failed" and "refused the API key" in chat["detail"]
    assert report["detail"] == chat["detail"]
    assert fallback["status"] == "ok"
    assert embedding["status"] == "failed" and "unavailable" in embedding["detail"]
    assert_no_leak(str(report))
    assert "INTERNAL-TRACE" not in str(report)


@pytest.mark.django_db
def test_only_admins_may_test_and_the_test_is_rate_limited(
    alpha: TenantWorld, beta: TenantWorld, settings: Any
) -> None:
    assert request_model_test(alpha, "member").status_code == 403
    assert request_model_test(alpha, "bot").status_code == 403
    assert beta.client("admin").post(f"/v1/bot-profiles/{alpha.bot.pk}/test-model").status_code == 404
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "model_test": "1/minute"}
    first = request_model_test(alpha)  # the fixture's bot: the offline models
    assert first.status_code == 200 and first.json()["status"] == "ok"
    refused = request_model_test(alpha)
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "Too many model tests" in refused.json()["detail"]


@pytest.mark.django_db
def test_the_dashboard_button_runs_the_same_test(remote_bot: TenantWorld, fake_provider: FakeProvider) -> None:
    client = Client()
    login(client, remote_bot.admin.email, remote_bot.password)
    url = f"/dashboard/bots/botprofile/{remote_bot.bot.pk}/test-model/"
    page = client.get(url)
    assert page.status_code == 200 and not fake_provider.requests  # a GET only shows the button
    assert url.encode() in client.get(f"/dashboard/bots/botprofile/{remote_bot.bot.pk}/change/").content
    fake_provider.fail_next(429, path="embeddings", times=5)
    tested = client.post(url)
    html = tested.content.decode()
    assert tested.status_code == 200 and 'data-verdict="failed"' in html
    assert "openai/fake-chat" in html and "is limiting requests" in html
