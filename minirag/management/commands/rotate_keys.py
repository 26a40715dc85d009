"""`rotate_keys [--dry-run]`: re-encrypt every stored secret with the newest encryption key."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError, CommandParser

from minirag.crypto import configured_key_count
from minirag.key_rotation import DEFAULT_BATCH_SIZE, FieldReport, RotationReport, rotate_stored_secrets
from minirag.management.base import MiniRAGCommand

ALL_CURRENT = (
    "All secrets are under the newest key; you can now remove the old key(s) from MINIRAG_ENCRYPTION_KEYS and restart."
)


class Command(MiniRAGCommand):
    help = """\
Re-encrypt every stored secret with the newest key of MINIRAG_ENCRYPTION_KEYS, for all tenants:
bot provider credentials, source secrets (a nyxcore source's api_token), the kept copy of bot
(widget) tokens shown in embed snippets, and webhook signing secrets.

MINIRAG_ENCRYPTION_KEYS lists Fernet keys newest first: the first encrypts, all of them decrypt.
To rotate the key:
  1. Generate a key:
       python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"
  2. Put it first, keeping the old key(s) after it (MINIRAG_ENCRYPTION_KEYS=NEW,OLD), and restart
     every web, worker and beat process, so that nothing encrypts with the old key any more.
  3. python manage.py rotate_keys --dry-run    (shows what would change; writes nothing)
     python manage.py rotate_keys              (re-encrypts)
  4. When it reports every secret current, remove the old key(s) (MINIRAG_ENCRYPTION_KEYS=NEW)
     and restart again.

Prints one line per kind of secret with how many were re-encrypted, already current (already
under the newest key: left untouched) and unreadable, then a summary and the next step. Safe to
re-run at any time; with only one key configured it checks that every secret is readable.
Rows are processed in batches, each in its own transaction; only the secret column is written.

A secret that no configured key can decrypt is listed (model, row id, tenant) and skipped; the
rest is still re-encrypted, and the command exits with status 1. Keep the old key(s) until it
succeeds: add the missing key after the newest and run it again, or replace those secrets.

Example:
  MINIRAG_ENCRYPTION_KEYS=NEW_KEY,OLD_KEY python manage.py rotate_keys --dry-run
"""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Report what would be re-encrypted without writing anything."
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help=f"Rows read and updated per transaction (default {DEFAULT_BATCH_SIZE}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        self._dry_run: bool = options["dry_run"]
        try:
            key_count = configured_key_count()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        self._write_intro(key_count)
        report = rotate_stored_secrets(
            dry_run=self._dry_run, batch_size=options["batch_size"], on_field_done=self._write_field
        )
        self._write_summary(report)

    def _write_intro(self, key_count: int) -> None:
        prefix = "Dry run (nothing is written): " if self._dry_run else ""
        if key_count == 1:
            self.stdout.write(
                f"{prefix}Only one key configured: nothing to rotate from; checking that every stored secret "
                "is readable with it."
            )
        else:
            self.stdout.write(f"{prefix}{key_count} keys configured; moving every secret to the first (newest).")

    def _write_field(self, field_report: FieldReport) -> None:
        entry = field_report.entry
        done = "to re-encrypt" if self._dry_run else "re-encrypted"
        counts = (
            f"{field_report.reencrypted} {done}, {field_report.current} already current, "
            f"{len(field_report.unreadable)} unreadable"
        )
        line = f"{entry.description} ({entry.label}): {counts}"
        self.stdout.write(self.style.ERROR(line) if field_report.unreadable else line)
        for secret in field_report.unreadable:
            tenant = f"tenant '{secret.tenant_slug}'" if secret.tenant_slug else "no tenant"
            self.stdout.write(f"  ✗ {secret.model_label} {secret.row_id} ({tenant}): {secret.reason}")
        if field_report.unreadable:
            self.stdout.write(f"    fix: {entry.remedy}")

    def _write_summary(self, report: RotationReport) -> None:
        failed = len(report.unreadable)
        if report.dry_run:
            self.stdout.write(
                f"Dry run: {report.reencrypted} would be re-encrypted, {report.current} already current, "
                f"{failed} unreadable. Nothing was written."
            )
        else:
            totals = f"{report.reencrypted} re-encrypted, {report.current} already current, {failed} unreadable."
            self.stdout.write(self.style.SUCCESS(f"Done: {totals}") if not failed else f"Done: {totals}")
        if failed:
            raise CommandError(
                f"{failed} stored secret(s) could not be re-encrypted (listed above). Keep the old key(s) in "
                "MINIRAG_ENCRYPTION_KEYS: add the key they were encrypted with (after the newest) and run "
                "rotate_keys again, or replace those secrets as suggested."
            )
        if report.dry_run and report.reencrypted:
            self.stdout.write("Next: run `manage.py rotate_keys` without --dry-run.")
        elif report.key_count == 1:
            self.stdout.write("Every stored secret is readable with the only configured key.")
        else:
            self.stdout.write(self.style.SUCCESS(ALL_CURRENT))
