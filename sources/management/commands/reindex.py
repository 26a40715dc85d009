"""`reindex [--if-needed]`: rebuild the vector collections from the database, for hybrid retrieval."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from minirag.management.base import MiniRAGCommand
from minirag.vectorstore import is_vector_store_outage, vector_store_error_message
from sources.ingestion import rebuild_index


class Command(MiniRAGCommand):
    help = """\
Rebuild every vector collection from the chunks the database keeps, for all tenants: each chunk's
stored embedding (nothing is embedded again, no model is called) and its lexical vector, computed
from its text. Afterwards every collection serves hybrid retrieval (dense and lexical vectors,
fused); collections no bot uses any more are removed.

Collections made before hybrid retrieval (one unnamed vector) keep answering with dense search
only until they are rebuilt. --if-needed rebuilds only those, and does nothing when there are
none; `migrate` runs it after the database migrations, so an upgrade needs no extra step.

A collection is dropped and written again: while it is being rebuilt, searches in it find fewer
chunks. Run it when upgrading (before starting the web processes), or when the vector store has
lost data. In the embedded mode (local Qdrant), stop `make run` first: local Qdrant allows one
process at a time.

Prints one line per rebuilt collection with its number of points.

Examples:
  python manage.py reindex
  python manage.py reindex --if-needed
"""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--if-needed",
            action="store_true",
            help="Only collections made before hybrid retrieval; nothing when there are none.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            rebuilt = rebuild_index(only_legacy=options["if_needed"])
        except Exception as exc:
            if not is_vector_store_outage(exc):
                raise
            raise CommandError(
                f"{vector_store_error_message(exc)} Nothing was rebuilt; run it again once it is up."
            ) from None
        for collection in rebuilt:
            self.stdout.write(f"{collection.name}: {collection.points} points, dense and lexical")
        if not rebuilt:
            self.stdout.write("Nothing to rebuild." if options["if_needed"] else "No chunks to index.")
