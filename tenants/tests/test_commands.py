"""Management commands: createtenant, createtoken (--tenant), createsuperuser, changepassword,
seed_demo. Clear output, non-zero exit with a message on errors."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from conftest import TenantWorld, api_client
from tenants.models import ApiToken, Tenant, User
from tenants.tenancy import tenant_scope, tenant_scope_disabled

pytestmark = pytest.mark.django_db
TOKEN = re.compile(r"API token:\s+(nrag_live_\S+)")


def run(*args: str, stdin: str | None = None, monkeypatch: pytest.MonkeyPatch | None = None) -> str:
    if stdin is not None and monkeypatch is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_createtenant_prints_a_working_token(monkeypatch: pytest.MonkeyPatch) -> None:
    output = run(
        "createtenant",
        "--name",
        "Acme",
        "--slug",
        "acme",
        "--owner-email",
        "o@acme.test",
        "--owner-password-stdin",
        stdin="long-password\n",
        monkeypatch=monkeypatch,
    )
    raw = TOKEN.search(output).group(1)
    assert api_client(raw).get("/v1/tenants/me").json()["slug"] == "acme"
    with pytest.raises(CommandError, match="already exists"):
        run(
            "createtenant",
            "--name",
            "Acme",
            "--slug",
            "acme",
            "--owner-email",
            "x@acme.test",
            "--owner-password-stdin",
            stdin="long-password\n",
            monkeypatch=monkeypatch,
        )


def test_createtoken_for_the_owner_and_for_a_bot(alpha: TenantWorld) -> None:
    raw = TOKEN.search(run("createtoken", "--tenant", "alpha", "--name", "cli")).group(1)
    assert api_client(raw).get("/v1/auth/me").json()["user"]["email"] == alpha.owner.email

    output = run(
        "createtoken",
        "--tenant",
        str(alpha.tenant.pk),
        "--name",
        "widget",
        "--bot",
        str(alpha.bot.pk),
        "--origin",
        "https://shop.example",
        "--origin",
        "https://www.shop.example",
        "--expires-days",
        "30",
    )
    raw = TOKEN.search(output).group(1)
    with tenant_scope(alpha.tenant):
        token = ApiToken.objects.get(name="widget")
    assert token.bot_profile_id == alpha.bot.pk
    assert token.allowed_origins == ["https://shop.example", "https://www.shop.example"]
    assert token.expires_at is not None
    assert "bot token" in output and raw.startswith("nrag_live_")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--tenant", "nope", "--name", "x"), "No tenant"),
        (("--tenant", "alpha", "--name", "x", "--user", "ghost@alpha.example"), "No such active user"),
        (("--tenant", "alpha", "--name", "x", "--origin", "https://a.example"), "Only bot tokens"),
        (("--tenant", "alpha", "--name", "x", "--expires-days", "0"), "at least 1"),
    ],
)
def test_createtoken_errors_are_clear(alpha: TenantWorld, args: tuple[str, ...], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run("createtoken", *args)


def test_createtoken_cannot_reach_another_tenants_bot(alpha: TenantWorld, beta: TenantWorld) -> None:
    with pytest.raises(CommandError, match="Bot profile not found"):
        run("createtoken", "--tenant", "alpha", "--name", "x", "--bot", str(beta.bot.pk))


def test_createsuperuser_makes_a_platform_operator(db) -> None:
    run("createsuperuser", "--noinput", "--email", "ops@example.com")
    with tenant_scope_disabled("test"):
        operator = User.objects.get(email="ops@example.com")
    assert operator.is_superuser and operator.is_staff and operator.tenant_id is None


def test_seed_demo_is_idempotent_and_prints_a_working_curl(db, settings, tmp_path: Path) -> None:
    settings.DATA_DIR = tmp_path
    first = run("seed_demo", "--base-url", "http://127.0.0.1:8123", "--skip-knowledge")
    second = run("seed_demo", "--base-url", "http://127.0.0.1:8123", "--skip-knowledge")
    assert first == second
    assert Tenant.objects.filter(slug="demo").count() == 1
    credentials = json.loads((tmp_path / "demo-credentials.json").read_text())
    assert (tmp_path / "demo-credentials.json").stat().st_mode & 0o777 == 0o600
    curl = next(line for line in first.splitlines() if "curl -s " in line)
    assert "http://127.0.0.1:8123/v1/chat" in curl and credentials["api_token"] in curl
    body = json.loads(curl.split(" -d '", 1)[1].rstrip("'"))
    answer = api_client(credentials["api_token"]).post("/v1/chat", body, format="json")
    assert answer.status_code == 200 and answer.json()["message"]["role"] == "assistant"
    assert any('"stream": true' in line for line in first.splitlines())
    login = api_client().post(
        "/v1/auth/login",
        {"email": "owner@demo.minirag.local", "password": credentials["owner_password"]},
        format="json",
    )
    assert login.status_code == 200
    assert f"admin@minirag.local / {credentials['operator_password']}" in first
    # Losing the credentials file resets the demo secrets instead of failing.
    (tmp_path / "demo-credentials.json").unlink()
    third = run("seed_demo", "--skip-knowledge")
    new_token = json.loads((tmp_path / "demo-credentials.json").read_text())["api_token"]
    assert new_token != credentials["api_token"] and new_token in third
    assert api_client(new_token).get("/v1/tenants/me").status_code == 200


def test_seed_demo_ingests_the_docs_once(db, settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from minirag import model_gateway
    from sources import ingestion
    from sources.models import Source

    settings.DATA_DIR = tmp_path
    embedded: list[int] = []
    monkeypatch.setattr(
        ingestion,
        "embed_texts",
        lambda texts, **kw: embedded.append(len(texts)) or model_gateway.embed_texts(texts, **kw),
    )
    output = run("seed_demo")
    demo = Tenant.objects.get(slug="demo")
    with tenant_scope(demo):
        sources = list(Source.objects.filter(tenant=demo))
    assert {s.name for s in sources} >= {"README.md", "docs/tenancy-and-auth.md"}
    assert all(s.status == "ready" and s.chunk_count > 0 for s in sources)
    assert "Knowledge:" in output and f"{sum(s.chunk_count for s in sources)} chunks" in output
    first_calls = sum(embedded)
    assert first_calls == sum(s.chunk_count for s in sources)
    run("seed_demo")
    assert sum(embedded) == first_calls  # nothing changed: nothing embedded, nothing re-ingested
