"""The demo tenant `make run` seeds (manage.py seed_demo) and the /widget-demo/ page shows."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings

from bots.models import BotProfile
from tenants.models import Tenant

DEMO_SLUG = "demo"
DEMO_OWNER_EMAIL = "owner@demo.minirag.local"
OPERATOR_EMAIL = "admin@minirag.local"
DEMO_BOT_NAME = "Demo assistant"
DEMO_TOKEN_NAME = "make run demo token"
DEMO_WIDGET_TOKEN_NAME = "make run demo widget"


def demo_knowledge_files() -> list[Path]:
    """What the demo bot knows, one text source per file: the README and every `docs/*.md`."""
    base = Path(settings.BASE_DIR)
    return [base / "README.md", *sorted((base / "docs").glob("*.md"))]


def demo_widget_origins(base_url: str) -> list[str]:
    """The demo server's origin as typed, plus its twin (127.0.0.1 ↔ localhost), so the demo page
    works whichever of the two a browser is pointed at."""
    parts = urlsplit(base_url)
    origins = [f"{parts.scheme}://{parts.netloc}"]
    twins = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}
    if parts.hostname in twins:
        port = f":{parts.port}" if parts.port else ""
        origins.append(f"{parts.scheme}://{twins[parts.hostname]}{port}")
    return origins


def demo_tenant() -> Tenant | None:
    return Tenant.objects.filter(slug=DEMO_SLUG).first()


def demo_bot(tenant: Tenant) -> BotProfile | None:
    """The demo tenant's bot (inside that tenant's scope), or None before seeding."""
    return BotProfile.objects.filter(tenant=tenant, name=DEMO_BOT_NAME).order_by("created_at").first()
