"""Authentication: API tokens (hashed, shown once, revocable, expiring), JWTs, dispatch by dot,
disabled users and tenants, bot tokens kept off tenant routes."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conftest import TenantWorld, api_client
from tenants.models import ApiToken, User
from tenants.rls import without_scope
from tenants.tenancy import tenant_scope, tenant_scope_disabled
from tenants.tests.factories import UserFactory, make_token
from tenants.tokens import JWT_ISSUER, password_version

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def login(email: str, password: str, **extra: str):
    return api_client().post("/v1/auth/login", {"email": email, "password": password, **extra}, format="json")


# --- API tokens -------------------------------------------------------------------------------


def test_a_token_is_shown_once_and_only_its_hash_is_stored(alpha: TenantWorld) -> None:
    response = alpha.client("owner").post("/v1/api-tokens", {"name": "ci"}, format="json")
    assert response.status_code == 201
    raw = response.json()["raw_token"]
    assert raw.startswith("nrag_live_") and len(raw) == len("nrag_live_") + 43
    assert response.json()["token_prefix"] == raw[:18]

    with tenant_scope_disabled("test: inspect storage"):
        row = ApiToken.objects.get(pk=response.json()["id"])
        stored = [str(value) for value in ApiToken.objects.filter(pk=row.pk).values().first().values()]
    assert row.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert not any(raw in value for value in stored)

    listing = alpha.client("owner").get("/v1/api-tokens")
    assert raw not in listing.content.decode()
    assert "raw_token" not in listing.json()[0]
    assert api_client(raw).get("/v1/tenants/me").status_code == 200


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Bearer nrag_live_doesnotexist", "Invalid API token."),
        ("Bearer", "Invalid Authorization header"),
        ("Bearer a b", "Invalid Authorization header"),
        ("Bearer not.a.jwt", "Invalid token."),
        ("Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "Invalid token."),
    ],
)
def test_bad_credentials_get_401_with_a_readable_detail(alpha: TenantWorld, header: str, message: str) -> None:
    response = api_client(HTTP_AUTHORIZATION=header).get("/v1/bot-profiles")
    assert response.status_code == 401
    assert message in response.json()["detail"]
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_missing_credentials_get_401(alpha: TenantWorld) -> None:
    response = api_client().get("/v1/bot-profiles")
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}


def test_revoked_and_expired_tokens_get_401(alpha: TenantWorld) -> None:
    token_id = alpha.token_rows["member"].pk
    assert alpha.client("member").delete(f"/v1/api-tokens/{token_id}").status_code == 204
    response = alpha.client("member").get("/v1/tenants/me")
    assert response.status_code == 401
    assert response.json()["detail"] == "This API token has been revoked."

    row, raw = make_token(alpha.owner, expires_at=timezone.now() + timedelta(seconds=1))
    assert api_client(raw).get("/v1/tenants/me").status_code == 200
    with tenant_scope(alpha.tenant):
        ApiToken.objects.filter(pk=row.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = api_client(raw).get("/v1/tenants/me")
    assert response.status_code == 401
    assert response.json()["detail"] == "This API token has expired."


def test_a_token_cannot_be_created_already_expired(alpha: TenantWorld) -> None:
    past = (timezone.now() - timedelta(minutes=1)).isoformat()
    response = alpha.client().post("/v1/api-tokens", {"name": "old", "expires_at": past}, format="json")
    assert response.status_code == 422
    assert "expires_at" in response.json()["detail"]


@override_settings(TOKEN_CACHE_SECONDS=0)  # "a minute later" is simulated in the database's row
def test_last_used_at_is_written_at_most_once_a_minute(alpha: TenantWorld) -> None:
    client = alpha.client("admin")
    assert client.get("/v1/tenants/me").status_code == 200
    with tenant_scope(alpha.tenant):
        first = ApiToken.objects.get(pk=alpha.token_rows["admin"].pk).last_used_at
    assert first is not None

    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            assert client.get("/v1/tenants/me").status_code == 200
    assert not [q for q in queries.captured_queries if without_scope(q["sql"]).lstrip().upper().startswith("UPDATE")]
    with tenant_scope(alpha.tenant):
        assert ApiToken.objects.get(pk=alpha.token_rows["admin"].pk).last_used_at == first

        ApiToken.objects.filter(pk=alpha.token_rows["admin"].pk).update(last_used_at=first - timedelta(minutes=2))
    assert client.get("/v1/tenants/me").status_code == 200
    with tenant_scope(alpha.tenant):
        assert ApiToken.objects.get(pk=alpha.token_rows["admin"].pk).last_used_at > first


# --- Disabled users and tenants ---------------------------------------------------------------


def test_a_disabled_tenant_locks_out_tokens_jwts_and_logins(alpha: TenantWorld) -> None:
    jwt_token = login(alpha.owner.email, alpha.password).json()["access_token"]
    alpha.tenant.is_active = False
    alpha.tenant.save()
    for client in (alpha.client("owner"), alpha.client("bot"), api_client(jwt_token)):
        response = client.get("/v1/tenants/me")
        assert response.status_code == 403
        assert response.json()["detail"] == "This tenant is disabled."
    response = login(alpha.owner.email, alpha.password)
    assert response.status_code == 403
    assert response.json()["detail"] == "This tenant is disabled."


def test_a_disabled_user_is_locked_out_and_their_tokens_revoked(alpha: TenantWorld) -> None:
    jwt_token = login(alpha.member.email, alpha.password).json()["access_token"]
    assert alpha.client("owner").delete(f"/v1/users/{alpha.member.pk}").status_code == 204
    assert api_client(jwt_token).get("/v1/auth/me").status_code == 403
    assert alpha.client("member").get("/v1/auth/me").status_code == 401  # token revoked with the account
    response = login(alpha.member.email, alpha.password)
    assert response.status_code == 403
    assert response.json()["detail"] == "This user is disabled."
    # Reactivating the account does not bring its old tokens back.
    reactivated = alpha.client("owner").patch(f"/v1/users/{alpha.member.pk}", {"is_active": True}, format="json")
    assert reactivated.status_code == 200
    assert alpha.client("member").get("/v1/auth/me").status_code == 401


# --- JWT --------------------------------------------------------------------------------------


def test_login_returns_a_jwt_that_authenticates(alpha: TenantWorld) -> None:
    response = login(alpha.admin.email.upper(), alpha.password)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["user"]["email"] == alpha.admin.email
    assert body["tenant"]["slug"] == "alpha"
    claims = jwt.decode(body["access_token"], settings.JWT_SECRET, algorithms=["HS256"], issuer=JWT_ISSUER)
    assert claims["sub"] == str(alpha.admin.pk)
    assert claims["tid"] == str(alpha.tenant.pk)
    assert claims["role"] == "admin"
    assert claims["exp"] - claims["iat"] == settings.JWT_TTL_SECONDS == body["expires_in"]
    me = api_client(body["access_token"]).get("/v1/auth/me")
    assert me.status_code == 200
    assert me.json()["user"]["id"] == str(alpha.admin.pk)


@pytest.mark.parametrize(
    ("password", "email"),
    [("wrong-password", None), ("correct-horse-battery", "nobody@alpha.example")],
)
def test_bad_login_is_401_and_does_not_say_which_part_was_wrong(
    alpha: TenantWorld, password: str, email: str | None
) -> None:
    response = login(email or alpha.owner.email, password)
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid email or password."}


def test_an_email_in_several_tenants_needs_the_slug_only_when_ambiguous(alpha: TenantWorld, beta: TenantWorld) -> None:
    UserFactory(tenant=beta.tenant, email="owner@alpha.example", password=alpha.password)
    response = login("owner@alpha.example", alpha.password)
    assert response.status_code == 422
    assert "tenant_slug" in response.json()["detail"]
    response = login("owner@alpha.example", alpha.password, tenant_slug="beta")
    assert response.status_code == 200
    assert response.json()["tenant"]["slug"] == "beta"
    # A different password in the other tenant: unambiguous, no slug needed.
    UserFactory(tenant=beta.tenant, email="admin@alpha.example", password="another-password-1")
    assert login("admin@alpha.example", alpha.password).json()["tenant"]["slug"] == "alpha"


def _forged_jwt(user: User, **overrides: object) -> str:
    """A JWT signed with the server's secret, with any claim overridden."""
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": str(user.pk),
        "tid": str(user.tenant_id),
        "role": user.role,
        "pwv": password_version(user.password),
        "iss": JWT_ISSUER,
        "iat": now,
        "exp": now + 60,
    }
    claims.update(overrides)
    return jwt.encode(claims, settings.JWT_SECRET, algorithm="HS256")


def test_expired_foreign_and_tampered_jwts_are_refused(alpha: TenantWorld, beta: TenantWorld) -> None:
    assert api_client(_forged_jwt(alpha.owner)).get("/v1/auth/me").status_code == 200
    expired = _forged_jwt(alpha.owner, exp=int(time.time()) - 1)
    response = api_client(expired).get("/v1/auth/me")
    assert response.status_code == 401 and response.json()["detail"] == "Token has expired."
    other_secret = jwt.encode(
        {
            "sub": str(alpha.owner.pk),
            "tid": str(alpha.tenant.pk),
            "iat": 0,
            "exp": int(time.time()) + 60,
            "iss": JWT_ISSUER,
        },
        "x" * 40,
        algorithm="HS256",
    )
    assert api_client(other_secret).get("/v1/auth/me").status_code == 401
    # A user id with another tenant's tid is refused, not resolved in either tenant.
    assert api_client(_forged_jwt(alpha.owner, tid=str(beta.tenant.pk))).get("/v1/auth/me").status_code == 401


def test_changing_the_password_ends_existing_sessions(alpha: TenantWorld) -> None:
    old = login(alpha.member.email, alpha.password).json()["access_token"]
    response = api_client(old).patch(
        f"/v1/users/{alpha.member.pk}",
        {"password": "brand-new-pass", "current_password": alpha.password},
        format="json",
    )
    assert response.status_code == 200
    assert api_client(old).get("/v1/auth/me").status_code == 401
    assert api_client(response.json()["access_token"]).get("/v1/auth/me").status_code == 200
    new = login(alpha.member.email, "brand-new-pass").json()["access_token"]
    assert api_client(new).get("/v1/auth/me").status_code == 200


def test_the_jwt_acts_with_the_current_role_not_the_one_in_the_claim(alpha: TenantWorld) -> None:
    token = login(alpha.admin.email, alpha.password).json()["access_token"]
    assert api_client(token).post("/v1/bot-profiles", {"name": "ok"}, format="json").status_code == 201
    alpha.client("owner").patch(f"/v1/users/{alpha.admin.pk}", {"role": "member"}, format="json")
    assert api_client(token).post("/v1/bot-profiles", {"name": "no"}, format="json").status_code == 403


def test_settings_refuse_to_start_without_a_jwt_secret() -> None:
    env = {
        **os.environ,
        "MINIRAG_READ_DOTENV": "false",
        "MINIRAG_SECRET_KEY": "k" * 50,
        "MINIRAG_ENCRYPTION_KEYS": "4n9x8ow5-7S2uqk5Tp-4KJd1Ff8Ru2qs7Vwz6Zz1QbQ=",
        "DJANGO_SETTINGS_MODULE": "minirag.settings",
    }
    for secret in ("", "   ", "short"):
        env["MINIRAG_JWT_SECRET"] = secret
        result = subprocess.run(
            [sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert result.returncode != 0
        assert "MINIRAG_JWT_SECRET must be set" in result.stderr


def test_argon2_is_the_production_password_hasher(alpha: TenantWorld) -> None:
    assert settings.PRODUCTION_PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")
    with override_settings(PASSWORD_HASHERS=settings.PRODUCTION_PASSWORD_HASHERS):
        response = alpha.client("owner").post(
            "/v1/users", {"email": "argon@alpha.example", "password": "long-enough-1"}, format="json"
        )
        assert response.status_code == 201
        with tenant_scope(alpha.tenant):
            assert User.objects.get(email="argon@alpha.example").password.startswith("argon2$")
        assert login("argon@alpha.example", "long-enough-1").status_code == 200


# --- Bot tokens -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/v1/bot-profiles"),
        ("get", "/v1/users"),
        ("post", "/v1/api-tokens"),
        ("get", "/v1/tenants/me"),
        ("get", "/v1/auth/me"),
        ("get", "/v1/system/health/detailed"),
    ],
)
def test_bot_tokens_may_not_use_tenant_routes(alpha: TenantWorld, method: str, path: str) -> None:
    response = getattr(alpha.client("bot"), method)(path, {}, format="json")
    assert response.status_code == 403
    assert "Bot tokens" in response.json()["detail"]


# --- Browsable API with a dashboard session --------------------------------------------------


def test_the_browsable_api_works_for_a_logged_in_tenant_user(alpha: TenantWorld, client) -> None:
    client.force_login(alpha.member)
    response = client.get("/v1/bot-profiles", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"alpha bot" in response.content
    assert client.get("/v1/bot-profiles", HTTP_ACCEPT="application/json").json()[0]["name"] == "alpha bot"


def test_a_platform_operator_session_has_no_tenant_on_the_api(db, client) -> None:
    with tenant_scope_disabled("test: create operator"):
        operator = User.objects.create_superuser("ops@example.com", "operator-password")
    client.force_login(operator)
    response = client.get("/v1/bot-profiles", HTTP_ACCEPT="application/json")
    assert response.status_code == 403
    assert "Platform operator" in response.json()["detail"]


def test_logging_in_records_last_login_whatever_the_scope(alpha: TenantWorld, client) -> None:
    client.force_login(alpha.member)  # Django's login(), outside any tenant scope
    with tenant_scope(alpha.tenant):
        assert User.objects.get(pk=alpha.member.pk).last_login is not None


def test_the_browsable_api_renders_for_a_token_with_input_forms(alpha: TenantWorld) -> None:
    response = alpha.client("admin").get("/v1/bot-profiles", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    html = response.content.decode()
    assert "alpha bot" in html
    assert "similarity_threshold" in html  # the create form shows the input fields
