"""Benchmarks (see docs/benchmarks.md). Each script runs MiniRAG in embedded mode in a temporary
directory, or against PostgreSQL with --database-url."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path


def embedded_environment(data_dir: Path, database_url: str | None) -> dict[str, str]:
    """Settings for a throwaway MiniRAG: fresh secrets, SQLite (or `database_url`) and local-mode
    Qdrant under `data_dir`, tasks inline, quiet logs."""
    return {
        "DJANGO_SETTINGS_MODULE": "minirag.settings",
        "MINIRAG_READ_DOTENV": "false",
        "MINIRAG_SECRET_KEY": secrets.token_urlsafe(48),
        "MINIRAG_JWT_SECRET": secrets.token_urlsafe(48),
        "MINIRAG_ENCRYPTION_KEYS": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "MINIRAG_DATA_DIR": str(data_dir),
        "DATABASE_URL": database_url or f"sqlite:///{data_dir / 'bench.sqlite3'}",
        "REDIS_URL": "",
        "QDRANT_URL": "",
        "QDRANT_PATH": str(data_dir / "qdrant"),
        "MINIRAG_TASKS_IN_PROCESS": "true",
        "MINIRAG_TASKS_RUN_INLINE": "true",
        "MINIRAG_IN_PROCESS_SCHEDULER": "false",
        "MINIRAG_LOG_LEVEL": "WARNING",
    }
