"""The api-contract.md shapes of the tenants, auth, users and api-tokens routes, and their
answers to bad input."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from conftest import TenantWorld, api_client
from tenants.models import ApiToken, Tenant, User
from tenants.tenancy import tenant_scope, tenant_scope_disabled

pytestmark = pytest.mark.django_db

TENANT_KEYS = {"id", "name", "slug", "is_active", "plan"}
USER_KEYS = {"id", "tenant_id", "email", "display_name", "role", "is_active"}
TOKEN_KEYS = {
    "id",
    "tenant_id",
    "name",
    "token_prefix",
    "is_active",
    "expires_at",
    "last_used_at",
    "created_at",
    "bot_profile_id",
    "allowed_origins",
}


def bootstrap(**overrides: object):
    body = {
        "tenant_name": "Acme Corp",
        "tenant_slug": "acme",
        "owner_email": "Owner@Acme.test",
        "owner_password": "s3cret-password",
        "owner_display_name": "Ada",
    }
    body.update(overrides)
    body = {key: value for key, value in body.items() if value is not None}
    return api_client().post("/v1/tenants", body, format="json")


# --- POST /v1/tenants -------------------------------------------------------------------------


def test_bootstrap_creates_tenant_owner_and_token(db) -> None:
    response = bootstrap()
    assert response.status_code == 201
    body = response.json()
    assert TENANT_KEYS <= set(body["tenant"])
    assert body["tenant"] | {"id": None} == {
        "id": None,
        "name": "Acme Corp",
        "slug": "acme",
        "is_active": True,
        "plan": "free",
        "members_see_all_chats": True,  # an extension: members read every chat by default
    }
    assert body["api_token"].startswith("nrag_live_")
    assert body["token_prefix"] == body["api_token"][:18]
    assert body["user"]["role"] == "owner" and body["user"]["email"] == "owner@acme.test"
    me = api_client(body["api_token"]).get("/v1/auth/me").json()
    assert me["user"]["display_name"] == "Ada"
    assert me["tenant"]["id"] == body["tenant"]["id"]
    login = api_client().post(
        "/v1/auth/login", {"email": "owner@acme.test", "password": "s3cret-password"}, format="json"
    )
    assert login.status_code == 200


def test_a_taken_slug_is_409_and_nothing_is_created(db) -> None:
    assert bootstrap().status_code == 201
    response = bootstrap(owner_email="other@acme.test")
    assert response.status_code == 409
    assert "slug" in response.json()["detail"]
    with tenant_scope_disabled("test: count"):
        assert User.objects.filter(email="other@acme.test").count() == 0
    assert Tenant.objects.count() == 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"tenant_slug": "Not A Slug"}, "tenant_slug"),
        ({"tenant_slug": "a" * 101}, "tenant_slug"),
        ({"tenant_slug": None}, "tenant_slug"),
        ({"tenant_name": ""}, "tenant_name"),
        ({"tenant_name": 42}, "tenant_name"),
        ({"owner_email": "not-an-email"}, "owner_email"),
        ({"owner_password": "short"}, "owner_password"),
        ({"owner_password": "x" * 129}, "owner_password"),
        ({"owner_password": 12345678}, "owner_password"),
    ],
)
def test_bootstrap_validation_is_422_with_a_readable_detail(db, overrides: dict, field: str) -> None:
    response = bootstrap(**overrides)
    assert response.status_code == 422
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"].startswith(field)
    assert field in body["errors"]
    assert Tenant.objects.count() == 0


@pytest.mark.parametrize("payload", [[], "text", 3, None])
def test_a_body_that_is_not_an_object_is_422(db, payload: object) -> None:
    response = api_client().post("/v1/tenants", payload, format="json")
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], str)


def test_malformed_json_is_400_and_oversized_bodies_are_413(db) -> None:
    client = api_client()
    response = client.post("/v1/tenants", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error")
    response = client.post("/v1/tenants", b"\xff\xfe{}", content_type="application/json")
    assert response.status_code == 400
    response = client.post("/v1/tenants", '{"tenant_name": NaN}', content_type="application/json")
    assert response.status_code == 400
    with override_settings(MAX_JSON_BODY_BYTES=1000):
        huge = '{"tenant_name": "' + "x" * 5000 + '"}'
        response = client.post("/v1/tenants", huge, content_type="application/json")
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]


def test_signup_can_be_closed(db) -> None:
    with override_settings(ALLOW_SIGNUP=False):
        response = bootstrap()
    assert response.status_code == 403
    assert "closed" in response.json()["detail"]
    assert Tenant.objects.count() == 0


def test_signup_and_login_are_throttled_per_client_with_retry_after(db) -> None:
    # Client addresses unique to this test keep it independent of earlier requests' counts.
    rates = {"signup": "2/minute", "login": "3/minute"}
    with override_settings(THROTTLE_RATES=rates):
        client = api_client(REMOTE_ADDR="10.9.9.9")
        codes = [client.post("/v1/tenants", {}, format="json").status_code for _ in range(3)]
        assert codes == [422, 422, 429]
        response = client.post("/v1/tenants", {}, format="json")
        assert int(response["Retry-After"]) > 0
        assert "throttled" in response.json()["detail"].lower()
        assert api_client(REMOTE_ADDR="10.9.9.10").post("/v1/tenants", {}, format="json").status_code == 422

        login = {"email": "x@example.com", "password": "whatever-pass"}
        client = api_client(REMOTE_ADDR="10.8.8.8")
        codes = [client.post("/v1/auth/login", login, format="json").status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]


# --- Tenants and auth reads -------------------------------------------------------------------


def test_tenants_me_and_auth_me_shapes(alpha: TenantWorld) -> None:
    tenant = alpha.client("member").get("/v1/tenants/me").json()
    assert set(tenant) == TENANT_KEYS | {"members_see_all_chats", "budget"}  # extensions
    assert tenant["id"] == str(alpha.tenant.pk)
    assert set(tenant["budget"]) == {"monthly_budget_usd", "spent_usd", "forecast_usd", "month", "resets_at"}
    me = alpha.client("member").get("/v1/auth/me").json()
    assert set(me) == {"user", "tenant"}
    assert USER_KEYS <= set(me["user"])
    assert me["user"]["tenant_id"] == str(alpha.tenant.pk) and me["user"]["role"] == "member"


def test_login_shape_and_validation(alpha: TenantWorld) -> None:
    response = api_client().post("/v1/auth/login", {"email": alpha.owner.email}, format="json")
    assert response.status_code == 422
    assert "password" in response.json()["errors"]
    body = (
        api_client()
        .post("/v1/auth/login", {"email": alpha.owner.email, "password": alpha.password}, format="json")
        .json()
    )
    assert {"access_token", "token_type", "user", "tenant"} <= set(body)
    assert "." in body["access_token"]


# --- Users ------------------------------------------------------------------------------------


def test_user_create_get_patch_delete_shapes(alpha: TenantWorld) -> None:
    client = alpha.client("admin")
    created = client.post(
        "/v1/users",
        {"email": "New@Alpha.example", "password": "long-password", "display_name": "Neo"},
        format="json",
    )
    assert created.status_code == 201
    user = created.json()
    assert USER_KEYS <= set(user)
    assert "password" not in user
    assert user["email"] == "new@alpha.example" and user["tenant_id"] == str(alpha.tenant.pk)
    assert user["role"] == "member" and user["is_active"] is True
    assert client.get(f"/v1/users/{user['id']}").json()["email"] == "new@alpha.example"
    patched = client.patch(f"/v1/users/{user['id']}", {"role": "admin", "display_name": "Neo 2"}, format="json")
    assert patched.status_code == 200
    assert (patched.json()["role"], patched.json()["display_name"]) == ("admin", "Neo 2")
    assert client.delete(f"/v1/users/{user['id']}").status_code == 204
    assert client.get(f"/v1/users/{user['id']}").json()["is_active"] is False
    assert client.put(f"/v1/users/{user['id']}", {}, format="json").status_code == 405


@pytest.mark.parametrize(
    "body",
    [
        {"email": "a@alpha.example", "password": "short"},
        {"email": "bad", "password": "long-password"},
        {"email": "a@alpha.example", "password": "long-password", "role": "superuser"},
        {"password": "long-password"},
    ],
)
def test_user_create_validation(alpha: TenantWorld, body: dict) -> None:
    response = alpha.client("owner").post("/v1/users", body, format="json")
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], str)


def test_unknown_and_malformed_ids_are_404(alpha: TenantWorld) -> None:
    for path in (f"/v1/users/{uuid.uuid4()}", "/v1/users/not-a-uuid", f"/v1/api-tokens/{uuid.uuid4()}"):
        response = alpha.client("owner").get(path)
        assert response.status_code == 404
        assert response.json()["detail"].endswith("not found.")
    assert alpha.client("owner").delete("/v1/api-tokens/123").status_code == 404


# --- API tokens -------------------------------------------------------------------------------


def test_api_token_create_list_delete_shapes(alpha: TenantWorld) -> None:
    client = alpha.client("owner")
    response = client.post(
        "/v1/api-tokens",
        {
            "name": "widget",
            "bot_profile_id": str(alpha.bot.pk),
            "allowed_origins": ["https://a.example:443"],
            "expires_at": "2099-01-01T00:00:00Z",
        },
        format="json",
    )
    assert response.status_code == 201
    token = response.json()
    assert TOKEN_KEYS | {"raw_token"} <= set(token)
    assert token["bot_profile_id"] == str(alpha.bot.pk)
    assert token["allowed_origins"] == ["https://a.example"]
    assert token["expires_at"] == "2099-01-01T00:00:00Z"
    assert token["tenant_id"] == str(alpha.tenant.pk)

    listing = client.get("/v1/api-tokens")
    assert listing.status_code == 200
    assert listing["X-Total-Count"] == "5"
    assert listing.json()[0]["id"] == token["id"]  # newest first
    assert all(TOKEN_KEYS <= set(row) and "raw_token" not in row for row in listing.json())

    assert client.delete(f"/v1/api-tokens/{token['id']}").status_code == 204
    assert client.delete(f"/v1/api-tokens/{token['id']}").status_code == 204  # idempotent
    revoked = client.get(f"/v1/api-tokens/{token['id']}").json()
    assert revoked["is_active"] is False and revoked["revoked_at"] is not None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": "x", "bot_profile_id": "nope"}, "bot_profile_id"),
        ({"name": "x", "bot_profile_id": str(uuid.uuid4())}, "bot_profile_id"),
        ({"name": "x", "allowed_origins": "https://a.example"}, "allowed_origins"),
        ({"name": "x", "allowed_origins": ["https://a.example"]}, "allowed_origins"),
        ({"name": "x", "expires_at": "tomorrow"}, "expires_at"),
    ],
)
def test_api_token_create_validation(alpha: TenantWorld, body: dict, field: str) -> None:
    response = alpha.client("owner").post("/v1/api-tokens", body, format="json")
    assert response.status_code == 422
    assert field in response.json()["detail"]


@pytest.mark.parametrize(
    "origin",
    ["javascript:alert(1)", "https://a.example/path", "ftp://a.example", "https://", "**", "https://*.example"],
)
def test_bot_token_origins_must_be_bare_http_origins(alpha: TenantWorld, origin: str) -> None:
    response = alpha.client("owner").post(
        "/v1/api-tokens",
        {"name": "w", "bot_profile_id": str(alpha.bot.pk), "allowed_origins": [origin]},
        format="json",
    )
    assert response.status_code == 422
    assert "allowed_origins" in response.json()["detail"]


def test_a_bot_token_for_an_inactive_bot_is_refused(alpha: TenantWorld) -> None:
    alpha.client("owner").delete(f"/v1/bot-profiles/{alpha.bot.pk}")
    response = alpha.client("owner").post(
        "/v1/api-tokens", {"name": "w", "bot_profile_id": str(alpha.bot.pk)}, format="json"
    )
    assert response.status_code == 422
    with tenant_scope(alpha.tenant):
        assert not ApiToken.objects.filter(name="w").exists()


def test_pagination_limit_offset_and_total(alpha: TenantWorld) -> None:
    client = alpha.client("owner")
    for index in range(4):
        client.post("/v1/users", {"email": f"p{index}@alpha.example", "password": "long-password"}, format="json")
    page = client.get("/v1/users?limit=2&offset=1")
    assert page["X-Total-Count"] == "7"
    assert len(page.json()) == 2
    everything = [user["email"] for user in client.get("/v1/users?limit=1000").json()]
    assert [user["email"] for user in page.json()] == everything[1:3]
    for bad in ("limit=0", "limit=1001", "limit=abc", "offset=-1"):
        response = client.get(f"/v1/users?{bad}")
        assert response.status_code == 422, bad
        assert response.json()["detail"].split(":")[0] in bad


def test_a_page_that_reaches_the_end_of_a_list_needs_no_count(alpha: TenantWorld) -> None:
    """X-Total-Count is the same whether it was counted or read off a last page (fewer items than
    the limit): only a full page, or one past the end, counts."""
    client = alpha.client("owner")
    for index in range(4):
        client.post("/v1/users", {"email": f"c{index}@alpha.example", "password": "long-password"}, format="json")
    for query, expected_items, counted in (
        ("limit=50", 7, False),
        ("limit=7", 7, True),
        ("limit=3&offset=6", 1, False),
        ("limit=3&offset=3", 3, True),
        ("limit=3&offset=9", 0, True),
        ("limit=3&offset=7", 0, True),
    ):
        with CaptureQueriesContext(connection) as statements:
            response = client.get(f"/v1/users?{query}")
        assert (response["X-Total-Count"], len(response.json())) == ("7", expected_items), query
        counts = [sql for sql in (statement["sql"] for statement in statements) if "COUNT(*)" in sql]
        assert bool(counts) == counted, query


def test_another_tenants_bot_in_a_body_is_422_exactly_like_a_missing_one(alpha: TenantWorld, beta: TenantWorld) -> None:
    foreign = alpha.client("owner").post(
        "/v1/api-tokens", {"name": "x", "bot_profile_id": str(beta.bot.pk)}, format="json"
    )
    missing = alpha.client("owner").post(
        "/v1/api-tokens", {"name": "x", "bot_profile_id": str(uuid.uuid4())}, format="json"
    )
    assert foreign.status_code == missing.status_code == 422
    assert (
        foreign.json()
        == missing.json()
        == {
            "detail": "bot_profile_id: Bot profile not found.",
            "errors": {"bot_profile_id": ["Bot profile not found."]},
        }
    )
