"""Bot (widget) tokens: allowed origins (deny by default), CORS on the widget's routes only, and
changing a token's origins and limits."""

from __future__ import annotations

import pytest

from conftest import TenantWorld, api_client
from tenants.models import ApiToken
from tenants.tenancy import tenant_scope
from tenants.tests.factories import make_token

SHOP = "https://shop.example.com"


def bot_token(world: TenantWorld, origins: list[str]) -> str:
    return make_token(world.owner, name="site widget", bot_profile=world.bot, allowed_origins=origins)[1]


def ask(raw: str, world: TenantWorld, **headers: str):
    return api_client(raw, **headers).post(
        "/v1/chat", {"bot_profile_id": str(world.bot.pk), "message": "When does the office open?"}, format="json"
    )


# --- Origins ----------------------------------------------------------------------------------


def test_a_listed_origin_may_chat_and_others_are_refused_with_a_clear_detail(alpha: TenantWorld) -> None:
    raw = bot_token(alpha, ["https://Shop.Example.com/"])
    assert ask(raw, alpha, HTTP_ORIGIN=SHOP).status_code == 200
    assert ask(raw, alpha, HTTP_ORIGIN="HTTPS://SHOP.EXAMPLE.COM").status_code == 200
    for foreign in ("https://evil.example", "http://shop.example.com", "https://shop.example.com:8443", "null"):
        refused = ask(raw, alpha, HTTP_ORIGIN=foreign)
        assert refused.status_code == 403, foreign
        assert refused.json()["detail"] == (
            f"This bot token may not be used from {foreign}: that origin is not in the token's allowed_origins."
        )


def test_a_bot_token_without_origins_refuses_every_browser(alpha: TenantWorld) -> None:
    raw = bot_token(alpha, [])
    refused = ask(raw, alpha, HTTP_ORIGIN=SHOP)
    assert refused.status_code == 403
    assert "has no allowed origins" in refused.json()["detail"] and SHOP in refused.json()["detail"]


def test_requests_without_origin_are_server_to_server_and_allowed(alpha: TenantWorld) -> None:
    assert ask(bot_token(alpha, []), alpha).status_code == 200
    assert ask(bot_token(alpha, [SHOP]), alpha).status_code == 200


def test_any_origin_only_when_star_is_listed(alpha: TenantWorld) -> None:
    raw = bot_token(alpha, ["*"])
    assert ask(raw, alpha, HTTP_ORIGIN="https://anywhere.example").status_code == 200
    assert ask(raw, alpha, HTTP_ORIGIN="null").status_code == 200


def test_the_origin_is_checked_on_every_route_a_bot_token_reaches(alpha: TenantWorld) -> None:
    raw = bot_token(alpha, [SHOP])
    chat_id = ask(raw, alpha, HTTP_ORIGIN=SHOP).json()["chat_id"]
    for path in (f"/v1/chat/{chat_id}", f"/v1/chat/{chat_id}/messages"):
        assert api_client(raw, HTTP_ORIGIN=SHOP).get(path).status_code == 200
        assert api_client(raw, HTTP_ORIGIN="https://evil.example").get(path).status_code == 403


# --- CORS -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/chat", "/v1/chat/00000000-0000-0000-0000-000000000000/messages"])
def test_preflights_on_widget_routes_are_answered_without_a_token(db, client, path: str) -> None:
    response = client.options(
        path,
        HTTP_ORIGIN="https://any.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type, x-minirag-visitor",
    )
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "https://any.example"
    assert {"Authorization", "Content-Type", "X-MiniRAG-Visitor"} <= {
        header.strip() for header in response["Access-Control-Allow-Headers"].split(",")
    }
    assert "POST" in response["Access-Control-Allow-Methods"]
    assert "Origin" in response["Vary"]
    assert "Access-Control-Allow-Credentials" not in response


@pytest.mark.parametrize("path", ["/v1/bot-profiles", "/v1/api-tokens", "/v1/sources", "/v1/stats/overview"])
def test_other_routes_send_no_cors_headers_at_all(alpha: TenantWorld, client, path: str) -> None:
    preflight = client.options(path, HTTP_ORIGIN=SHOP, HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET")
    assert "Access-Control-Allow-Origin" not in preflight
    response = api_client(alpha.tokens["owner"], HTTP_ORIGIN=SHOP).get(path)
    assert response.status_code == 200 and "Access-Control-Allow-Origin" not in response


def test_answers_are_readable_only_by_an_allowed_origin_of_a_bot_token(alpha: TenantWorld) -> None:
    raw = bot_token(alpha, [SHOP])
    allowed = ask(raw, alpha, HTTP_ORIGIN=SHOP)
    assert allowed["Access-Control-Allow-Origin"] == SHOP
    assert "Retry-After" in allowed["Access-Control-Expose-Headers"]
    # A refusal is readable, so the widget can tell the visitor why.
    refused = ask(raw, alpha, HTTP_ORIGIN="https://evil.example")
    assert refused.status_code == 403 and refused["Access-Control-Allow-Origin"] == "https://evil.example"
    revoked = ask("nrag_live_not-a-real-token", alpha, HTTP_ORIGIN=SHOP)
    assert revoked.status_code == 401 and revoked["Access-Control-Allow-Origin"] == SHOP
    # Tenant tokens are never for browsers on other sites: no CORS, even on the chat route.
    tenant = ask(alpha.tokens["owner"], alpha, HTTP_ORIGIN=SHOP)
    assert tenant.status_code == 200 and "Access-Control-Allow-Origin" not in tenant


@pytest.mark.parametrize("action", ["handoff", "release", "typing", "events"])
def test_the_visitors_handoff_routes_answer_cors_per_token(alpha: TenantWorld, client, action: str) -> None:
    response = alpha.client("admin").patch(f"/v1/bot-profiles/{alpha.bot.pk}", {"handoff": "on_request"}, format="json")
    assert response.status_code == 200
    raw = bot_token(alpha, [SHOP])
    visitor = {"HTTP_X_MINIRAG_VISITOR": "visitor-1"}
    chat_id = ask(raw, alpha, HTTP_ORIGIN=SHOP, **visitor).json()["chat_id"]
    path = f"/v1/chat/{chat_id}/{action}"
    method = "GET" if action == "events" else "POST"
    preflight = client.options(
        path,
        HTTP_ORIGIN=SHOP,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, x-minirag-visitor, last-event-id",
    )
    assert preflight.status_code == 204 and preflight["Access-Control-Allow-Origin"] == SHOP
    assert method in preflight["Access-Control-Allow-Methods"]
    assert {"authorization", "x-minirag-visitor", "last-event-id"} <= {
        header.strip().lower() for header in preflight["Access-Control-Allow-Headers"].split(",")
    }

    def call(raw_token: str, origin: str):
        widget = api_client(raw_token, HTTP_ORIGIN=origin, **visitor)
        return widget.get(path) if method == "GET" else widget.post(path, {}, format="json")

    allowed = call(raw, SHOP)
    assert allowed.status_code < 300 and allowed["Access-Control-Allow-Origin"] == SHOP
    refused = call(raw, "https://evil.example")
    assert refused.status_code == 403 and refused["Access-Control-Allow-Origin"] == "https://evil.example"
    # The tenant's staff use these routes from the dashboard, never from another site: no CORS.
    staff = api_client(alpha.tokens["owner"], HTTP_ORIGIN=SHOP).post(f"/v1/chat/{chat_id}/takeover")
    assert staff.status_code == 200 and "Access-Control-Allow-Origin" not in staff


# --- Changing a bot token ---------------------------------------------------------------------


def test_admins_change_origins_and_limits_of_a_bot_token(alpha: TenantWorld) -> None:
    token_id = alpha.token_rows["bot"].pk
    response = alpha.client("admin").patch(
        f"/v1/api-tokens/{token_id}",
        {
            "name": "Shop widget",
            "allowed_origins": ["https://Shop.Example.com:443", "*"],
            "rate_limits": {"visitor_messages_per_minute": 3, "messages_per_day": 0},
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["name"] == "Shop widget"
    assert body["allowed_origins"] == ["*", SHOP]
    assert body["rate_limits"] == {
        "messages_per_minute": 120,
        "messages_per_day": 0,
        "visitor_messages_per_minute": 3,
        "visitor_messages_per_day": 200,
    }
    reset = alpha.client("admin").patch(
        f"/v1/api-tokens/{token_id}", {"rate_limits": {"visitor_messages_per_minute": None}}, format="json"
    )
    assert reset.json()["rate_limits"]["visitor_messages_per_minute"] == 10
    assert alpha.client("admin").get("/v1/api-tokens").json()[0].keys() >= {"rate_limits", "allowed_origins"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"allowed_origins": ["https://a.example/path"]}, "allowed_origins"),
        ({"allowed_origins": "https://a.example"}, "allowed_origins"),
        ({"rate_limits": {"per_hour": 5}}, "rate_limits"),
        ({"rate_limits": {"messages_per_minute": -1}}, "rate_limits"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_changes_are_422_and_change_nothing(alpha: TenantWorld, body: dict, field: str) -> None:
    token = alpha.token_rows["bot"]
    before = (token.name, token.allowed_origins)
    response = alpha.client("admin").patch(f"/v1/api-tokens/{token.pk}", body, format="json")
    assert response.status_code == 422
    assert field in response.json()["detail"]
    with tenant_scope(alpha.tenant):
        token.refresh_from_db()
    assert (token.name, token.allowed_origins) == before


def test_who_may_change_which_token(alpha: TenantWorld) -> None:
    bot_token_id = alpha.token_rows["bot"].pk
    member = alpha.client("member")
    assert member.patch(f"/v1/api-tokens/{bot_token_id}", {"name": "x"}, format="json").status_code == 404
    own = alpha.token_rows["member"].pk
    assert member.patch(f"/v1/api-tokens/{own}", {"name": "mine"}, format="json").json()["name"] == "mine"
    not_a_bot = member.patch(f"/v1/api-tokens/{own}", {"allowed_origins": [SHOP]}, format="json")
    assert not_a_bot.status_code == 422 and "Only bot tokens" in not_a_bot.json()["detail"]
    assert alpha.client("bot").patch(f"/v1/api-tokens/{own}", {"name": "x"}, format="json").status_code == 403
    alpha.client("admin").delete(f"/v1/api-tokens/{bot_token_id}")
    revoked = alpha.client("admin").patch(f"/v1/api-tokens/{bot_token_id}", {"name": "x"}, format="json")
    assert revoked.status_code == 409


def test_a_bot_tokens_raw_value_is_kept_encrypted_and_a_tenant_tokens_is_not(alpha: TenantWorld) -> None:
    with tenant_scope(alpha.tenant):
        bot = ApiToken.objects.get(pk=alpha.token_rows["bot"].pk)
        owner = ApiToken.objects.get(pk=alpha.token_rows["owner"].pk)
    assert bot.raw_token_ciphertext and alpha.tokens["bot"] not in bot.raw_token_ciphertext
    assert owner.raw_token_ciphertext == ""
