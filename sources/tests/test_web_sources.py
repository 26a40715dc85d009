"""URL, sitemap and crawl sources against a real HTTP server on loopback."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import LocalSite, TenantWorld
from minirag.vectorstore import get_vector_store
from sources.models import Chunk, Source
from tenants.tenancy import tenant_scope

pytestmark = pytest.mark.django_db

ARTICLE = """<html><head><title>Returns policy</title></head><body>
<header><nav><a href="/">Home</a> <a href="/shop">Shop</a> Navigation menu cookie banner</nav></header>
<main><article><h1>Returns policy</h1>
<p>You can return any item within thirty days of delivery for a full refund, no questions asked.</p>
<p>Refunds are sent to the original payment method within five working days of receiving the item.</p>
<p>Items must be unused and in their original packaging. Gift cards cannot be returned.</p>
</article></main>
<footer>Copyright 2026 Example Shop. Privacy policy. Terms of service. Footer links.</footer>
</body></html>"""


def page(title: str, body: str, links: list[str] = ()) -> str:
    anchors = " ".join(f'<a href="{href}">{href}</a>' for href in links)
    paragraphs = "".join(
        f"<p>{body} This paragraph explains {title.lower()} in detail for customers.</p>" for _ in range(3)
    )
    head = f"<html><head><title>{title}</title></head>"
    return f"{head}<body><main><h1>{title}</h1>{paragraphs}</main><nav>{anchors}</nav></body></html>"


def create_source(world: TenantWorld, **body: Any) -> dict:
    body.setdefault("bot_profile_id", str(world.bot.pk))
    response = world.client("admin").post("/v1/sources", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def ingest(world: TenantWorld, source_id: str) -> dict:
    assert world.client("admin").post(f"/v1/sources/{source_id}/ingest").status_code == 202
    return world.client().get(f"/v1/sources/{source_id}").json()


def contents(world: TenantWorld, source_id: str) -> str:
    with tenant_scope(world.tenant):
        return "\n".join(Chunk.objects.filter(source_id=source_id).values_list("content", flat=True))


def test_a_url_source_keeps_the_article_and_drops_the_boilerplate(alpha: TenantWorld, site: LocalSite) -> None:
    url = site.add("/returns", ARTICLE)
    source = ingest(alpha, create_source(alpha, name="Returns", source_type="url", config={"url": url})["id"])
    assert source["status"] == "ready" and source["chunk_count"] >= 1
    text = contents(alpha, source["id"])
    assert "thirty days of delivery" in text and "Gift cards cannot be returned" in text
    assert "Copyright 2026" not in text and "Navigation menu" not in text
    hit = get_vector_store().search(
        "minirag_chunks", [0.1] * 384, tenant_id=alpha.tenant.pk, bot_profile_id=alpha.bot.pk, source_ids=[source["id"]]
    )[0]
    assert hit.payload["url"] == url and hit.payload["title"] == "Returns policy"


def test_a_refresh_of_an_unchanged_page_embeds_nothing(alpha: TenantWorld, site: LocalSite, monkeypatch) -> None:
    from sources import ingestion

    url = site.add("/returns", ARTICLE)
    source_id = create_source(alpha, name="Returns", source_type="url", config={"url": url})["id"]
    ingest(alpha, source_id)
    calls: list[int] = []
    real = ingestion.embed_texts
    monkeypatch.setattr(ingestion, "embed_texts", lambda texts, **kw: calls.append(len(texts)) or real(texts, **kw))
    assert ingest(alpha, source_id)["status"] == "ready"
    assert calls == []
    assert site.requests.count("/returns") == 2  # it was fetched again, and found unchanged


@pytest.mark.parametrize(
    ("path", "page", "message"),
    [
        ("/missing", None, "404"),
        ("/image", ("\x89PNG binary", "image/png"), "sent image/png"),
        ("/empty", ("<html><body></body></html>", "text/html"), "text"),
    ],
)
def test_url_failures_end_in_error_status_with_a_reason(
    alpha: TenantWorld, site: LocalSite, path: str, page: tuple | None, message: str
) -> None:
    if page:
        site.add(path, page[0], page[1])
    source = ingest(alpha, create_source(alpha, name="x", source_type="url", config={"url": site.url(path)})["id"])
    assert source["status"] == "error"
    assert message.lower() in source["error_message"].lower()


def test_a_url_redirecting_to_a_private_address_is_blocked(alpha: TenantWorld, site: LocalSite, settings) -> None:
    site.add("/go", "", status=302, headers={"Location": "http://10.1.2.3/internal"})
    source_id = create_source(alpha, name="x", source_type="url", config={"url": site.url("/go")})["id"]
    settings.ALLOW_PRIVATE_NETWORKS = False
    settings.SSRF_ALLOWED_NETWORKS = ["127.0.0.1/32"]  # the test site itself is allowed; the redirect is not
    source = ingest(alpha, source_id)
    assert source["status"] == "error"
    assert "private" in source["error_message"].lower() or "not allowed" in source["error_message"].lower()


def build_site(site: LocalSite) -> None:
    site.add("/", page("Home", "Welcome to the shop.", ["/a", "/b", "/private/secret", "https://elsewhere.example/x"]))
    site.add("/a", page("Shipping", "We ship in two days.", ["/c", "/logo.png"]))
    site.add("/b", page("Payments", "We accept cards and invoices.", ["/"]))
    site.add("/c", page("Customs", "Customs duties are included.", ["/d"]))
    site.add("/d", page("Deep", "A page four links deep.", []))
    site.add("/private/secret", page("Secret", "Robots say no.", []))
    site.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", "text/plain")


def test_a_crawl_follows_links_within_depth_and_robots(alpha: TenantWorld, site: LocalSite) -> None:
    build_site(site)
    parent = create_source(alpha, name="Shop", source_type="crawl", config={"url": site.url("/"), "max_depth": 2})
    assert parent["config"]["max_pages"] == 50
    result = ingest(alpha, parent["id"])
    children = alpha.client().get(f"/v1/sources/{parent['id']}/children").json()
    urls = sorted(child["config"]["url"] for child in children)
    assert urls == sorted(site.url(path) for path in ["/", "/a", "/b", "/c"])  # /d is depth 3; /private disallowed
    assert all(child["status"] == "ready" for child in children)
    assert result["status"] == "ready" and result["children_count"] == 4
    assert result["chunk_count"] == sum(child["chunk_count"] for child in children)
    assert "/private/secret" not in site.requests


def test_a_crawl_respects_max_pages(alpha: TenantWorld, site: LocalSite) -> None:
    build_site(site)
    parent = create_source(alpha, name="Shop", source_type="crawl", config={"url": site.url("/"), "max_pages": 2})
    ingest(alpha, parent["id"])
    assert len(alpha.client().get(f"/v1/sources/{parent['id']}/children").json()) == 2


def sitemap(urls: list[str]) -> str:
    entries = "".join(f"<url><loc>{url}</loc></url>" for url in urls)
    return f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>'


def test_a_sitemap_creates_children_and_a_refresh_syncs_them(
    alpha: TenantWorld, site: LocalSite, django_capture_on_commit_callbacks
) -> None:
    build_site(site)
    site.add(
        "/sitemap.xml",
        sitemap([site.url("/a"), site.url("/b"), site.url("/private/secret"), "https://elsewhere.example/page"]),
        "application/xml",
    )
    parent = create_source(alpha, name="Shop map", source_type="sitemap", config={"url": site.url("/sitemap.xml")})
    ingest(alpha, parent["id"])
    children = {c["config"]["url"]: c for c in alpha.client().get(f"/v1/sources/{parent['id']}/children").json()}
    assert sorted(children) == [site.url("/a"), site.url("/b")]  # same host, allowed by robots.txt
    payments = children[site.url("/b")]["id"]
    assert get_vector_store().count("minirag_chunks", tenant_id=alpha.tenant.pk, source_ids=[payments]) > 0

    # The sitemap changes: /b disappears, /c appears.
    site.add("/sitemap.xml", sitemap([site.url("/a"), site.url("/c")]), "application/xml")
    with django_capture_on_commit_callbacks(execute=True):
        ingest(alpha, parent["id"])
    active = {c["config"]["url"] for c in alpha.client().get(f"/v1/sources/{parent['id']}/children").json()}
    assert active == {site.url("/a"), site.url("/c")}
    assert get_vector_store().count("minirag_chunks", tenant_id=alpha.tenant.pk, source_ids=[payments]) == 0
    with tenant_scope(alpha.tenant):
        assert Source.objects.get(pk=payments).is_active is False


def test_a_sitemap_index_and_a_site_root(alpha: TenantWorld, site: LocalSite) -> None:
    build_site(site)
    site.add(
        "/robots.txt", f"User-agent: *\nDisallow: /private/\nSitemap: {site.url('/maps/index.xml')}\n", "text/plain"
    )
    site.add(
        "/maps/index.xml",
        '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<sitemap><loc>{site.url('/maps/one.xml')}</loc></sitemap></sitemapindex>",
        "application/xml",
    )
    site.add("/maps/one.xml", sitemap([site.url("/c"), site.url("/d")]), "application/xml")
    parent = create_source(alpha, name="Root", source_type="sitemap", config={"url": site.url("/")})
    assert ingest(alpha, parent["id"])["children_count"] == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
            "<urlset>&lol2;</urlset>",
            "xml",
        ),
        ("this is not xml", "xml"),
        (sitemap([]), "no pages"),
    ],
)
def test_hostile_or_empty_sitemaps_end_in_error(alpha: TenantWorld, site: LocalSite, body: str, message: str) -> None:
    site.add("/sitemap.xml", body, "application/xml")
    parent = create_source(alpha, name="Bad map", source_type="sitemap", config={"url": site.url("/sitemap.xml")})
    result = ingest(alpha, parent["id"])
    assert result["status"] == "error"
    assert message in result["error_message"].lower()
