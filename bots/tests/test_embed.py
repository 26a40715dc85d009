"""`GET /v1/bot-profiles/{id}/embed`: the widget snippet, ready to paste."""

from __future__ import annotations

import html
import re

from django.test import override_settings

from conftest import TenantWorld
from tenants.tenancy import tenant_scope
from tenants.tests.factories import make_token


def embed(world: TenantWorld, role: str = "admin", query: str = ""):
    return world.client(role).get(f"/v1/bot-profiles/{world.bot.pk}/embed{query}")


def attributes(snippet: str) -> dict[str, str]:
    return {name: html.unescape(value) for name, value in re.findall(r'([\w-]+)="([^"]*)"', snippet)}


def test_the_snippet_carries_the_bot_its_token_and_this_servers_urls(alpha: TenantWorld) -> None:
    row, raw = make_token(alpha.owner, name="site", bot_profile=alpha.bot, allowed_origins=["https://shop.example.com"])
    response = embed(alpha)
    assert response.status_code == 200
    body = response.json()
    assert body["bot_profile_id"] == str(alpha.bot.pk)
    assert body["api_url"] == "http://testserver"
    assert body["script_url"] == "http://testserver/dashboard/widget/minirag-widget.js"
    assert body["token"]["id"] == str(row.pk) and body["token"]["allowed_origins"] == ["https://shop.example.com"]
    assert body["warnings"] == []
    script = attributes(body["snippet"])
    assert body["snippet"].startswith("<script ") and body["snippet"].endswith("></script>")
    assert script == {
        "src": body["script_url"],
        "data-bot-id": str(alpha.bot.pk),
        "data-api-url": "http://testserver",
        "data-api-token": raw,
    }  # no look in the snippet: the widget reads the bot's stored appearance
    element = attributes(body["element_snippet"])
    assert "<minirag-widget" in body["element_snippet"] and element["api-token"] == raw


def test_a_token_without_origins_comes_with_a_warning_and_a_fix(alpha: TenantWorld) -> None:
    # The world's own bot token lists no origins: browsers would be refused.
    body = embed(alpha).json()
    assert body["token"]["id"] == str(alpha.token_rows["bot"].pk)
    assert attributes(body["snippet"])["data-api-token"] == alpha.tokens["bot"]
    assert any("no allowed origins" in warning and "PATCH /v1/api-tokens/" in warning for warning in body["warnings"])


def test_a_chosen_token_and_a_bad_choice(alpha: TenantWorld) -> None:
    row, _raw = make_token(alpha.owner, name="star", bot_profile=alpha.bot, allowed_origins=["*"])
    body = embed(alpha, query=f"?token_id={alpha.token_rows['bot'].pk}").json()
    assert attributes(body["snippet"])["data-api-token"] == alpha.tokens["bot"]
    star = embed(alpha, query=f"?token_id={row.pk}").json()
    assert any("any website" in warning for warning in star["warnings"])
    for bad in ("nope", str(alpha.token_rows["owner"].pk)):
        response = embed(alpha, query=f"?token_id={bad}")
        assert response.status_code == 422 and "token_id" in response.json()["detail"]


def test_without_a_bot_token_the_snippet_has_a_placeholder_and_says_how_to_make_one(alpha: TenantWorld) -> None:
    alpha.client("admin").delete(f"/v1/api-tokens/{alpha.token_rows['bot'].pk}")
    body = embed(alpha).json()
    assert body["token"] is None
    assert attributes(body["snippet"])["data-api-token"] == "YOUR_BOT_TOKEN"
    assert "POST /v1/api-tokens" in body["warnings"][0] and str(alpha.bot.pk) in body["warnings"][0]


def test_the_public_url_setting_wins_and_the_name_stays_out_of_the_snippet(alpha: TenantWorld) -> None:
    alpha.client("admin").patch(f"/v1/bot-profiles/{alpha.bot.pk}", {"name": 'Help "desk" <b>&</b>'}, format="json")
    with override_settings(PUBLIC_URL="https://rag.example.com"):
        body = embed(alpha).json()
    assert body["script_url"] == "https://rag.example.com/dashboard/widget/minirag-widget.js"
    assert "<b>" not in body["snippet"] and "desk" not in body["snippet"]  # the name is not in the snippet at all


def test_only_owners_and_admins_see_the_snippet(alpha: TenantWorld, beta: TenantWorld) -> None:
    assert embed(alpha, "owner").status_code == 200
    assert embed(alpha, "member").status_code == 403
    assert embed(alpha, "bot").status_code == 403
    assert beta.client("admin").get(f"/v1/bot-profiles/{alpha.bot.pk}/embed").status_code == 404


def test_a_token_whose_raw_value_is_not_kept_gets_a_placeholder(alpha: TenantWorld) -> None:
    row = alpha.token_rows["bot"]
    with tenant_scope(alpha.tenant):
        row.raw_token_ciphertext = ""
        row.save(update_fields=["raw_token_ciphertext"])
    body = embed(alpha).json()
    assert attributes(body["snippet"])["data-api-token"] == "YOUR_BOT_TOKEN"
    assert any("is not kept" in warning for warning in body["warnings"])
