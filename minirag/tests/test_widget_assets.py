"""The widget's scripts (the one every page loads, and the second file it loads itself when needed) at
their two URLs each, and the /widget-demo/ page that `make run` links to."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings

from minirag.demo import DEMO_WIDGET_TOKEN_NAME
from tenants.models import ApiToken
from tenants.tenancy import tenant_scope_disabled

WIDGET_DIR = Path(__file__).resolve().parents[2] / "static" / "widget"
WIDGET = WIDGET_DIR / "minirag-widget.js"
# Loaded by the widget itself, from next to it, when the dialog opens (or for a German or French page).
WIDGET_EXTRA = WIDGET_DIR / "minirag-widget-extra.js"
SCRIPTS = {"minirag-widget.js": WIDGET, "minirag-widget-extra.js": WIDGET_EXTRA}
FORBIDDEN = ("import ", "require(", "innerHTML", "insertAdjacentHTML", "outerHTML", "eval(", "new Function")


def test_the_widget_is_a_small_dependency_free_script() -> None:
    source = WIDGET.read_text(encoding="utf-8")
    # What every page of a customer's site loads: the launcher, the dialog and the conversation's shell.
    assert len(source.encode()) <= 40_000, "the widget script must stay within 40 KB uncompressed"
    assert len(gzip.compress(source.encode())) <= 14_000
    extra = WIDGET_EXTRA.read_text(encoding="utf-8")
    # The second file (the conversation, talking to a person, the other languages) is loaded once a
    # visitor opens the chat; together they stay small too.
    assert len(extra.encode()) <= 40_000, "the widget's second file must stay within 40 KB uncompressed"
    assert len(gzip.compress(extra.encode())) <= 14_000
    assert len(source.encode()) + len(extra.encode()) <= 76_000
    for text in (source, extra):
        for dependency in FORBIDDEN:
            assert dependency not in text, dependency
    # The widget loads the second file by its name, from next to itself.
    assert '"minirag-widget-extra.js"' in source and "window.MiniRAGWidgetExtra" in extra


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_the_stable_url_serves_it_with_revalidation(client, name: str) -> None:
    url = f"/dashboard/widget/{name}"
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert response["Cache-Control"] == "public, max-age=300"
    assert response["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response.content == SCRIPTS[name].read_bytes()
    etag = response["ETag"]
    again = client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b""
    compressed = client.get(url, HTTP_ACCEPT_ENCODING="gzip")
    assert compressed["Content-Encoding"] == "gzip"
    assert gzip.decompress(compressed.content) == SCRIPTS[name].read_bytes()
    assert len(compressed.content) < len(response.content) / 2
    assert client.post(url).status_code == 405


def test_the_two_scripts_have_their_own_versions(client) -> None:
    first = client.get("/dashboard/widget/minirag-widget.js")["ETag"]
    second = client.get("/dashboard/widget/minirag-widget-extra.js")["ETag"]
    assert first != second


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_it_is_also_a_static_file(client, name: str) -> None:
    response = client.get(f"/static/widget/{name}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert int(response["Content-Length"]) == SCRIPTS[name].stat().st_size
    assert "ETag" in response and "max-age" in response["Cache-Control"]


@pytest.mark.django_db
def test_the_demo_page_is_off_in_production(client) -> None:
    with override_settings(WIDGET_DEMO_ENABLED=False):
        assert client.get("/widget-demo/").status_code == 404
    with override_settings(WIDGET_DEMO_ENABLED=True):
        assert client.get("/widget-demo/").status_code == 404  # enabled, but nothing is seeded


@pytest.mark.django_db
def test_seed_demo_makes_a_widget_token_and_the_demo_page_embeds_it(client, settings, tmp_path) -> None:
    settings.DATA_DIR = tmp_path
    settings.WIDGET_DEMO_ENABLED = True
    out = io.StringIO()
    call_command("seed_demo", "--skip-knowledge", "--base-url", "http://127.0.0.1:8123", stdout=out)
    assert "http://127.0.0.1:8123/widget-demo/" in out.getvalue()
    with tenant_scope_disabled("test: the demo tenant's widget token"):
        token = ApiToken.objects.get(name=DEMO_WIDGET_TOKEN_NAME, is_active=True)
    assert token.allowed_origins == ["http://127.0.0.1:8123", "http://localhost:8123"]
    call_command("seed_demo", "--skip-knowledge", "--base-url", "http://localhost:9000", stdout=io.StringIO())
    with tenant_scope_disabled("test: the demo tenant's widget token"):
        assert ApiToken.objects.filter(name=DEMO_WIDGET_TOKEN_NAME, is_active=True).count() == 1
        token.refresh_from_db()
    assert {"http://localhost:9000", "http://127.0.0.1:9000"} <= set(token.allowed_origins)

    page = client.get("/widget-demo/", HTTP_HOST="127.0.0.1:8123")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'src="http://127.0.0.1:8123/dashboard/widget/minirag-widget.js"' in body
    assert f'data-bot-id="{token.bot_profile_id}"' in body
    assert 'data-api-token="nrag_live_' in body
    assert "does not allow" not in body
    # The look is the demo bot's stored widget settings (the page sets none: it would override them).
    assert "data-title" not in body and "data-starter-questions" not in body
    with tenant_scope_disabled("test: the demo bot's widget settings"):
        widget = token.bot_profile.widget
    assert widget["title"] == "MiniRAG demo" and len(widget["starter_questions"]) == 3
    # Opened at an address the token does not allow: the page says so instead of failing silently.
    other_port = client.get("/widget-demo/", HTTP_HOST="localhost:8124").content.decode()
    assert "http://localhost:8124</code>, which the demo widget token" in other_port
