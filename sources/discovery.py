"""Finding the pages of a site: from its sitemap, or by crawling one host from a root URL.

Every request goes through the SSRF guard. Only pages on the same host as the starting URL are
kept; robots.txt is honoured for our user agent (a missing robots.txt allows everything, an
unreachable one — 5xx — allows nothing, as RFC 9309 says); requests are spaced by
`CRAWL_DELAY_SECONDS` or the site's Crawl-delay, whichever is longer (capped at 10 s).
"""

from __future__ import annotations

import gzip
import io
import logging
import time
import urllib.robotparser
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urldefrag, urljoin, urlsplit, urlunsplit

import lxml.html
from defusedxml import ElementTree
from django.conf import settings

from minirag.safe_http import FetchError, ResponseTooLargeError, fetch
from sources.extraction import ExtractionError

logger = logging.getLogger(__name__)

MAX_SITEMAP_FILES = 20
MAX_SITEMAP_BYTES = 20 * 1024 * 1024
MAX_CRAWL_DELAY_SECONDS = 10.0
HTML_TYPES = ("text/html", "application/xhtml+xml")
# Links to these are never pages worth indexing.
SKIPPED_EXTENSIONS = (
    ".png",
    ".jpg",
    ".jpeg",
    ".gif",
    ".svg",
    ".webp",
    ".ico",
    ".css",
    ".js",
    ".zip",
    ".gz",
    ".tar",
    ".mp3",
    ".mp4",
    ".avi",
    ".mov",
    ".woff",
    ".woff2",
    ".ttf",
    ".exe",
    ".dmg",
    ".iso",
    ".xml",
    ".json",
)


class DiscoveryError(ExtractionError):
    """The site could not be explored (no sitemap, nothing crawlable); permanent."""


def normalize_page_url(url: str) -> str:
    """Drop the fragment, lowercase scheme and host, default path '/'."""
    url, _fragment = urldefrag(url.strip())
    parts = urlsplit(url)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query, ""))


def _same_host(url: str, origin: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == urlsplit(origin).netloc.lower()


def _same_site(url: str, origin: str, path_prefix: str | None) -> bool:
    parts = urlsplit(url)
    if not _same_host(url, origin):
        return False
    if parts.path.lower().endswith(SKIPPED_EXTENSIONS):
        return False
    return path_prefix is None or (parts.path or "/").startswith(path_prefix)


@dataclass
class Robots:
    """robots.txt rules for our user agent on one site."""

    parser: urllib.robotparser.RobotFileParser | None
    allow_all: bool = False
    disallow_all: bool = False
    sitemaps: list[str] = field(default_factory=list)

    def allows(self, url: str) -> bool:
        if self.disallow_all:
            return False
        if self.allow_all or self.parser is None:
            return True
        return self.parser.can_fetch(settings.FETCH_USER_AGENT, url)

    def delay(self) -> float:
        site_delay = self.parser.crawl_delay(settings.FETCH_USER_AGENT) if self.parser else None
        return min(max(settings.CRAWL_DELAY_SECONDS, float(site_delay or 0)), MAX_CRAWL_DELAY_SECONDS)


def fetch_robots(site_url: str) -> Robots:
    parts = urlsplit(site_url)
    robots_url = urlunsplit((parts.scheme, parts.netloc, "/robots.txt", "", ""))
    try:
        response = fetch(robots_url, max_bytes=512 * 1024, raise_for_status=False)
    except FetchError as exc:
        if exc.transient:
            return Robots(parser=None, disallow_all=True)
        return Robots(parser=None, allow_all=True)
    if response.status_code >= 500:
        return Robots(parser=None, disallow_all=True)
    if response.status_code >= 400:
        return Robots(parser=None, allow_all=True)
    parser = urllib.robotparser.RobotFileParser(robots_url)
    lines = response.text().splitlines()
    parser.parse(lines)
    sitemaps = [line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("sitemap:")]
    return Robots(parser=parser, sitemaps=sitemaps)


# --- Sitemaps -------------------------------------------------------------------------------


def _sitemap_entries(data: bytes) -> Iterator[tuple[bool, str]]:
    """(is a nested sitemap, URL) for each entry's ``<loc>`` of a sitemap or sitemap index, in
    order. Parsed as it is consumed and each finished entry is dropped, so a caller that stops
    after the pages it wants has parsed only those, and memory stays flat whatever the number of
    entries. XML attacks (entity expansion, external entities) are refused by defusedxml."""
    if data[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as unzipped:
                data = unzipped.read(MAX_SITEMAP_BYTES + 1)
        except (OSError, EOFError, zlib.error):
            raise DiscoveryError("The sitemap is a damaged gzip file.") from None
        if len(data) > MAX_SITEMAP_BYTES:
            raise DiscoveryError(f"The sitemap is larger than {MAX_SITEMAP_BYTES // 1048576} MB once decompressed.")
    root = None
    is_index = False
    depth = 0
    try:
        for event, element in ElementTree.iterparse(io.BytesIO(data), events=("start", "end")):
            if event == "start":
                if root is None:
                    root, is_index = element, _local_name(element.tag) == "sitemapindex"
                depth += 1
                continue
            depth -= 1
            if depth == 2 and _local_name(element.tag) == "loc" and element.text and element.text.strip():
                yield is_index, element.text.strip()
            elif depth == 1 and root is not None:
                root.clear()  # an <url> or <sitemap> entry is done with
    except Exception as exc:  # noqa: BLE001 - ParseError and defusedxml's refusals alike
        raise DiscoveryError(f"The sitemap is not valid XML ({type(exc).__name__}).") from None


def _local_name(tag: object) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def discover_from_sitemap(url: str, *, max_pages: int, path_prefix: str | None = None) -> list[str]:
    """Page URLs listed by the sitemap at `url` (or, for a site root, the sitemaps named in its
    robots.txt, else /sitemap.xml), same host only, allowed by robots.txt, in sitemap order."""
    robots = fetch_robots(url)
    parts = urlsplit(url)
    if parts.path.lower().endswith((".xml", ".xml.gz")) or "sitemap" in parts.path.lower():
        queue = [url]
    else:
        queue = robots.sitemaps or [urlunsplit((parts.scheme, parts.netloc, "/sitemap.xml", "", ""))]
    pages: list[str] = []
    seen_pages: set[str] = set()
    seen_files: set[str] = set()
    while queue and len(seen_files) < MAX_SITEMAP_FILES and len(pages) < max_pages:
        sitemap_url = queue.pop(0)
        if sitemap_url in seen_files or not _same_host(sitemap_url, url):
            continue
        seen_files.add(sitemap_url)
        try:
            response = fetch(sitemap_url, max_bytes=MAX_SITEMAP_BYTES)
        except ResponseTooLargeError:
            message = (
                f"The sitemap {sitemap_url} is larger than {MAX_SITEMAP_BYTES // 1048576} MB; "
                "split it into several sitemaps listed by a sitemap index."
            )
            if len(seen_files) == 1:
                raise DiscoveryError(message) from None
            logger.warning("Skipping sitemap: %s", message)
            continue
        except FetchError as exc:
            if len(seen_files) == 1:
                raise DiscoveryError(f"The sitemap could not be fetched: {exc.message}") from None
            logger.warning("Skipping sitemap %s: %s", sitemap_url, exc.message)
            continue
        for is_nested, location in _sitemap_entries(response.content):
            if is_nested:
                if location in seen_files or location in queue or not _same_host(location, url):
                    continue  # a loop (an index listing itself), a repeat, or another host
                if len(seen_files) + len(queue) >= MAX_SITEMAP_FILES:
                    break  # an index lists only sitemaps: no page can follow
                queue.append(location)
                continue
            normalized = normalize_page_url(location)
            if normalized in seen_pages or not _same_site(normalized, url, path_prefix):
                continue
            if not robots.allows(normalized):
                continue
            seen_pages.add(normalized)
            pages.append(normalized)
            if len(pages) >= max_pages:
                break
    if not pages:
        raise DiscoveryError("The sitemap lists no pages on this site that may be fetched.")
    return pages


# --- Crawling -------------------------------------------------------------------------------


def _links(html: bytes, base_url: str) -> Iterable[str]:
    try:
        document = lxml.html.fromstring(html, base_url=base_url)
    except (ValueError, lxml.etree.ParserError):
        return []
    return [urljoin(base_url, href) for href in document.xpath("//a[@href]/@href")]


def discover_by_crawling(url: str, *, max_pages: int, max_depth: int, path_prefix: str | None = None) -> list[str]:
    """Breadth-first crawl of one host from `url`: HTML pages reachable within `max_depth`
    links, at most `max_pages`, allowed by robots.txt, fetched politely."""
    robots = fetch_robots(url)
    delay = robots.delay()
    start = normalize_page_url(url)
    if not robots.allows(start):
        raise DiscoveryError("robots.txt does not allow crawling this site.")
    origin = start
    queue: deque[tuple[str, int]] = deque([(start, 0)])
    seen = {start}
    pages: list[str] = []
    fetched = 0
    while queue and len(pages) < max_pages:
        page_url, depth = queue.popleft()
        if fetched:
            time.sleep(delay)
        fetched += 1
        try:
            response = fetch(page_url, allowed_content_types=HTML_TYPES)
        except FetchError as exc:
            if page_url == start:
                raise DiscoveryError(f"The start page could not be fetched: {exc.message}") from None
            logger.info("Crawl skipped %s: %s", page_url, exc.message)
            continue
        final = normalize_page_url(response.url)
        if page_url == start:
            origin = final  # the site may live behind a redirect (example.com → www.example.com)
        if not _same_site(final, origin, path_prefix):
            continue  # redirected off-site
        pages.append(final)
        seen.add(final)
        if depth >= max_depth:
            continue
        for link in _links(response.content, response.url):
            candidate = normalize_page_url(link)
            if candidate in seen or not _same_site(candidate, origin, path_prefix) or not robots.allows(candidate):
                continue
            seen.add(candidate)
            queue.append((candidate, depth + 1))
    return pages
