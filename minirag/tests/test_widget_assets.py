"""The widget script at its two URLs, and the /widget-demo/ page that `make run` links to."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings

from minirag.demo import DEMO_WIDGET_TOKEN_NAME
from tenants.models import ApiToken
from tenants.tenancy import tenant_scope_disabled

WIDGET = Path(__file__).resolve().parents[2] / "static" / "widget" / "minirag-widget.js"


def test_the_widget_is_one_small_dependency_free_file() -> None:
    source = WIDGET.read_text(encoding="utf-8")
    assert len(source.encode()) <= 40_000, "the widget must stay within 40 KB uncompressed"
    for dependency in ("import ", "require(", "innerHTML", "insertAdjacentHTML", "outerHTML", "eval("):
        assert dependency not in source, dependency


def test_the_stable_url_serves_it_with_revalidation(client) -> None:
    response = client.get("/dashboard/widget/minirag-widget.js")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert response["Cache-Control"] == "public, max-age=300"
    assert response["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert response.content == WIDGET.read_bytes()
    etag = response["ETag"]
    again = client.get("/dashboard/widget/minirag-widget.js", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b""
    compressed = client.get("/dashboard/widget/minirag-widget.js", HTTP_ACCEPT_ENCODING="gzip")
    assert compressed["Content-Encoding"] == "gzip"
    assert gzip.decompress(compressed.content) == WIDGET.read_bytes()
    assert len(compressed.content) < len(response.content) / 2
    assert client.post("/dashboard/widget/minirag-widget.js").status_code == 405


def test_it_is_also_a_static_file(client) -> None:
    response = client.get("/static/widget/minirag-widget.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert int(response["Content-Length"]) == WIDGET.stat().st_size
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
    json.loads(body.split("data-starter-questions='")[1].split("'")[0])  # valid JSON for the widget
    # Opened at an address the token does not allow: the page says so instead of failing silently.
    other_port = client.get("/widget-demo/", HTTP_HOST="localhost:8124").content.decode()
    assert "http://localhost:8124</code>, which the demo widget token" in other_port
