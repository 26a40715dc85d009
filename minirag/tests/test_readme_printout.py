"""README.md shows what `make run` prints (manage.py seed_demo). Here the command runs as `make
run` runs it — embedded mode, port 8000, `var/` under the working directory — and the README's
block must equal the printout line for line, with placeholders only where a run differs: the
generated passwords, the token, the bot's id, the chunk count (it follows the docs' length) and
the time taken. The number of documents is the real one, so adding a file to docs/ means updating
the README (the failure says which block to paste)."""

from __future__ import annotations

import difflib
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command

from minirag.demo import DEMO_SLUG, demo_bot, demo_knowledge_files
from minirag.management.commands.seed_demo import knowledge_summary, summary_lines
from tenants.models import Tenant
from tenants.tenancy import tenant_scope

pytestmark = pytest.mark.django_db

README = Path(settings.BASE_DIR) / "README.md"
BASE_URL = "http://127.0.0.1:8000"  # `make run` with its default PORT
TEXT_BLOCK = re.compile(r"^```text\n(.*?)^```$", re.S | re.M)
KNOWLEDGE = re.compile(r"^(  Knowledge:     \d+ documents), \d+ chunks \(checked in \d+\.\d s\)$")


def readme_printout() -> list[str]:
    blocks = [block for block in TEXT_BLOCK.findall(README.read_text(encoding="utf-8")) if "demo is ready" in block]
    assert len(blocks) == 1, "README.md shows seed_demo's printout in exactly one ```text block"
    return blocks[0].splitlines()


def with_placeholders(lines: list[str], *, stored: dict[str, str], bot_id: str) -> list[str]:
    shown = {
        stored["api_token"]: "nrag_live_...",
        stored["operator_password"]: "<generated>",
        stored["owner_password"]: "<generated>",
        bot_id: "<id>",
    }
    out = []
    for line in lines:
        for real, placeholder in shown.items():
            line = line.replace(real, placeholder)
        out.append(KNOWLEDGE.sub(r"\1, <chunks> chunks (checked in <seconds> s)", line))
    return out


@pytest.fixture
def as_make_run(settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`make run`'s setting: embedded mode (no Redis, background work in this process, the widget
    demo on), run from the repository's root with the data directory `var/` below it."""
    monkeypatch.chdir(tmp_path)
    settings.DATA_DIR = tmp_path / "var"
    settings.REDIS_URL = ""
    settings.TASKS_IN_PROCESS = True
    settings.WIDGET_DEMO_ENABLED = True
    return settings.DATA_DIR


def test_the_readme_shows_what_make_run_prints(as_make_run: Path) -> None:
    out = io.StringIO()
    # The documents themselves are not ingested here (embedding them takes most of a minute on
    # two cores); what their line says is built by the same function, from the same file list.
    call_command("seed_demo", "--skip-knowledge", "--base-url", BASE_URL, stdout=out, stderr=io.StringIO())
    tenant = Tenant.objects.get(slug=DEMO_SLUG)
    with tenant_scope(tenant):
        bot = demo_bot(tenant)
    assert bot is not None
    stored = json.loads((as_make_run / "demo-credentials.json").read_text())
    assert out.getvalue().splitlines() == summary_lines(BASE_URL, tenant, bot, stored, knowledge="")

    knowledge = knowledge_summary(documents=len(demo_knowledge_files()), chunks=0, seconds=0.0)
    expected = with_placeholders(
        summary_lines(BASE_URL, tenant, bot, stored, knowledge), stored=stored, bot_id=str(bot.pk)
    )
    shown = readme_printout()
    assert shown == expected, (
        "README.md's printout of `make run` differs from what seed_demo prints. Paste this as the "
        '```text block after "It prints what you need:":\n\n'
        + "\n".join(expected)
        + "\n\nDifferences (- README, + seed_demo):\n"
        + "\n".join(difflib.unified_diff(shown, expected, "README.md", "seed_demo", lineterm=""))
    )
    # The placeholders stand for real values of this run, which the README never shows.
    assert any(stored["api_token"] in line for line in summary_lines(BASE_URL, tenant, bot, stored, knowledge))
    assert not any(secret in "\n".join(shown) for secret in stored.values())
