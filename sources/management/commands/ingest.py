"""`ingest --tenant SLUG (--source ID | --all [--bot ID])`: ingest sources now, in this process,
with a progress bar per source. Sitemaps and crawls discover their pages and ingest them too."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.test.utils import override_settings
from django.utils import timezone

from bots.selectors import bot_profile_get
from minirag.lookups import parse_uuid
from sources import lifecycle
from sources.models import IN_FLIGHT_STATUSES, Source, SourceStatus
from tenants.management.base import TenantCommand
from tenants.models import Tenant

BAR_WIDTH = 30


class Command(TenantCommand):
    help = """\
Ingest a tenant's sources now, in this process, the way a worker would: fetch, extract, chunk,
embed and index, with a progress bar per source on a terminal. Sitemaps and crawls discover
their pages and ingest them too. Unchanged chunks reuse their stored vectors.

--source ID ingests one active source; --all ingests every active top-level source of the
tenant, or only those of --bot ID. Prints one line per source (✓ with its chunk counts, or ✗ with
the error) and a summary; exits with status 1 if any source ended in error.

In the embedded mode (local Qdrant), stop `make run` first: local Qdrant allows one process at a
time.

Examples:
  python manage.py ingest --tenant acme --source SOURCE_ID
  python manage.py ingest --tenant acme --all --bot BOT_ID
"""

    def add_arguments(self, parser: CommandParser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--source", help="Id of the source to ingest.")
        target.add_argument("--all", action="store_true", help="Every active top-level source of the tenant.")
        parser.add_argument("--bot", help="With --all: only this bot's sources (bot profile id).")

    def handle_tenant(self, tenant: Tenant, *args: Any, **options: Any) -> None:
        if options["bot"] and not options["all"]:
            raise CommandError("--bot goes with --all (a --source is already one bot's).")
        sources = Source.objects.filter(tenant=tenant, is_active=True)
        if options["source"]:
            source_id = parse_uuid(options["source"])
            sources = sources.filter(pk=source_id) if source_id else sources.none()
            if not sources.exists():
                raise CommandError(f"No active source '{options['source']}' in tenant '{tenant.slug}'.")
        else:
            sources = sources.filter(parent__isnull=True)
            if options["bot"]:
                sources = sources.filter(bot_profile=bot_profile_get(tenant=tenant, bot_profile_id=options["bot"]))
        targets = list(sources.order_by("created_at"))
        if not targets:
            self.stdout.write("Nothing to ingest.")
            return
        failures = 0
        # Run everything here and now, children included, whatever the deployment's queue is.
        with (
            override_settings(TASKS_IN_PROCESS=True, TASKS_RUN_INLINE=True),
            lifecycle.listening_to_progress(self._draw),
        ):
            for source in targets:
                failures += self._ingest(tenant, source)
        if failures:
            raise CommandError(f"{failures} source(s) ended in error.")
        self.stdout.write(self.style.SUCCESS(f"Ingested {len(targets)} source(s)."))

    def _ingest(self, tenant: Tenant, source: Source) -> int:
        now = timezone.now()
        queued = (
            Source.objects.filter(pk=source.pk)
            .exclude(status__in=IN_FLIGHT_STATUSES)
            .update(status=SourceStatus.QUEUED, queued_at=now, error_message="")
        )
        if not queued:
            self.stderr.write(f"{source.name}: already being ingested elsewhere; skipped.")
            return 0
        outcome = lifecycle.run_ingestion(tenant=tenant, source_id=source.pk)
        source.refresh_from_db()
        failed_children = source.children.filter(is_active=True, status=SourceStatus.ERROR).count()
        self._end_line()
        if outcome.status == "ready" and not failed_children:
            self.stdout.write(f"  ✓ {source.name}: {outcome.detail}")
            return 0
        detail = source.error_message or outcome.detail or f"{failed_children} page(s) failed"
        self.stdout.write(self.style.ERROR(f"  ✗ {source.name}: {detail}"))
        return 1

    def _draw(self, source: Source) -> None:
        # Scanned pages are read (OCR) before there are chunks to count.
        total, done, unit = source.chunks_total, source.chunks_done, "chunks"
        if not total:
            total, done, unit = source.ocr_pages_total, source.ocr_pages_done, "pages read (OCR)"
        if not total:
            return
        filled = int(BAR_WIDTH * done / total)
        line = f"  [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total} {unit}  {source.name[:40]}"
        if sys.stdout.isatty():
            self.stdout.write(f"\r{line}", ending="")
            self.stdout.flush()

    def _end_line(self) -> None:
        if sys.stdout.isatty():
            self.stdout.write("")
