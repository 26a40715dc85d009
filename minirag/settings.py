"""MiniRAG settings.

Everything is chosen by environment variables (documented one by one in `.env.example`).
Two shapes come out of the same file:

* **embedded** (the `make run` default): SQLite and local-mode Qdrant under `MINIRAG_DATA_DIR`,
  tasks run in-process, an in-memory cache, offline models;
* **production**: `DATABASE_URL` (PostgreSQL), `REDIS_URL` (cache, Celery broker), `QDRANT_URL`.

Secrets have no defaults: a process that is missing one refuses to start with a message naming it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A developer's `.env` (written by `make run` on first start) fills in what the process
# environment does not set; real environment variables always win.
if os.environ.get("MINIRAG_READ_DOTENV", "true").lower() in ("1", "true", "yes"):
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# --- Core -------------------------------------------------------------------------------------

DEBUG: bool = env.bool("MINIRAG_DEBUG", default=False)
SECRET_KEY: str = env.str("MINIRAG_SECRET_KEY")
if len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("MINIRAG_SECRET_KEY must be at least 32 characters long.")

DATA_DIR = Path(env.str("MINIRAG_DATA_DIR", default=str(BASE_DIR / "var"))).resolve()

ALLOWED_HOSTS: list[str] = env.list("MINIRAG_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS: list[str] = env.list("MINIRAG_CSRF_TRUSTED_ORIGINS", default=[])

BEHIND_TLS_PROXY: bool = env.bool("MINIRAG_BEHIND_TLS_PROXY", default=False)
if BEHIND_TLS_PROXY:
    # The proxy terminates TLS and says so in X-Forwarded-Proto; cookies never travel in clear.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("MINIRAG_HSTS_SECONDS", default=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("MINIRAG_HSTS_INCLUDE_SUBDOMAINS", default=False)
    SECURE_HSTS_PRELOAD = env.bool("MINIRAG_HSTS_PRELOAD", default=False)
    # A plain-HTTP request that reached the app anyway is redirected to https...
    SECURE_SSL_REDIRECT = env.bool("MINIRAG_SSL_REDIRECT", default=True)
# ...except the liveness probe and the metrics scrape, which container healthchecks and Prometheus
# make over plain HTTP inside the private network (paths without their leading slash).
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^metrics$"]

# Security headers on every response (SecurityMiddleware, XFrameOptionsMiddleware). The widget is
# a <script> on customer pages, never an iframe, so no page of ours needs to be framed.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

INSTALLED_APPS = [
    # `tenants` comes before django.contrib.auth so that its createsuperuser/changepassword
    # (which run with the tenant scope explicitly disabled) replace Django's.
    "tenants",
    "minirag.dashboard.apps.DashboardAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "servestatic.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "minirag",
    "bots",
    "sources",
    "chat",
    "inbox",
    "webhooks",
    "providers",
]

MIDDLEWARE = [
    # First, so every response (redirects and errors included) carries X-Request-ID and is counted.
    "minirag.metrics.RequestObservabilityMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "minirag.static_files.StaticFilesMiddleware",  # servestatic's, without a bridge per request
    "minirag.cors.WidgetCorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "tenants.middleware.DashboardTenantScopeMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "minirag.urls"
ASGI_APPLICATION = "minirag.asgi.application"
WSGI_APPLICATION = "minirag.wsgi.application"
# Contract paths have no trailing slash; never answer an API call with a redirect.
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------

DATABASES = {
    "default": env.db_url_config(env.str("DATABASE_URL", default="") or f"sqlite:///{DATA_DIR / 'minirag.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    # WAL lets readers proceed while a writer commits; IMMEDIATE takes the write lock up front
    # so concurrent writers queue (up to the timeout) instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    # A pool per process: requests and streamed answers take a connection for each burst of
    # queries and give it back, so hundreds of open streams need only a handful of connections.
    DB_POOL_MAX_SIZE: int = env.int("MINIRAG_DB_POOL_MAX_SIZE", default=20)
    if DB_POOL_MAX_SIZE > 0:
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # required with a pool
        # The pool checks a connection before handing it out, so one the server closed (a restart,
        # a failover) is replaced instead of failing a request (minirag/db.py).
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": DB_POOL_MAX_SIZE,
            "timeout": env.float("MINIRAG_DB_POOL_TIMEOUT_SECONDS", default=10.0),
        }
    else:
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
        DATABASES["default"]["CONN_MAX_AGE"] = env.int("MINIRAG_DB_CONN_MAX_AGE", default=0)

# PostgreSQL row-level security (tenants/rls.py): the app should connect (DATABASE_URL) as a role
# that owns no table and lacks BYPASSRLS; `manage.py migrate` connects as the owner given here,
# re-applies the tenant policies and grants the app role these privileges on every table.
DATABASE_OWNER_URL: str = env.str("MINIRAG_DATABASE_OWNER_URL", default="")
DATABASE_APP_PRIVILEGES: str = env.str("MINIRAG_DATABASE_APP_PRIVILEGES", default="SELECT, INSERT, UPDATE, DELETE")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, queue -----------------------------------------------------------------------------

REDIS_URL: str = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            # One connection pool per process, shared by every request (minirag/redis_cache.py).
            "BACKEND": "minirag.redis_cache.SharedPoolRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("MINIRAG_CACHE_PREFIX", default="minirag"),
            # A hung Redis fails a cache call within a second (rate limits then fail open)
            # instead of holding the request; so does waiting for a free connection of the pool,
            # sized for a process's concurrent requests (a command holds one only while it runs).
            "OPTIONS": {
                "socket_timeout": 1,
                "socket_connect_timeout": 1,
                "pool_class": "redis.BlockingConnectionPool",
                "max_connections": 500,
                "timeout": 1,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL: str = env.str("CELERY_BROKER_URL", default="") or REDIS_URL
# Without a broker (the embedded default) tasks run in-process, in a background thread.
TASKS_IN_PROCESS: bool = (
    env.bool("MINIRAG_TASKS_IN_PROCESS") if env.str("MINIRAG_TASKS_IN_PROCESS", default="") else not CELERY_BROKER_URL
)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A task is acknowledged only once it finished, so a worker that dies mid-task hands it back.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A hung broker fails a publish within seconds (the API answers 503) instead of holding the request.
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_timeout": 5, "socket_connect_timeout": 5}
CELERY_TIMEZONE = "UTC"
# Two queues: `celery` (ingestion, refreshes, the reaper) and `webhooks` (deliveries to customer
# endpoints, which can be slow). A worker started without -Q consumes both; a busy deployment runs
# `celery -A minirag worker -Q webhooks` separately so slow receivers never delay ingestion.
CELERY_TASK_DEFAULT_QUEUE = "celery"
# Each queue is bound under its own routing key, so the broker's bindings say exactly where a
# message goes.
CELERY_TASK_QUEUES = (Queue("celery", routing_key="celery"), Queue("webhooks", routing_key="webhooks"))
CELERY_TASK_ROUTES = {"webhooks.*": {"queue": "webhooks"}}
# Workers log through LOGGING below (JSON in the Docker image) instead of Celery's own format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE = {
    "refresh-due-sources": {"task": "sources.refresh_due_sources", "schedule": 60.0},
    "reap-stuck-sources": {"task": "sources.reap_stuck_sources", "schedule": 120.0},
    "send-due-webhook-deliveries": {"task": "webhooks.send_due_deliveries", "schedule": 10.0},
}
# Embedded mode: how many background threads run tasks, and whether a scheduler thread runs the
# periodic tasks above (the server process starts it; tests and management commands do not).
IN_PROCESS_WORKERS: int = env.int("MINIRAG_IN_PROCESS_WORKERS", default=2)
IN_PROCESS_SCHEDULER: bool = env.bool("MINIRAG_IN_PROCESS_SCHEDULER", default=True)
# Tests only: run in-process tasks synchronously, in the calling thread, when the transaction commits.
TASKS_RUN_INLINE: bool = env.bool("MINIRAG_TASKS_RUN_INLINE", default=False)

# Live events (django-eventstream): across processes through Redis pub/sub when Redis is set.
# Source channels (sources/events.py) plus the chat and inbox channels, which only their own
# readers may open and which keep their events for Last-Event-ID (inbox/events.py).
EVENTSTREAM_CHANNELMANAGER_CLASS = "inbox.events.ChannelManager"
EVENTSTREAM_STORAGE_CLASS = "inbox.events.CacheEventStorage"
if REDIS_URL:
    _redis = urlsplit(REDIS_URL)
    EVENTSTREAM_REDIS = {
        "host": _redis.hostname or "127.0.0.1",
        "port": _redis.port or 6379,
        "db": int((_redis.path or "/0").lstrip("/") or 0),
        "password": _redis.password,
        "ssl": _redis.scheme == "rediss",
    }

# --- Vectors ----------------------------------------------------------------------------------

QDRANT_URL: str = env.str("QDRANT_URL", default="")
QDRANT_API_KEY: str = env.str("QDRANT_API_KEY", default="")
# Local mode (no server): a directory, or ":memory:" (tests).
QDRANT_PATH: str = env.str("QDRANT_PATH", default="") or str(DATA_DIR / "qdrant")

QDRANT_COLLECTION: str = env.str("QDRANT_COLLECTION", default="minirag_chunks")

# --- Outbound HTTP (every fetch goes through minirag/safe_http.py) ---------------------------

# Refuse destinations that resolve to private, loopback, link-local or metadata addresses.
# true only for local development and tests.
ALLOW_PRIVATE_NETWORKS: bool = env.bool("MINIRAG_ALLOW_PRIVATE_NETWORKS", default=False)
# Exceptions to the rule above, as CIDRs (e.g. an internal search service at 10.0.5.0/24).
SSRF_ALLOWED_NETWORKS: list[str] = env.list("MINIRAG_SSRF_ALLOWED_NETWORKS", default=[])
FETCH_TIMEOUT_SECONDS: float = env.float("MINIRAG_FETCH_TIMEOUT_SECONDS", default=15.0)
FETCH_MAX_BYTES: int = env.int("MINIRAG_FETCH_MAX_BYTES", default=10 * 1024 * 1024)
FETCH_USER_AGENT: str = env.str("MINIRAG_FETCH_USER_AGENT", default="MiniRAGBot/1.0 (+https://github.com/minirag)")

# --- Ingestion --------------------------------------------------------------------------------

UPLOAD_MAX_BYTES: int = env.int("MINIRAG_UPLOAD_MAX_BYTES", default=10 * 1024 * 1024)
EMBEDDING_BATCH_SIZE: int = env.int("MINIRAG_EMBEDDING_BATCH_SIZE", default=32)
# Embedding models on the network (not the offline local/ ones): inputs per request, and requests in
# flight at once per ingestion (minirag/model_gateway.py embed_texts).
REMOTE_EMBEDDING_BATCH_SIZE: int = env.int("MINIRAG_REMOTE_EMBEDDING_BATCH_SIZE", default=128)
EMBEDDING_CONCURRENCY: int = env.int("MINIRAG_EMBEDDING_CONCURRENCY", default=4)
# Vectors of recently asked questions kept per process (chat/retrieval.py QuestionVectors; 0 = none):
# a repeated question is not embedded again.
QUESTION_VECTORS_CACHED: int = env.int("MINIRAG_QUESTION_VECTORS_CACHED", default=2048)
# onnxruntime threads for the offline embedder (0 = one per core).
LOCAL_EMBEDDER_THREADS: int = env.int("MINIRAG_LOCAL_EMBEDDER_THREADS", default=0)
# A run that has shown no progress for this long is presumed dead (worker killed) and requeued.
INGEST_STALE_AFTER_SECONDS: int = env.int("MINIRAG_INGEST_STALE_AFTER_SECONDS", default=600)
# Attempts per ingestion (transient failures and interrupted runs) before the source is marked error.
INGEST_MAX_ATTEMPTS: int = env.int("MINIRAG_INGEST_MAX_ATTEMPTS", default=5)
# Crawls: defaults and hard ceilings for `max_pages` / `max_depth`, and the pause between requests.
CRAWL_DEFAULT_MAX_PAGES: int = env.int("MINIRAG_CRAWL_DEFAULT_MAX_PAGES", default=50)
CRAWL_MAX_PAGES_LIMIT: int = env.int("MINIRAG_CRAWL_MAX_PAGES_LIMIT", default=1000)
CRAWL_DELAY_SECONDS: float = env.float("MINIRAG_CRAWL_DELAY_SECONDS", default=0.5)
# Most characters of text one file or page may yield (docs/sources.md, "Limits and hostile input");
# by default as many as the largest upload holds, so any plain-text file that may be uploaded fits.
EXTRACT_MAX_CHARS: int = env.int("MINIRAG_EXTRACT_MAX_CHARS", default=UPLOAD_MAX_BYTES)
# OCR of scanned PDF pages and image uploads (sources/extraction/ocr.py) with Debian's tesseract-ocr.
# Optional: without the binary, scans and images end in `error` saying OCR is not installed.
OCR_ENABLED: bool = env.bool("MINIRAG_OCR_ENABLED", default=True)
OCR_TESSERACT_CMD: str = env.str("MINIRAG_OCR_TESSERACT_CMD", default="tesseract")
# Tesseract language codes joined by "+" (each needs its tesseract-ocr-<code> package).
OCR_LANGUAGES: str = env.str("MINIRAG_OCR_LANGUAGES", default="eng+deu+fra")
if not re.fullmatch(r"[A-Za-z0-9_]+(?:\+[A-Za-z0-9_]+)*", OCR_LANGUAGES):
    raise ImproperlyConfigured("MINIRAG_OCR_LANGUAGES must be tesseract language codes joined by '+', e.g. eng+deu.")
# The OCR work budget of one document: pages read and wall-clock seconds (a dense A4 page at 300
# DPI takes ~3 s on one core), so a 500-page scan cannot occupy a worker for hours.
OCR_MAX_PAGES: int = env.int("MINIRAG_OCR_MAX_PAGES", default=200)
OCR_MAX_SECONDS: int = env.int("MINIRAG_OCR_MAX_SECONDS", default=900)

# --- Webhooks ---------------------------------------------------------------------------------

# One delivery attempt may take this long (connect, TLS and response included); no redirects.
WEBHOOK_TIMEOUT_SECONDS: float = env.float("MINIRAG_WEBHOOK_TIMEOUT_SECONDS", default=10.0)
# `POST /v1/webhooks/{id}/test` waits at most this long for the receiver.
WEBHOOK_TEST_TIMEOUT_SECONDS: float = env.float("MINIRAG_WEBHOOK_TEST_TIMEOUT_SECONDS", default=5.0)
# Attempts per delivery; retries wait RETRY_BASE * 3^(n-1) seconds ±25% (30 s, 1½ min, … ≈ 6 h).
WEBHOOK_MAX_ATTEMPTS: int = env.int("MINIRAG_WEBHOOK_MAX_ATTEMPTS", default=8)
WEBHOOK_RETRY_BASE_SECONDS: float = env.float("MINIRAG_WEBHOOK_RETRY_BASE_SECONDS", default=30.0)
# An endpoint is disabled after this many failed attempts in a row that span at least
# WEBHOOK_DISABLE_AFTER_SECONDS (so a short outage of a busy endpoint does not disable it).
WEBHOOK_DISABLE_AFTER_FAILURES: int = env.int("MINIRAG_WEBHOOK_DISABLE_AFTER_FAILURES", default=10)
WEBHOOK_DISABLE_AFTER_SECONDS: int = env.int("MINIRAG_WEBHOOK_DISABLE_AFTER_SECONDS", default=6 * 3600)

# --- Auth -------------------------------------------------------------------------------------

AUTH_USER_MODEL = "tenants.User"
AUTHENTICATION_BACKENDS = ["tenants.backends.TenantEmailBackend"]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
]
# Email is unique per tenant, not globally; TenantEmailBackend resolves the tenant.
SILENCED_SYSTEM_CHECKS = ["auth.W004"]

JWT_SECRET: str = env.str("MINIRAG_JWT_SECRET", default="")
if len(JWT_SECRET.strip()) < 32:
    raise ImproperlyConfigured(
        "MINIRAG_JWT_SECRET must be set to a random string of at least 32 characters "
        "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)."
    )
JWT_TTL_SECONDS: int = env.int("MINIRAG_JWT_TTL_SECONDS", default=8 * 3600)

# Fernet keys for secrets at rest, newest first; older keys stay readable until `rotate_keys`.
ENCRYPTION_KEYS: list[str] = env.list("MINIRAG_ENCRYPTION_KEYS", default=[])
if not ENCRYPTION_KEYS:
    raise ImproperlyConfigured(
        "MINIRAG_ENCRYPTION_KEYS must hold at least one Fernet key "
        "(e.g. `python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)."
    )

ALLOW_SIGNUP: bool = env.bool("MINIRAG_ALLOW_SIGNUP", default=True)
# How often a token's last_used_at may be written: a read-mostly auth path, not a write per request.
TOKEN_LAST_USED_RESOLUTION_SECONDS = 60
# How long an API token's rows (token, tenant, user) may be reused without reading them again
# (tenants/credential_cache.py: any change through the ORM drops them everywhere at once; this bounds
# a change made in SQL). 0: read them on every request.
TOKEN_CACHE_SECONDS: float = env.float("MINIRAG_TOKEN_CACHE_SECONDS", default=10.0)

# --- API --------------------------------------------------------------------------------------

MAX_JSON_BODY_BYTES: int = env.int("MINIRAG_MAX_JSON_BODY_BYTES", default=5 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_JSON_BODY_BYTES
THROTTLE_RATES: dict[str, str] = {
    "signup": env.str("MINIRAG_SIGNUP_RATE", default="10/hour"),
    "login": env.str("MINIRAG_LOGIN_RATE", default="20/minute"),
    # Wrong current passwords per account (changing one's own email or password), not per address.
    "current_password": env.str("MINIRAG_CURRENT_PASSWORD_RATE", default="10/hour"),
    # Retrieval tests per tenant (API and dashboard together): each one embeds a question.
    "retrieval_test": env.str("MINIRAG_RETRIEVAL_TEST_RATE", default="30/minute"),
    # Model tests per tenant (API and dashboard together): each one calls the bot's models.
    "model_test": env.str("MINIRAG_MODEL_TEST_RATE", default="10/minute"),
}

# Chat messages through bot (widget) tokens, counted in sliding windows in the shared cache
# (Redis in production, so every process counts together). 0 = unlimited. A token can override
# the token and visitor limits (PATCH /v1/api-tokens/{id}); the per-address limit catches one
# client rotating visitor ids.
CHAT_RATE_LIMITS: dict[str, int] = {
    "token_per_minute": env.int("MINIRAG_BOT_TOKEN_MESSAGES_PER_MINUTE", default=120),
    "token_per_day": env.int("MINIRAG_BOT_TOKEN_MESSAGES_PER_DAY", default=5000),
    "visitor_per_minute": env.int("MINIRAG_VISITOR_MESSAGES_PER_MINUTE", default=10),
    "visitor_per_day": env.int("MINIRAG_VISITOR_MESSAGES_PER_DAY", default=200),
    "address_per_minute": env.int("MINIRAG_ADDRESS_MESSAGES_PER_MINUTE", default=30),
    "address_per_day": env.int("MINIRAG_ADDRESS_MESSAGES_PER_DAY", default=1000),
}

# --- Widget -----------------------------------------------------------------------------------

# The address browsers reach this server at (https://rag.example.com), used in embed snippets.
# Empty: taken from each request (right behind a TLS proxy only with MINIRAG_BEHIND_TLS_PROXY).
PUBLIC_URL: str = env.str("MINIRAG_PUBLIC_URL", default="").rstrip("/")
# /widget-demo/: a page showing the widget with the demo tenant's bot. On in embedded mode (make
# run) and with DEBUG; off in production.
WIDGET_DEMO_ENABLED: bool = env.bool(
    "MINIRAG_WIDGET_DEMO", default=DEBUG or DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
)
# How long browsers may cache the widget script at its stable URL before revalidating (ETag).
WIDGET_SCRIPT_MAX_AGE_SECONDS: int = env.int("MINIRAG_WIDGET_SCRIPT_MAX_AGE_SECONDS", default=300)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.authentication.BearerAuthentication",
        "tenants.authentication.TenantSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tenants.permissions.TenantRolePermission"],
    "DEFAULT_PARSER_CLASSES": [
        "minirag.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "minirag.error_handlers.api_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "minirag.pagination.ArrayLimitOffsetPagination",
    "NUM_PROXIES": env.int("MINIRAG_NUM_PROXIES", default=0),
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # `?format=` is an API parameter here (exports: json or csv), not DRF's renderer switch.
    "URL_FORMAT_OVERRIDE": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "MiniRAG API",
    "DESCRIPTION": (
        "Multi-tenant, retrieval-grounded chat backend. Authenticate with "
        "`Authorization: Bearer <token>`: an API token (`nrag_live_...`) or a JWT from "
        "`POST /v1/auth/login`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True},
    "ENUM_NAME_OVERRIDES": {
        "HealthStatusEnum": ["ok", "degraded"],
        "ComponentStatusEnum": ["ok", "error"],
        "UserRoleEnum": "tenants.models.Role",
        "MessageRoleEnum": "chat.models.Message.Role",
        "HandoffEnum": "bots.models.Handoff",
        "ChatHandlingEnum": "chat.models.Chat.Handling",
        "ModelCheckStatusEnum": ["ok", "failed"],
    },
}

# --- Models -----------------------------------------------------------------------------------

_HAS_OPENAI_KEY = bool(os.environ.get("OPENAI_API_KEY"))
# With no provider key the product still works end to end on the offline models.
DEFAULT_CHAT_MODEL: str = env.str(
    "MINIRAG_DEFAULT_CHAT_MODEL", default="gpt-4o-mini" if _HAS_OPENAI_KEY else "local/extractive"
)
DEFAULT_EMBEDDING_MODEL: str = env.str(
    "MINIRAG_DEFAULT_EMBEDDING_MODEL",
    default="text-embedding-3-small" if _HAS_OPENAI_KEY else "local/minilm",
)
# Timeouts of a model call: the whole answer, and the longest silence inside a streamed one.
LLM_TIMEOUT_SECONDS: float = env.float("MINIRAG_LLM_TIMEOUT_SECONDS", default=120.0)
LLM_STREAM_IDLE_SECONDS: float = env.float("MINIRAG_LLM_STREAM_IDLE_SECONDS", default=60.0)
# Model calls are outbound requests like any other: a provider endpoint on a private, loopback or reserved
# address is refused (when a bot is saved, and at every connection) unless it is listed here, as CIDRs and
# host names: e.g. an on-premises Ollama, "127.0.0.1/32,ollama". See minirag/safe_http/egress.py.
MODEL_ALLOWED_NETWORKS: list[str] = env.list("MINIRAG_MODEL_ALLOWED_NETWORKS", default=[])
# Admission control for chat turns (chat/admission.py). At most TURN_SLOTS turns are in their
# CPU-bound phase at once (storing the question, embedding it, the search, the prompt); others
# wait in arrival order; the model call runs outside the gate. Default: the cores this process may
# use; 0 turns the gate off. Past TURN_QUEUE_LIMIT waiting turns, a new one is refused at once
# with 503 and Retry-After (0: never wait, refuse whenever every slot is taken).
TURN_SLOTS: int = env.int(
    "MINIRAG_TURN_SLOTS",
    default=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1),
)
TURN_QUEUE_LIMIT: int = env.int("MINIRAG_TURN_QUEUE_LIMIT", default=100 * max(1, TURN_SLOTS))
if TURN_SLOTS < 0 or TURN_QUEUE_LIMIT < 0:
    raise ImproperlyConfigured("MINIRAG_TURN_SLOTS and MINIRAG_TURN_QUEUE_LIMIT must be 0 or more.")
# Characters of retrieved context put in a prompt (the best-ranked chunks first).
MAX_CONTEXT_CHARS: int = env.int("MINIRAG_MAX_CONTEXT_CHARS", default=12_000)
# Prices per million tokens for models LiteLLM's price list lacks, as JSON:
# {"ollama/llama3": [0, 0], "my-model": [0.5, 1.5]}  (prompt, completion).
MODEL_PRICES: dict[str, list[float]] = env.json("MINIRAG_MODEL_PRICES", default={})
# LiteLLM otherwise downloads its price list at import time.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

# --- i18n, static -----------------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("MINIRAG_STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
# Embedded mode serves straight from the app directories (no collectstatic step);
# the production image runs collectstatic and turns this off.
SERVESTATIC_USE_FINDERS: bool = env.bool("MINIRAG_STATIC_USE_FINDERS", default=True)
SERVESTATIC_AUTOREFRESH = DEBUG
if not SERVESTATIC_USE_FINDERS:
    # Collected files get content-hashed names (cached forever by browsers) and pre-compressed
    # gzip siblings, all served by servestatic from STATIC_ROOT.
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "servestatic.storage.CompressedManifestStaticFilesStorage"},
    }

# --- Logging ----------------------------------------------------------------------------------

LOG_LEVEL: str = env.str("MINIRAG_LOG_LEVEL", default="INFO").upper()
# `plain` for people, `json` (one object per line, see minirag/logs.py) for log collectors.
LOG_FORMAT: str = env.str("MINIRAG_LOG_FORMAT", default="plain").lower()
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured("MINIRAG_LOG_FORMAT must be 'plain' or 'json'.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "minirag.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "LiteLLM": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
    },
}

# --- Operations: metrics, error reporting -----------------------------------------------------

# `GET /metrics` (Prometheus text format: request counts and latency by route) is off unless this
# token is set; scrapers then send `Authorization: Bearer <token>`. Process-level numbers only.
METRICS_TOKEN: str = env.str("MINIRAG_METRICS_TOKEN", default="")
if METRICS_TOKEN and len(METRICS_TOKEN) < 24:
    raise ImproperlyConfigured("MINIRAG_METRICS_TOKEN must be at least 24 characters long (or empty: metrics off).")

# Errors (and, at the given sample rate, performance traces) go to Sentry only when a DSN is set.
# Request bodies, local variables and personal data are never sent: they may hold visitors'
# messages, tenants' documents or decrypted provider keys.
SENTRY_DSN: str = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    import sentry_sdk

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        environment=env.str("SENTRY_ENVIRONMENT", default="production"),
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
        send_default_pii=False,
        max_request_body_size="never",
        include_local_variables=False,
    )
