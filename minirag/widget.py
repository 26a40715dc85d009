"""The widget script at its stable URL, and the /widget-demo/ page."""

from __future__ import annotations

import hashlib
from contextlib import nullcontext
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.gzip import gzip_page
from django.views.decorators.http import condition, require_safe

from bots.embed import bot_embed, public_base_url
from minirag.demo import demo_bot, demo_tenant
from tenants.tenancy import tenant_scope

WIDGET_DIR = Path(settings.BASE_DIR) / "static" / "widget"
WIDGET_FILE = WIDGET_DIR / "minirag-widget.js"
# Loaded by the widget itself when it needs it (its other languages, its rarer code), from next to
# where the widget script came from: it keeps the script every page loads small.
WIDGET_EXTRA_FILE = WIDGET_DIR / "minirag-widget-extra.js"


@lru_cache(maxsize=4)
def _widget_asset(path: Path, modified_ns: int) -> tuple[bytes, str]:
    """A script and its ETag, read once per version of the file on disk."""
    body = path.read_bytes()
    return body, hashlib.sha256(body).hexdigest()[:32]


def _current_asset(path: Path = WIDGET_FILE) -> tuple[bytes, str]:
    return _widget_asset(path, path.stat().st_mtime_ns)


def _script_response(path: Path) -> HttpResponse:
    """The URL never changes between releases, so browsers keep it a few minutes and then
    revalidate it with its ETag (a 304 costs a few bytes); any site may load it (it is a public
    script), including pages that isolate themselves with COEP."""
    response = HttpResponse(_current_asset(path)[0], content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = f"public, max-age={settings.WIDGET_SCRIPT_MAX_AGE_SECONDS}"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    response["Access-Control-Allow-Origin"] = "*"
    return response


@require_safe
@gzip_page
@condition(etag_func=lambda request: _current_asset(WIDGET_FILE)[1])
def widget_script(request: HttpRequest) -> HttpResponse:
    """`/dashboard/widget/minirag-widget.js`."""
    return _script_response(WIDGET_FILE)


@require_safe
@gzip_page
@condition(etag_func=lambda request: _current_asset(WIDGET_EXTRA_FILE)[1])
def widget_extra_script(request: HttpRequest) -> HttpResponse:
    """`/dashboard/widget/minirag-widget-extra.js`, served exactly like the widget script."""
    return _script_response(WIDGET_EXTRA_FILE)


@require_safe
def widget_demo(request: HttpRequest) -> HttpResponse:
    """A sample page with the demo tenant's bot in the widget (embedded/dev mode only)."""
    if not settings.WIDGET_DEMO_ENABLED:
        raise Http404("The widget demo is disabled (MINIRAG_WIDGET_DEMO).")
    tenant = demo_tenant()
    with tenant_scope(tenant) if tenant else nullcontext():
        bot = demo_bot(tenant) if tenant else None
        if bot is None:
            raise Http404("No demo bot: run `manage.py seed_demo` (make run does).")
        embed = bot_embed(bot=bot, base_url=public_base_url(request))
    page = urlsplit(request.build_absolute_uri("/"))
    page_origin = f"{page.scheme}://{page.netloc}"
    origin_allowed = embed.token is not None and embed.token.allows_origin(page_origin)
    return render(
        request,
        "widget_demo.html",
        {"embed": embed, "page_origin": page_origin, "origin_allowed": origin_allowed},
    )
