"""Settings for the test suite: real PostgreSQL and Redis, in-memory Qdrant, offline models.

The test database and Redis default to the local services `make test` makes sure are running;
`MINIRAG_TEST_DATABASE_URL` / `MINIRAG_TEST_REDIS_URL` point them elsewhere.
A developer's `.env` is never read here, so tests see the same configuration everywhere.
"""

import json
import os
from urllib.parse import urlsplit, urlunsplit

os.environ["MINIRAG_READ_DOTENV"] = "false"
# The test server's superuser (creates the app role, owns the tables) and the app's own role.
_OWNER_URL = os.environ.get("MINIRAG_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/minirag")
APP_ROLE = os.environ.get("MINIRAG_TEST_APP_ROLE", "minirag_app")


def app_role_url(url: str, role: str) -> str:
    """The same server and database, logged in as `role` (trust or peer authentication locally)."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    return urlunsplit(parts._replace(netloc=f"{role}@{host}:{parts.port or 5432}"))


_TEST_ENV = {
    "MINIRAG_SECRET_KEY": "test-secret-key-that-is-long-enough-for-django-0123456789",
    "MINIRAG_JWT_SECRET": "test-jwt-secret-that-is-long-enough-0123456789",
    # Two keys, as after a rotation: the first encrypts, both decrypt.
    "MINIRAG_ENCRYPTION_KEYS": (
        "4n9x8ow5-7S2uqk5Tp-4KJd1Ff8Ru2qs7Vwz6Zz1QbQ=,qs6dx5fWQ3NhtyKHOc3p7l8n-0Gnbc3yQ7N8f2j3Tg0="
    ),
    # The suite runs as the production shape: the app connects as a role that owns nothing and
    # lacks BYPASSRLS (row-level security applies to every query), migrations run as the owner.
    "DATABASE_URL": app_role_url(_OWNER_URL, APP_ROLE),
    "MINIRAG_DATABASE_OWNER_URL": _OWNER_URL,
    # Tests flush tables between transactional tests (TRUNCATE); production grants no TRUNCATE.
    "MINIRAG_DATABASE_APP_PRIVILEGES": "SELECT, INSERT, UPDATE, DELETE, TRUNCATE",
    "REDIS_URL": os.environ.get("MINIRAG_TEST_REDIS_URL", "redis://127.0.0.1:6379/14"),
    "QDRANT_URL": "",
    "QDRANT_PATH": ":memory:",
    "MINIRAG_TASKS_IN_PROCESS": "true",
    "MINIRAG_TASKS_RUN_INLINE": "true",
    "MINIRAG_IN_PROCESS_SCHEDULER": "false",
    "MINIRAG_CRAWL_DELAY_SECONDS": "0",
    # Tests fetch from HTTP servers they start on loopback; the SSRF tests turn this back off.
    "MINIRAG_ALLOW_PRIVATE_NETWORKS": "true",
    "MINIRAG_DEFAULT_CHAT_MODEL": "local/extractive",
    "MINIRAG_DEFAULT_EMBEDDING_MODEL": "local/minilm",
    # Throttle tests lower these with override_settings; the rest of the suite must not trip them.
    "MINIRAG_SIGNUP_RATE": "10000/minute",
    "MINIRAG_LOGIN_RATE": "10000/minute",
    "MINIRAG_CACHE_PREFIX": f"minirag-test-{os.getpid()}",
    "MINIRAG_LOG_LEVEL": "WARNING",
    "MINIRAG_LOG_FORMAT": "plain",
    # Metrics tests turn the endpoint on with override_settings.
    "MINIRAG_METRICS_TOKEN": "",
}
os.environ.update(_TEST_ENV)
os.environ.pop("OPENAI_API_KEY", None)
os.environ.pop("SENTRY_DSN", None)
# A test that starts another process (a real Celery worker) passes it settings through this.
os.environ.update(json.loads(os.environ.get("MINIRAG_TEST_ENV_OVERRIDES", "{}")))

from minirag.settings import *  # noqa: E402,F403

# Argon2 at its production cost would dominate the suite's runtime; MD5 is fine for fixtures.
# (The production hasher list and its order are asserted separately.)
PRODUCTION_PASSWORD_HASHERS = PASSWORD_HASHERS  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *PRODUCTION_PASSWORD_HASHERS]
