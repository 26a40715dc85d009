"""Re-encrypting every stored secret with the newest key (`manage.py rotate_keys`).

`MINIRAG_ENCRYPTION_KEYS` lists Fernet keys newest first: the first encrypts, all decrypt
(minirag/crypto.py). Rotating means putting a new key in front, re-encrypting what is stored, and
only then dropping the old key. `ENCRYPTED_FIELDS` is the one list of columns holding Fernet
ciphertext; a test fails when a model gains a `*_ciphertext` field that is not in it.

Guarantees of `rotate_stored_secrets()`:

* every tenant's rows, read with the tenant scope explicitly disabled;
* pk-ordered batches, each in its own transaction, so a large table never sits in one long
  transaction and an interrupted run keeps what it finished;
* only the ciphertext column is written (`QuerySet.update`, so `updated_at` does not move), and
  only if it still holds the value that was read (a secret changed meanwhile is re-read, never
  overwritten with an older one);
* idempotent: a ciphertext the newest key alone decrypts is "already current" and left as is;
* a ciphertext no configured key decrypts is reported (model, row, tenant) and skipped; the rest
  goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.db import models, transaction

from minirag.crypto import DecryptionError, configured_key_count, is_under_newest_key, reencrypt
from tenants.tenancy import tenant_scope_disabled

DEFAULT_BATCH_SIZE = 500
# A row whose secret changes between our read and our write is read again this many times.
_MAX_ATTEMPTS_PER_ROW = 3


@dataclass(frozen=True, slots=True)
class EncryptedField:
    """A model column holding Fernet ciphertext (empty string = no secret stored)."""

    model_label: str  # "app_label.ModelName"
    field_name: str
    description: str  # what the secret is, for the operator
    remedy: str  # how to replace one that no key can decrypt any more

    @property
    def model(self) -> type[models.Model]:
        return apps.get_model(self.model_label)

    @property
    def label(self) -> str:
        return f"{self.model_label}.{self.field_name}"


ENCRYPTED_FIELDS: tuple[EncryptedField, ...] = (
    EncryptedField(
        "bots.BotProfile",
        "credentials_ciphertext",
        "bot provider credentials",
        "set the bot's credentials again (PATCH /v1/bot-profiles/{id} with `credentials`)",
    ),
    EncryptedField(
        "providers.Connection",
        "credentials_ciphertext",
        "named connections' provider keys and headers",
        "type the connection's key again on its dashboard page (Model providers > Connections)",
    ),
    EncryptedField(
        "sources.Source",
        "config_secrets_ciphertext",
        "source secrets, e.g. a nyxcore api_token",
        "set the source's api_token again (PATCH /v1/sources/{id} with `config.api_token`)",
    ),
    EncryptedField(
        "tenants.ApiToken",
        "raw_token_ciphertext",
        "bot tokens kept for embed snippets",
        "create a new bot token and revoke this one (DELETE /v1/api-tokens/{id}); meanwhile the token "
        "still works, only its embed snippet cannot show it",
    ),
    EncryptedField(
        "webhooks.Webhook",
        "secret_ciphertext",
        "webhook signing secrets",
        "give the webhook a new secret (POST /v1/webhooks/{id}/rotate-secret) and update the receiver",
    ),
)


def unregistered_ciphertext_fields() -> list[str]:
    """`app.Model.field` of every concrete `*_ciphertext` field missing from ENCRYPTED_FIELDS."""
    registered = {(entry.model._meta.label, entry.field_name) for entry in ENCRYPTED_FIELDS}
    missing = []
    for model in apps.get_models():
        if model._meta.proxy:
            continue
        for model_field in model._meta.concrete_fields:
            if model_field.name.endswith("_ciphertext") and (model._meta.label, model_field.name) not in registered:
                missing.append(f"{model._meta.label}.{model_field.name}")
    return missing


NO_KEY_DECRYPTS = "no configured key decrypts it"
KEPT_CHANGING = "it kept changing while being rotated; run rotate_keys again"


@dataclass(frozen=True, slots=True)
class UnreadableSecret:
    """A stored secret this run could not re-encrypt, and why."""

    model_label: str
    row_id: Any
    tenant_slug: str | None
    reason: str = NO_KEY_DECRYPTS


@dataclass(slots=True)
class FieldReport:
    """What one run did to one encrypted column."""

    entry: EncryptedField
    reencrypted: int = 0  # or, in a dry run, would be
    current: int = 0
    unreadable: list[UnreadableSecret] = field(default_factory=list)


@dataclass(slots=True)
class RotationReport:
    """What one run did, column by column."""

    dry_run: bool
    key_count: int
    fields: list[FieldReport] = field(default_factory=list)

    @property
    def reencrypted(self) -> int:
        return sum(report.reencrypted for report in self.fields)

    @property
    def current(self) -> int:
        return sum(report.current for report in self.fields)

    @property
    def unreadable(self) -> list[UnreadableSecret]:
        return [secret for report in self.fields for secret in report.unreadable]


def rotate_stored_secrets(
    *,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    fields: Iterable[EncryptedField] = ENCRYPTED_FIELDS,
    on_field_done: Callable[[FieldReport], None] | None = None,
) -> RotationReport:
    """Re-encrypt every stored secret that is not under the newest key (see the module docstring).
    With `dry_run` nothing is written; the counts say what a real run would do."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1.")
    report = RotationReport(dry_run=dry_run, key_count=configured_key_count())
    with tenant_scope_disabled("rotate_keys: stored secrets of every tenant are re-encrypted"):
        for entry in fields:
            field_report = _rotate_field(entry, dry_run=dry_run, batch_size=batch_size)
            report.fields.append(field_report)
            if on_field_done is not None:
                on_field_done(field_report)
    return report


def _rotate_field(entry: EncryptedField, *, dry_run: bool, batch_size: int) -> FieldReport:
    report = FieldReport(entry=entry)
    model = entry.model
    column = entry.field_name
    has_tenant = any(f.name == "tenant" for f in model._meta.concrete_fields)
    columns = ["pk", column, "tenant__slug"] if has_tenant else ["pk", column]
    # `_default_manager` is the tenant-scoped one: the disabled scope (entered by the caller) is
    # what lets it see every tenant, so forgetting that scope fails loudly instead of half-working.
    stored = model._default_manager.exclude(**{column: ""}).exclude(**{f"{column}__isnull": True})
    last_pk: Any = None
    while True:
        page = stored.order_by("pk")
        if last_pk is not None:
            page = page.filter(pk__gt=last_pk)
        with transaction.atomic():
            rows = list(page.values_list(*columns)[:batch_size])
            for row in rows:
                pk, ciphertext = row[0], row[1]
                tenant_slug = row[2] if has_tenant else None
                _rotate_row(model, column, pk, ciphertext, tenant_slug, report, dry_run=dry_run)
        if len(rows) < batch_size:
            return report
        last_pk = rows[-1][0]


def _rotate_row(
    model: type[models.Model],
    column: str,
    pk: Any,
    ciphertext: str,
    tenant_slug: str | None,
    report: FieldReport,
    *,
    dry_run: bool,
) -> None:
    for _attempt in range(_MAX_ATTEMPTS_PER_ROW):
        if is_under_newest_key(ciphertext):
            report.current += 1
            return
        try:
            rotated = reencrypt(ciphertext)
        except DecryptionError:
            report.unreadable.append(UnreadableSecret(model._meta.label, pk, tenant_slug))
            return
        if dry_run:
            report.reencrypted += 1
            return
        # Compare-and-set: never overwrite a secret someone replaced since we read it.
        if model._default_manager.filter(pk=pk, **{column: ciphertext}).update(**{column: rotated}):
            report.reencrypted += 1
            return
        fresh = model._default_manager.filter(pk=pk).values_list(column, flat=True).first()
        if not fresh:
            return  # deleted or cleared meanwhile: nothing left to rotate
        ciphertext = fresh
    # Replaced under us on every attempt: leave it to the next run rather than loop forever.
    report.unreadable.append(UnreadableSecret(model._meta.label, pk, tenant_slug, KEPT_CHANGING))
