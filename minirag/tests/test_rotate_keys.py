"""`manage.py rotate_keys`: every stored secret re-encrypted with the newest key, across tenants,
without touching anything else; idempotent; `--dry-run` writes nothing; a secret no key decrypts
is reported and the rest still rotated."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import call_command
from django.core.management.base import CommandError

from bots.models import BotProfile
from bots.services import bot_profile_credentials, bot_profile_update
from conftest import LocalSite, TenantWorld, build_world
from minirag import key_rotation
from minirag.crypto import encrypt_text
from minirag.key_rotation import ENCRYPTED_FIELDS, unregistered_ciphertext_fields
from minirag.management.commands.rotate_keys import ALL_CURRENT
from providers.models import Connection
from providers.selectors import connection_endpoint
from sources.models import Source
from sources.services import source_create, source_secrets
from tenants.models import ApiToken
from tenants.services import bot_token_raw
from tenants.tenancy import tenant_scope, tenant_scope_disabled
from webhooks.models import SUBSCRIBABLE_EVENTS, Webhook
from webhooks.services import webhook_create
from webhooks.signing import verify

pytestmark = pytest.mark.django_db

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
KEY_C = Fernet.generate_key().decode()  # configured nowhere: what a lost key looks like


@dataclass
class Secrets:
    """Two tenants with a stored secret of every kind, all encrypted under KEY_A."""

    worlds: list[TenantWorld]
    nyxcore: dict[str, Source]
    hooks: dict[str, tuple[Webhook, str]]  # slug → (webhook on the local site, its plaintext secret)


@pytest.fixture
def stored(settings: Any, site: LocalSite) -> Secrets:
    settings.ENCRYPTION_KEYS = [KEY_A]
    worlds = [build_world("alpha"), build_world("beta")]
    nyxcore: dict[str, Source] = {}
    hooks: dict[str, tuple[Webhook, str]] = {}
    for world in worlds:
        slug = world.tenant.slug
        with tenant_scope(world.tenant):
            bot_profile_update(tenant=world.tenant, bot=world.bot, credentials={"api_key": f"sk-{slug}-provider"})
            nyxcore[slug] = source_create(
                tenant=world.tenant,
                bot_profile=world.bot,
                name="Search",
                source_type="nyxcore",
                config={"base_url": "https://search.example.com", "api_token": f"nyx-{slug}-token"},
            )
            hooks[slug] = webhook_create(
                tenant=world.tenant,
                url=site.add(f"/{slug}/hook", '{"ok": true}', "application/json"),
                events=list(SUBSCRIBABLE_EVENTS),
                secret=f"whsec-{slug}-0123456789abcdef",
            )
    return Secrets(worlds=worlds, nyxcore=nyxcore, hooks=hooks)


def snapshot() -> dict[str, dict[Any, tuple[str, Any]]]:
    """label → {pk: (ciphertext, updated_at or None)} of every stored secret, read raw."""
    result: dict[str, dict[Any, tuple[str, Any]]] = {}
    with tenant_scope_disabled("test: read every stored secret raw"):
        return _snapshot(result)


def _snapshot(result: dict[str, dict[Any, tuple[str, Any]]]) -> dict[str, dict[Any, tuple[str, Any]]]:
    for entry in ENCRYPTED_FIELDS:
        model = entry.model
        has_updated_at = any(f.name == "updated_at" for f in model._meta.concrete_fields)
        columns = ["pk", entry.field_name, "updated_at" if has_updated_at else "pk"]
        rows = model._base_manager.exclude(**{entry.field_name: ""}).values_list(*columns)
        result[entry.label] = {pk: (text, stamp if has_updated_at else None) for pk, text, stamp in rows}
    return result


def decrypts_with(key: str, ciphertext: str) -> str | None:
    try:
        return Fernet(key.encode()).decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        return None


def rotate(*args: str) -> str:
    out = io.StringIO()
    call_command("rotate_keys", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_every_secret_moves_to_the_newest_key_and_still_works_without_the_old_one(
    stored: Secrets, settings: Any, site: LocalSite
) -> None:
    before = snapshot()
    for label, rows in before.items():
        assert len(rows) >= 2, f"the fixture stores no {label} for both tenants"
        assert all(decrypts_with(KEY_A, text) is not None for text, _ in rows.values())

    settings.ENCRYPTION_KEYS = [KEY_B, KEY_A]
    output = rotate("--batch-size", "1")  # one row per transaction: paging is exercised too

    after = snapshot()
    assert after.keys() == before.keys()
    for label, rows in before.items():
        assert after[label].keys() == rows.keys()
        for pk, (old_text, old_stamp) in rows.items():
            new_text, new_stamp = after[label][pk]
            assert new_text != old_text
            assert decrypts_with(KEY_B, new_text) == decrypts_with(KEY_A, old_text), (label, pk)
            assert new_stamp == old_stamp, f"{label} {pk}: updated_at moved"
    assert "2 keys configured" in output
    for entry in ENCRYPTED_FIELDS:
        count = len(before[entry.label])
        assert f"{entry.description} ({entry.label}): {count} re-encrypted, 0 already current, 0 unreadable" in output
    total = sum(len(rows) for rows in before.values())
    assert f"Done: {total} re-encrypted, 0 already current, 0 unreadable." in output
    assert output.rstrip().endswith(ALL_CURRENT)

    # The old key is gone: every secret is still readable where the product reads it.
    settings.ENCRYPTION_KEYS = [KEY_B]
    for world in stored.worlds:
        slug = world.tenant.slug
        with tenant_scope(world.tenant):
            assert bot_profile_credentials(BotProfile.objects.get(pk=world.bot.pk)) == {
                "api_key": f"sk-{slug}-provider"
            }
            assert source_secrets(Source.objects.get(pk=stored.nyxcore[slug].pk)) == {"api_token": f"nyx-{slug}-token"}
            assert bot_token_raw(ApiToken.objects.get(pk=world.token_rows["bot"].pk)) == world.tokens["bot"]
            endpoint = connection_endpoint(Connection.objects.get(pk=world.connection.pk), tenant_id=world.tenant.pk)
            assert (endpoint.api_key, endpoint.headers) == (f"sk-{slug}-connection", {"X-Org": slug})
        embed = world.client("admin").get(f"/v1/bot-profiles/{world.bot.pk}/embed").json()
        assert f'data-api-token="{world.tokens["bot"]}"' in embed["snippet"]
        webhook, secret = stored.hooks[slug]
        ping = world.client("admin").post(f"/v1/webhooks/{webhook.pk}/test")
        assert ping.status_code == 200 and ping.json()["success"], ping.content
        request = next(call for call in reversed(site.calls) if call["path"] == f"/{slug}/hook")
        verify(secret, request["body"], request["headers"])  # signed with the same secret as before


def test_a_second_run_finds_everything_current_and_changes_nothing(stored: Secrets, settings: Any) -> None:
    settings.ENCRYPTION_KEYS = [KEY_B, KEY_A]
    rotate()
    rotated = snapshot()
    output = rotate()
    assert snapshot() == rotated
    total = sum(len(rows) for rows in rotated.values())
    assert f"Done: 0 re-encrypted, {total} already current, 0 unreadable." in output
    assert ALL_CURRENT in output


def test_dry_run_reports_and_writes_nothing(stored: Secrets, settings: Any) -> None:
    before = snapshot()
    settings.ENCRYPTION_KEYS = [KEY_B, KEY_A]
    output = rotate("--dry-run")
    assert snapshot() == before
    total = sum(len(rows) for rows in before.values())
    assert output.startswith("Dry run (nothing is written): 2 keys configured")
    hooks = len(before["webhooks.Webhook.secret_ciphertext"])
    line = f"webhook signing secrets (webhooks.Webhook.secret_ciphertext): {hooks} to re-encrypt, 0 already current"
    assert line in output
    assert f"Dry run: {total} would be re-encrypted, 0 already current, 0 unreadable. Nothing was written." in output
    assert "without --dry-run" in output and ALL_CURRENT not in output


def test_an_unreadable_secret_is_named_the_rest_rotated_and_the_exit_is_an_error(
    stored: Secrets, settings: Any
) -> None:
    lost_key_secret = Fernet(KEY_C.encode()).encrypt(b"whsec-lost").decode()
    webhook, _secret = stored.hooks["alpha"]
    with tenant_scope_disabled("test: the stored row"):
        Webhook.all_tenants.filter(pk=webhook.pk).update(secret_ciphertext=lost_key_secret)
    settings.ENCRYPTION_KEYS = [KEY_B, KEY_A]

    out = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("rotate_keys", stdout=out, stderr=io.StringIO())
    message = str(raised.value)
    assert message.startswith("1 stored secret(s) could not be re-encrypted") and "\n" not in message
    assert "Keep the old key(s)" in message and "rotate_keys again" in message
    output = out.getvalue()
    assert f"  ✗ webhooks.Webhook {webhook.pk} (tenant 'alpha'): no configured key decrypts it" in output
    assert "rotate-secret" in output  # how to replace it
    assert "1 unreadable" in output

    after = snapshot()
    for label, rows in after.items():
        for pk, (text, _stamp) in rows.items():
            if pk == webhook.pk:
                assert text == lost_key_secret  # skipped, left exactly as it was
            else:
                assert decrypts_with(KEY_B, text) is not None, (label, pk)


def test_with_one_key_it_is_a_readability_check(stored: Secrets, settings: Any) -> None:
    before = snapshot()
    output = rotate()  # still only KEY_A
    assert snapshot() == before
    assert "Only one key configured" in output
    total = sum(len(rows) for rows in before.values())
    assert f"Done: 0 re-encrypted, {total} already current, 0 unreadable." in output
    assert "readable with the only configured key" in output


def test_a_secret_replaced_during_the_run_is_not_overwritten_with_the_old_one(
    stored: Secrets, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.ENCRYPTION_KEYS = [KEY_B, KEY_A]
    webhook, _secret = stored.hooks["beta"]
    with tenant_scope_disabled("test: the stored row"):
        read_by_the_command = Webhook.all_tenants.get(pk=webhook.pk).secret_ciphertext
    replaced = encrypt_text("whsec-rotated-by-the-tenant-meanwhile")
    real_reencrypt = key_rotation.reencrypt

    def tenant_rotates_the_secret_meanwhile(ciphertext: str) -> str:
        if ciphertext == read_by_the_command:  # between the command's read and its write
            Webhook.all_tenants.filter(pk=webhook.pk).update(secret_ciphertext=replaced)
        return real_reencrypt(ciphertext)

    monkeypatch.setattr(key_rotation, "reencrypt", tenant_rotates_the_secret_meanwhile)
    output = rotate()
    with tenant_scope_disabled("test: the stored row"):
        assert Webhook.all_tenants.get(pk=webhook.pk).secret_ciphertext == replaced  # the newer secret survives
    hooks = len(snapshot()["webhooks.Webhook.secret_ciphertext"])
    assert f"({ENCRYPTED_FIELDS[-1].label}): {hooks - 1} re-encrypted, 1 already current, 0 unreadable" in output


def test_the_registry_covers_every_ciphertext_column(monkeypatch: pytest.MonkeyPatch) -> None:
    for entry in ENCRYPTED_FIELDS:
        field = entry.model._meta.get_field(entry.field_name)  # raises if the registry names a ghost
        assert field.get_internal_type() == "TextField"
    assert unregistered_ciphertext_fields() == [], (
        "A model stores Fernet ciphertext that rotate_keys would not re-encrypt: "
        "add it to minirag.key_rotation.ENCRYPTED_FIELDS."
    )
    # And the check does catch a column left out.
    monkeypatch.setattr(key_rotation, "ENCRYPTED_FIELDS", ENCRYPTED_FIELDS[1:])
    assert unregistered_ciphertext_fields() == [ENCRYPTED_FIELDS[0].label]


def test_bad_options_and_keys_are_clear_errors(db: Any, settings: Any) -> None:
    with pytest.raises(CommandError, match="--batch-size must be at least 1"):
        rotate("--batch-size", "0")
    settings.ENCRYPTION_KEYS = ["not-a-fernet-key"]
    with pytest.raises(CommandError, match="MINIRAG_ENCRYPTION_KEYS must be comma-separated Fernet keys"):
        rotate()
