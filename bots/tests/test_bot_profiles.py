"""Bot profiles: the api-contract shape, defaults, validation and encrypted credentials."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test import override_settings

from bots.models import BotProfile
from bots.services import bot_profile_credentials
from conftest import TenantWorld
from minirag.crypto import reencrypt
from tenants.tenancy import tenant_scope, tenant_scope_disabled

pytestmark = pytest.mark.django_db

CONTRACT_KEYS = {
    "id",
    "tenant_id",
    "name",
    "description",
    "model",
    "embedding_model",
    "system_prompt",
    "temperature",
    "max_tokens",
    "has_credentials",
    "is_active",
    "created_at",
    "updated_at",
}
EXTENSION_KEYS = {
    "top_k",
    "similarity_threshold",
    "refusal_message",
    "chunk_size",
    "chunk_overlap",
    "history_turns",
    "rewrite_model",
    "fallback_models",
    "api_base",
    "api_version",
    "connection",
    "monthly_budget_usd",
    "widget",
    "handoff",  # talking to a person (inbox/)
    "office_hours",
}


def stored_ciphertext(bot_id: str) -> str:
    with tenant_scope_disabled("test: read the stored column raw"), connection.cursor() as cursor:
        cursor.execute("SELECT credentials_ciphertext FROM bots_botprofile WHERE id = %s", [bot_id])
        return cursor.fetchone()[0]


def test_create_with_defaults(alpha: TenantWorld) -> None:
    response = alpha.client("admin").post("/v1/bot-profiles", {"name": "Support"}, format="json")
    assert response.status_code == 201
    bot = response.json()
    assert set(bot) == CONTRACT_KEYS | EXTENSION_KEYS
    assert bot["name"] == "Support" and bot["description"] == ""
    # No provider key configured: the offline models are the defaults.
    assert (bot["model"], bot["embedding_model"]) == ("local/extractive", "local/minilm")
    assert bot["system_prompt"] == "You are a helpful assistant."
    assert (bot["temperature"], bot["max_tokens"]) == (0.7, 1024)
    assert (bot["top_k"], bot["chunk_size"], bot["chunk_overlap"], bot["history_turns"]) == (5, 512, 64, 10)
    assert bot["has_credentials"] is False and bot["is_active"] is True
    assert bot["tenant_id"] == str(alpha.tenant.pk)


def test_with_a_provider_key_the_default_model_follows_settings(alpha: TenantWorld) -> None:
    with override_settings(DEFAULT_CHAT_MODEL="gpt-4o-mini", DEFAULT_EMBEDDING_MODEL="text-embedding-3-small"):
        bot = alpha.client("admin").post("/v1/bot-profiles", {"name": "Cloud"}, format="json").json()
    assert (bot["model"], bot["embedding_model"]) == ("gpt-4o-mini", "text-embedding-3-small")


def test_full_create_then_get_patch_list_delete(alpha: TenantWorld) -> None:
    client = alpha.client("owner")
    body = {
        "name": "Sales",
        "description": "Pre-sales questions",
        "model": "anthropic/claude-3-5-haiku-latest",
        "embedding_model": "local/minilm",
        "system_prompt": "Be brief.",
        "temperature": 0.1,
        "max_tokens": 300,
        "top_k": 8,
        "similarity_threshold": 0.45,
        "refusal_message": "No idea.",
        "chunk_size": 800,
        "chunk_overlap": 100,
        "history_turns": 4,
    }
    created = client.post("/v1/bot-profiles", body, format="json").json()
    assert {key: created[key] for key in body} == body
    bot_id = created["id"]
    assert client.get(f"/v1/bot-profiles/{bot_id}").json() == created

    patched = client.patch(f"/v1/bot-profiles/{bot_id}", {"temperature": 1.5, "name": "Sales 2"}, format="json")
    assert patched.status_code == 200
    assert (patched.json()["temperature"], patched.json()["name"], patched.json()["top_k"]) == (1.5, "Sales 2", 8)

    assert client.delete(f"/v1/bot-profiles/{bot_id}").status_code == 204
    listing = client.get("/v1/bot-profiles").json()
    assert [bot["id"] for bot in listing][:1] == [bot_id]  # newest first, inactive included
    assert listing[0]["is_active"] is False
    reactivated = client.patch(f"/v1/bot-profiles/{bot_id}", {"is_active": True}, format="json")
    assert reactivated.json()["is_active"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "x", "temperature": 2.5}, "temperature"),
        ({"name": "x", "temperature": -0.1}, "temperature"),
        ({"name": "x", "temperature": "hot"}, "temperature"),
        ({"name": "x", "temperature": True}, "temperature"),
        ({"name": "x", "max_tokens": 0}, "max_tokens"),
        ({"name": "x", "max_tokens": 128_001}, "max_tokens"),
        ({"name": "x", "max_tokens": 1.5}, "max_tokens"),
        ({"name": "x", "top_k": 0}, "top_k"),
        ({"name": "x", "similarity_threshold": 1.1}, "similarity_threshold"),
        ({"name": "x", "chunk_size": 50}, "chunk_size"),
        ({"name": "x", "chunk_size": 200, "chunk_overlap": 100}, "chunk_overlap"),
        ({"name": "x", "credentials": "sk-123"}, "credentials"),
        ({"name": "x", "credentials": {"password": "x"}}, "credentials"),
        ({"name": "x", "credentials": {"api_key": ""}}, "credentials"),
        ({"name": 7}, "name"),
    ],
)
def test_create_validation_is_422_and_creates_nothing(alpha: TenantWorld, body: dict, field: str) -> None:
    response = alpha.client("admin").post("/v1/bot-profiles", body, format="json")
    assert response.status_code == 422, response.content
    assert field in response.json()["detail"]
    with tenant_scope(alpha.tenant):
        assert BotProfile.objects.count() == 1


def test_a_rejected_patch_changes_nothing(alpha: TenantWorld) -> None:
    client = alpha.client("admin")
    response = client.patch(f"/v1/bot-profiles/{alpha.bot.pk}", {"name": "new", "chunk_overlap": 300}, format="json")
    assert response.status_code == 422
    assert client.get(f"/v1/bot-profiles/{alpha.bot.pk}").json()["name"] == "alpha bot"


def test_unknown_and_malformed_bot_ids_are_404(alpha: TenantWorld) -> None:
    client = alpha.client("owner")
    for path in (f"/v1/bot-profiles/{uuid.uuid4()}", "/v1/bot-profiles/xyz"):
        assert client.get(path).status_code == 404
        assert client.patch(path, {"name": "x"}, format="json").status_code == 404
        assert client.delete(path).status_code == 404
    assert client.get(f"/v1/bot-profiles/{uuid.uuid4()}").json() == {"detail": "Bot profile not found."}


def test_credentials_are_encrypted_never_returned_and_clearable(alpha: TenantWorld) -> None:
    client = alpha.client("owner")
    secret = "sk-test-" + "a" * 40
    created = client.post("/v1/bot-profiles", {"name": "BYOK", "credentials": {"api_key": secret}}, format="json")
    assert created.status_code == 201
    assert created.json()["has_credentials"] is True
    assert secret not in created.content.decode()
    bot_id = created.json()["id"]

    ciphertext = stored_ciphertext(bot_id)
    assert ciphertext and secret not in ciphertext
    with tenant_scope(alpha.tenant):
        assert bot_profile_credentials(BotProfile.objects.get(pk=bot_id)) == {"api_key": secret}

    for path in ("/v1/bot-profiles", f"/v1/bot-profiles/{bot_id}"):
        assert secret not in client.get(path).content.decode()

    unchanged = client.patch(f"/v1/bot-profiles/{bot_id}", {"name": "BYOK 2"}, format="json").json()
    assert unchanged["has_credentials"] is True
    assert (
        client.patch(f"/v1/bot-profiles/{bot_id}", {"credentials": {}}, format="json").json()["has_credentials"]
        is False
    )
    client.patch(f"/v1/bot-profiles/{bot_id}", {"credentials": {"api_key": secret}}, format="json")
    assert (
        client.patch(f"/v1/bot-profiles/{bot_id}", {"credentials": None}, format="json").json()["has_credentials"]
        is False
    )
    assert stored_ciphertext(bot_id) == ""


def test_credentials_survive_a_key_rotation(alpha: TenantWorld, settings) -> None:
    created = (
        alpha.client("owner")
        .post("/v1/bot-profiles", {"name": "Rotate", "credentials": {"api_key": "sk-old-key"}}, format="json")
        .json()
    )
    old_keys = list(settings.ENCRYPTION_KEYS)
    new_key = "Qy2Jt5zJ0YpN1C3mM8sF6rV9wX2bH4kL7nP0qS3uT5w="
    settings.ENCRYPTION_KEYS = [new_key, *old_keys]  # new key first; old ones still decrypt
    with tenant_scope(alpha.tenant):
        bot = BotProfile.objects.get(pk=created["id"])
        assert bot_profile_credentials(bot) == {"api_key": "sk-old-key"}
        bot.credentials_ciphertext = reencrypt(bot.credentials_ciphertext)
        bot.save()
    settings.ENCRYPTION_KEYS = [new_key]  # the old keys are gone
    with tenant_scope(alpha.tenant):
        assert bot_profile_credentials(BotProfile.objects.get(pk=created["id"])) == {"api_key": "sk-old-key"}
