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
    from minirag.management.commands import seed_demo
    from sources import ingestion
    from sources.models import Source

    settings.DATA_DIR = tmp_path
    # The README and one page of docs/, not all of docs/: every file takes the same path, and
    # embedding all of them made this one of the slowest tests of the suite.
    every_file = seed_demo.demo_knowledge_files()
    some_files = [path for path in every_file if path.name in ("README.md", "tenancy-and-auth.md")]
    assert len(some_files) == 2 and len(every_file) > 2
    monkeypatch.setattr(seed_demo, "demo_knowledge_files", lambda: some_files)
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


# --- Bad input: one clear line, never a traceback ---------------------------------------------
# (minirag/tests/test_commands_help.py runs each command as a real process for the exit status.)


@pytest.mark.parametrize(
    ("origin", "message"),
    [
        ("shop.example", "--origin: 'shop.example' is not an http(s) origin."),
        ("ftp://shop.example", "--origin: 'ftp://shop.example' is not an http(s) origin."),
        ("https://shop.example/path", "--origin: 'https://shop.example/path' must be an origin only"),
        ("https://*.shop.example", "--origin: 'https://*.shop.example' has an invalid host"),
        ("https://shop.example:99999", "--origin: 'https://shop.example:99999' has an invalid port."),
    ],
)
def test_createtoken_refuses_a_bad_origin_and_creates_nothing(alpha: TenantWorld, origin: str, message: str) -> None:
    with pytest.raises(CommandError) as raised:
        run("createtoken", "--tenant", "alpha", "--name", "w", "--bot", str(alpha.bot.pk), "--origin", origin)
    assert str(raised.value).startswith(message)
    with tenant_scope(alpha.tenant):
        assert not ApiToken.objects.filter(name="w").exists()


def test_createtoken_normalises_origins_and_says_where_the_token_works(alpha: TenantWorld) -> None:
    output = run(
        "createtoken", "--tenant", "alpha", "--name", "w", "--bot", str(alpha.bot.pk),
        "--origin", "HTTPS://Shop.Example:443/", "--expires-days", "30",
    )  # fmt: skip
    assert "Allowed origins: https://shop.example" in output and "Expires: " in output
    assert output.rstrip().endswith("The API token is shown only this once; store it now.")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--name", "   "), "--name: This field cannot be blank."),
        (("--name", "x", "--expires-days", "100000"), "at most 3650"),
        (("--name", "x", "--bot", "not-a-bot"), "Bot profile not found."),
        (("--name", "x", "--user", "member@alpha.example", "--bot", "BOT"), "Only owners and admins"),
    ],
)
def test_createtoken_other_mistakes(alpha: TenantWorld, args: tuple[str, ...], message: str) -> None:
    args = tuple(str(alpha.bot.pk) if arg == "BOT" else arg for arg in args)
    with pytest.raises(CommandError, match=message):
        run("createtoken", "--tenant", "alpha", *args)


def test_commands_refuse_a_deactivated_tenant(alpha: TenantWorld) -> None:
    Tenant.objects.filter(pk=alpha.tenant.pk).update(is_active=False)
    for command in (
        ("createtoken", "--tenant", "alpha", "--name", "x"),
        ("ingest", "--tenant", "alpha", "--all"),
        ("chat", "--tenant", str(alpha.tenant.pk), "--bot", str(alpha.bot.pk), "--message", "Hi"),
    ):
        with pytest.raises(CommandError, match="Tenant 'alpha' is deactivated; reactivate it in the dashboard"):
            run(*command)


@pytest.mark.parametrize(
    ("slug", "email", "password", "message"),
    [
        ("Not A Slug", "o@acme.test", "long-password", "--slug: Use lowercase letters, digits and hyphens only."),
        ("acme", "not-an-email", "long-password", "--owner-email: Enter a valid email address."),
        ("acme", "o@acme.test", "short", "password: Must be between 8 and 128 characters."),
    ],
)
def test_createtenant_bad_input_creates_nothing(
    db, monkeypatch: pytest.MonkeyPatch, slug: str, email: str, password: str, message: str
) -> None:
    with pytest.raises(CommandError) as raised:
        run(
            "createtenant", "--name", "Acme", "--slug", slug, "--owner-email", email, "--owner-password-stdin",
            stdin=f"{password}\n", monkeypatch=monkeypatch,
        )  # fmt: skip
    assert str(raised.value) == message
    assert not Tenant.objects.exists()


def test_createtenant_prompt_interrupted_is_a_clear_error(db, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(prompt: str) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr("getpass.getpass", interrupted)
    with pytest.raises(CommandError, match=re.escape("No password given; nothing was created.")):
        run("createtenant", "--name", "Acme", "--slug", "acme", "--owner-email", "o@acme.test")
    assert not Tenant.objects.exists()


def test_changepassword_sets_it_and_names_what_is_missing(alpha: TenantWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(["new-password-1", "different", "short", "short", "new-password-1", "new-password-1"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    err = io.StringIO()
    out = io.StringIO()
    call_command("changepassword", "admin@alpha.example", "--tenant", "alpha", stdout=out, stderr=err)
    assert "Password changed for admin@alpha.example." in out.getvalue()
    assert "Passwords do not match." in err.getvalue() and "8 and 128 characters" in err.getvalue()
    login = api_client().post(
        "/v1/auth/login", {"email": "admin@alpha.example", "password": "new-password-1"}, format="json"
    )
    assert login.status_code == 200

    with pytest.raises(CommandError, match=re.escape("No user 'ghost@alpha.example' in tenant 'alpha'.")):
        run("changepassword", "ghost@alpha.example", "--tenant", "alpha")
    with pytest.raises(CommandError, match=re.escape("No tenant with slug or id 'nope'.")):
        run("changepassword", "admin@alpha.example", "--tenant", "nope")
    # A tenant user is not a platform operator.
    with pytest.raises(CommandError, match="among platform operators"):
        run("changepassword", "admin@alpha.example")

    monkeypatch.setattr("getpass.getpass", lambda prompt: "mismatch" + prompt)
    with pytest.raises(CommandError, match=re.escape("Too many failed attempts; password not changed.")):
        run("changepassword", "admin@alpha.example", "--tenant", "alpha")


def test_createsuperuser_says_who_was_created_and_refuses_bad_input(db, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a long passphrase")
    output = run("createsuperuser", "--noinput", "--email", "Ops@Example.com")
    assert "Created platform operator ops@example.com (for /dashboard/)." in output.splitlines()
    with tenant_scope_disabled("test"):
        assert User.objects.get(email="ops@example.com", tenant__isnull=True).check_password("a long passphrase")
    with pytest.raises(CommandError, match=re.escape("A platform operator with email 'ops@example.com' already")):
        run("createsuperuser", "--noinput", "--email", "OPS@example.com")
    with pytest.raises(CommandError, match=re.escape("Enter a valid email address.")):
        run("createsuperuser", "--noinput", "--email", "not-an-email")
    assert "Created" not in run("createsuperuser", "--noinput", "--email", "quiet@example.com", "--verbosity", "0")


@pytest.mark.parametrize("base_url", ["localhost:8000", "ftp://127.0.0.1", "http://127.0.0.1:99999", "http://"])
def test_seed_demo_refuses_a_bad_base_url_before_writing(db, settings, tmp_path: Path, base_url: str) -> None:
    settings.DATA_DIR = tmp_path
    with pytest.raises(CommandError, match="--base-url: "):
        run("seed_demo", "--base-url", base_url, "--skip-knowledge")
    assert not Tenant.objects.exists()
    assert not (tmp_path / "demo-credentials.json").exists()
