"""`seed_demo`: the demo tenant, owner, bot, token and knowledge that `make run` starts with.

Idempotent: a second run changes nothing and prints the same credentials. The demo bot knows the
project's own README and docs: each file is a text source, re-ingested only when it changed
(unchanged chunks cost no embedding). Generated passwords and the demo API token are kept in
`<MINIRAG_DATA_DIR>/demo-credentials.json` (mode 0600), the only place a raw token is ever
written, and only for this local demo.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser
from django.db import transaction
from django.test.utils import override_settings

from bots.models import BotProfile
from bots.services import bot_profile_create, bot_profile_update
from minirag.demo import (
    DEMO_BOT_NAME,
    DEMO_OWNER_EMAIL,
    DEMO_SLUG,
    DEMO_TOKEN_NAME,
    DEMO_WIDGET_TOKEN_NAME,
    OPERATOR_EMAIL,
    demo_bot,
    demo_knowledge_files,
    demo_widget_origins,
)
from minirag.errors import ApplicationError, InvalidInputError
from minirag.management.base import MiniRAGCommand, command_error
from sources.models import Source, SourceStatus
from sources.services import source_create, source_ingest_request, source_update
from tenants.models import ApiToken, Role, Tenant, User
from tenants.services import api_token_create, api_token_update, normalize_origin, tenant_bootstrap
from tenants.tenancy import tenant_scope, tenant_scope_disabled
from tenants.tokens import hash_api_token

BASE_DIR = Path(settings.BASE_DIR)
# The printout's rule above and below (README.md shows the printout and a test compares them).
RULE = "─" * 72


class Command(MiniRAGCommand):
    help = """\
Create the demo that `make run` starts with, once: a platform operator for /dashboard/, the
demo tenant with its owner, an API token, a bot whose knowledge is MiniRAG's own README and
docs (ingested here; unchanged files are skipped), and a widget token for /widget-demo/.

Idempotent: a second run changes nothing and prints the same credentials. Prints the URLs
(API, docs, health, dashboard, widget demo), the logins, the demo API token and curl commands to
try. Generated passwords and the token are kept in $MINIRAG_DATA_DIR/demo-credentials.json
(mode 0600) for this local demo only; never run it against a production database.

Example:
  python manage.py seed_demo --base-url http://127.0.0.1:8000
"""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--base-url", default="http://127.0.0.1:8000", help="Where the server will listen (for the printout)."
        )
        parser.add_argument("--skip-knowledge", action="store_true", help="Do not (re)ingest the demo documents.")

    def handle(self, *args: Any, **options: Any) -> None:
        _check_base_url(options["base_url"])
        try:
            self._seed(options)
        except (ApplicationError, ValidationError) as exc:
            raise command_error(exc) from exc

    def _seed(self, options: dict[str, Any]) -> None:
        credentials_path = Path(settings.DATA_DIR) / "demo-credentials.json"
        stored = _read_credentials(credentials_path)
        with transaction.atomic():
            operator_password = _ensure_operator(stored)
            tenant, owner_password, raw_token = _ensure_demo_tenant(stored)
            with tenant_scope(tenant):
                bot = _ensure_demo_bot(tenant)
                _ensure_demo_widget_token(tenant, bot, options["base_url"])
        stored.update(
            {"operator_password": operator_password, "owner_password": owner_password, "api_token": raw_token}
        )
        _write_credentials(credentials_path, stored)
        knowledge = "" if options["skip_knowledge"] else self._ensure_knowledge(tenant, bot)
        self._print_summary(options["base_url"].rstrip("/"), tenant, bot, stored, knowledge)

    def _ensure_knowledge(self, tenant: Tenant, bot: BotProfile) -> str:
        """The README and docs as text sources of the demo bot, ingested here and now."""
        started = time.perf_counter()
        files = demo_knowledge_files()
        with tenant_scope(tenant), override_settings(TASKS_IN_PROCESS=True, TASKS_RUN_INLINE=True):
            for path in files:
                name = str(path.relative_to(BASE_DIR))
                content = path.read_text(encoding="utf-8")
                source = Source.objects.filter(tenant=tenant, bot_profile=bot, name=name, parent__isnull=True).first()
                if source is None:
                    source = source_create(
                        tenant=tenant,
                        bot_profile=bot,
                        name=name,
                        source_type="text",
                        content=content,
                        description="MiniRAG documentation (seeded by make run).",
                    )
                elif source.content != content or not source.is_active:
                    source = source_update(tenant=tenant, source=source, content=content, is_active=True)
                elif source.status == SourceStatus.READY:
                    continue
                source_ingest_request(tenant=tenant, source=source)
            sources = Source.objects.filter(tenant=tenant, bot_profile=bot, is_active=True)
            failed = [s.name for s in sources if s.status == SourceStatus.ERROR]
            chunks = sum(s.chunk_count for s in sources)
        if failed:
            self.stderr.write(f"Demo documents that failed to ingest: {', '.join(failed)}")
        return knowledge_summary(documents=len(files), chunks=chunks, seconds=time.perf_counter() - started)

    def _print_summary(
        self, base: str, tenant: Tenant, bot: BotProfile, stored: dict[str, str], knowledge: str
    ) -> None:
        for index, line in enumerate(summary_lines(base, tenant, bot, stored, knowledge)):
            self.stdout.write(self.style.SUCCESS(line) if index == 1 else line)


def knowledge_summary(*, documents: int, chunks: int, seconds: float) -> str:
    return f"{documents} documents, {chunks} chunks (checked in {seconds:.1f} s)"


def summary_lines(base: str, tenant: Tenant, bot: BotProfile, stored: dict[str, str], knowledge: str) -> list[str]:
    """What seed_demo prints (without colour): README.md shows it, and a test compares the two
    line by line, so change both together."""
    mode = "embedded (SQLite, local Qdrant, in-process tasks)" if not settings.REDIS_URL else "production services"
    auth = f"-H 'Authorization: Bearer {stored['api_token']}' -H 'Content-Type: application/json'"
    question = json.dumps({"bot_profile_id": str(bot.pk), "message": "How are API tokens stored?"})
    streamed = json.dumps(
        {"bot_profile_id": str(bot.pk), "message": "What happens when I delete a source?", "stream": True}
    )
    lines = [
        RULE,
        f"MiniRAG demo is ready — {mode}",
        f"  API:           {base}/v1/",
        f"  API docs:      {base}/v1/docs",
        f"  Health:        {base}/v1/system/health",
        f"  Dashboard:     {base}/dashboard/   login {OPERATOR_EMAIL} / {stored['operator_password']}",
        f"  Demo owner:    {DEMO_OWNER_EMAIL} / {stored['owner_password']} (tenant '{tenant.slug}')",
        f"  Demo bot:      {bot.name} ({bot.pk}), model {bot.model}",
    ]
    if knowledge:
        lines.append(f"  Knowledge:     {knowledge}")
    lines += [
        f"  API token:     {stored['api_token']}",
        "  Ask the demo bot:",
        f"    curl -s {base}/v1/chat {auth} -d '{question}'",
        f"    curl -sN {base}/v1/chat {auth} -d '{streamed}'",
    ]
    if settings.WIDGET_DEMO_ENABLED:
        lines.append(f"  Widget demo:   {base}/widget-demo/   (the chat widget on a sample page)")
    lines.append(f"  (credentials kept in {_shown_path(Path(settings.DATA_DIR) / 'demo-credentials.json')})")
    if settings.TASKS_IN_PROCESS:
        lines.append("  Background work runs in this process. With REDIS_URL set, run `make worker` and `make beat`.")
    lines.append(RULE)
    return lines


def _shown_path(path: Path) -> str:
    """Relative to the working directory when it is inside it: `var/demo-credentials.json` under
    `make run`, which runs from the repository's root."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _check_base_url(base_url: str) -> None:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CommandError(f"--base-url: '{base_url}' is not an http(s) URL such as http://127.0.0.1:8000.")
    try:
        for origin in demo_widget_origins(base_url):
            normalize_origin(origin)
    except (InvalidInputError, ValueError):
        raise CommandError(f"--base-url: '{base_url}' has an invalid host or port.") from None


def _read_credentials(path: Path) -> dict[str, str]:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _write_credentials(path: Path, values: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(values, handle, indent=2)


def _new_password() -> str:
    return secrets.token_urlsafe(12)


def _ensure_operator(stored: dict[str, str]) -> str:
    with tenant_scope_disabled("seed_demo: the platform operator belongs to no tenant"):
        operator = User.objects.filter(email=OPERATOR_EMAIL, tenant__isnull=True).first()
        password = stored.get("operator_password")
        if operator is None:
            password = password or _new_password()
            User.objects.create_superuser(OPERATOR_EMAIL, password, display_name="Platform operator")
        elif not password or not operator.check_password(password):
            password = _new_password()  # the stored copy is gone or stale: reset, it is a demo account
            operator.set_password(password)
            operator.save(update_fields=["password"])
        return password


def _ensure_demo_tenant(stored: dict[str, str]) -> tuple[Tenant, str, str]:
    tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
    if tenant is None:
        password = stored.get("owner_password") or _new_password()
        result = tenant_bootstrap(
            name="Demo Company",
            slug=DEMO_SLUG,
            owner_email=DEMO_OWNER_EMAIL,
            owner_password=password,
            owner_display_name="Demo Owner",
        )
        with tenant_scope(result.tenant):
            result.api_token.name = DEMO_TOKEN_NAME
            result.api_token.save(update_fields=["name"])
        return result.tenant, password, result.raw_token

    with tenant_scope(tenant):
        owner = User.objects.get(tenant=tenant, email=DEMO_OWNER_EMAIL)
        password = stored.get("owner_password")
        if not password or not owner.check_password(password):
            password = _new_password()
            owner.set_password(password)
            owner.save(update_fields=["password"])
        raw_token = stored.get("api_token", "")
        usable = ApiToken.objects.filter(
            tenant=tenant, token_hash=hash_api_token(raw_token), is_active=True, expires_at__isnull=True
        ).exists()
        if not usable:
            _token, raw_token = api_token_create(tenant=tenant, user=owner, name=DEMO_TOKEN_NAME)
        if owner.role != Role.OWNER or not owner.is_active:
            owner.role, owner.is_active = Role.OWNER, True
            owner.save(update_fields=["role", "is_active"])
    return tenant, password, raw_token


# The demo widget's look, stored on the bot (the dashboard's "Widget appearance"), not in the page.
DEMO_WIDGET = {
    "title": "MiniRAG demo",
    "welcome_message": "Hi! I answer questions about MiniRAG from its documentation, with sources.",
    "starter_questions": [
        "How are API tokens stored?",
        "How do I run the tests?",
        "What happens when I delete a source?",
    ],
}


def _ensure_demo_bot(tenant: Tenant) -> BotProfile:
    bot = demo_bot(tenant)
    if bot is not None:
        if not bot.widget:  # made before widget settings were stored on bots
            bot = bot_profile_update(tenant=tenant, bot=bot, widget=DEMO_WIDGET)
        return bot
    return bot_profile_create(
        tenant=tenant,
        name=DEMO_BOT_NAME,
        description="Answers questions about MiniRAG from its own documentation.",
        system_prompt=("You are the MiniRAG demo assistant. Answer from the provided documentation only and cite it."),
        temperature=0.2,
        widget=DEMO_WIDGET,
    )


def _ensure_demo_widget_token(tenant: Tenant, bot: BotProfile, base_url: str) -> None:
    """A bot token for /widget-demo/, allowed from the demo server's own origins."""
    origins = demo_widget_origins(base_url)
    token = (
        ApiToken.objects.filter(tenant=tenant, bot_profile=bot, name=DEMO_WIDGET_TOKEN_NAME, is_active=True)
        .exclude(raw_token_ciphertext="")
        .first()
    )
    owner = User.objects.get(tenant=tenant, email=DEMO_OWNER_EMAIL)
    if token is None:
        api_token_create(
            tenant=tenant, user=owner, name=DEMO_WIDGET_TOKEN_NAME, bot_profile=bot, allowed_origins=origins
        )
    elif not set(origins) <= set(token.allowed_origins):  # served on another port this time
        api_token_update(tenant=tenant, actor=owner, token=token, allowed_origins=[*token.allowed_origins, *origins])
