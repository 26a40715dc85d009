"""HTML to text: the main content of a page, without navigation, footers and other boilerplate."""

from __future__ import annotations

import logging
import re
from typing import Any

import trafilatura
from lxml import etree
from lxml import html as lxml_html

from sources.extraction.base import ExtractedDocument, ExtractionError, NoTextError, check_size, finish
from sources.extraction.text import decode_text
from sources.normalize import normalize_text

logger = logging.getLogger(__name__)

# Guards against pathological markup. lxml parses 5 MB of tags in about a second, but
# trafilatura costs about 50 us and a few KB of memory per element (it copies the tree several
# times): 41k elements (a 3.4 MB article) take ~2.3 s, 625k (5 MB of "<p>x</p>") took 24 s and
# 1 GB. So main-content extraction runs up to MAX_MAIN_CONTENT_ELEMENTS (~2-3 s); bigger pages get
# the linear basic extraction (only nav, footer, scripts... dropped); beyond MAX_HTML_TAGS (counted
# as "<" before parsing, so the tree is never built) the page is refused. libxml2 itself stops
# nesting at depth 256, so deep nesting cannot blow the stack.
MAX_MAIN_CONTENT_ELEMENTS = 50_000
MAX_HTML_TAGS = 500_000

_PARSER = lxml_html.HTMLParser(
    remove_comments=True, remove_pis=True, collect_ids=False, default_doctype=False, no_network=True
)
# The HTML spec only looks at the first 1024 bytes for <meta charset>; a little more is harmless.
_META_CHARSET = re.compile(rb"""<meta[^>]{0,512}?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]{1,40})""", re.IGNORECASE)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>", re.IGNORECASE)
_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$")

# Basic extraction (tiny or huge pages): what is dropped, and what starts a paragraph or a line.
_SKIPPED_TAGS = frozenset(
    {
        "script", "style", "noscript", "template", "nav", "footer", "svg", "math", "iframe", "object",
        "embed", "canvas", "select", "button", "head", "title",
    }
)  # fmt: skip
_PARAGRAPH_TAGS = frozenset(
    {
        "p", "div", "section", "article", "main", "aside", "header", "h1", "h2", "h3", "h4", "h5", "h6",
        "ul", "ol", "dl", "table", "pre", "blockquote", "figure", "figcaption", "form", "fieldset",
        "address", "hr", "details", "summary", "body",
    }
)  # fmt: skip
_LINE_TAGS = frozenset({"br", "li", "tr", "dt", "dd", "caption", "option"})
_SKIPPED_ROLES = frozenset({"navigation", "contentinfo", "banner"})
# Removed before trafilatura runs: it drops these in its main pass, but on short pages it falls
# back to a "baseline" dump of the whole tree, which would bring the menu and footer back.
_PRUNE_XPATHS = [
    "//nav",
    "//footer",
    "//*[@role='navigation' or @role='contentinfo' or @role='banner']",
    "//*[@hidden or @aria-hidden='true']",
]
# Below this many characters trafilatura itself judges its result too thin and dumps the page
# (with inline elements on lines of their own); the basic extraction reads better then.
_MIN_MAIN_CONTENT_CHARS = 250


def _meta_charset(data: bytes) -> str | None:
    match = _META_CHARSET.search(data[:4096])
    return match.group(1).decode("ascii") if match else None


def _parse(text: str) -> Any:
    # lxml refuses str input that carries an XML encoding declaration (XHTML pages do).
    text = _XML_DECLARATION.sub("", text, count=1)
    if not text.strip():
        return None
    try:
        return lxml_html.document_fromstring(text, parser=_PARSER)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        return None


def _first_text(tree: Any, xpath: str) -> str:
    for found in tree.xpath(xpath):
        value = found if isinstance(found, str) else found.text_content()
        value = " ".join(value.split())
        if value:
            return value
    return ""


def _title(tree: Any) -> str:
    # og:title usually is the article title without the " | Site name" suffix of <title>.
    return (
        _first_text(tree, "//meta[@property='og:title']/@content")
        or _first_text(tree, "//title")
        or _first_text(tree, "//h1")
    )


def _language(tree: Any) -> str:
    language = (tree.get("lang") or tree.get("{http://www.w3.org/XML/1998/namespace}lang") or "").strip()
    return language if _LANGUAGE_TAG.match(language) else ""


# --- Rendering trafilatura's output tree (head, p, list/item, table/row/cell, quote, code, lb, hi, ref)
# trafilatura's own text/Markdown serialisers either run blocks together on single lines or escape
# Markdown characters ("snake\_case"); ours keeps blocks apart with blank lines and text verbatim.


_NESTED_BLOCK_TAGS = frozenset({"p", "head", "quote", "code", "div"})
# Elements whose line breaks are the content's (program code, preformatted blocks): kept as they are.
_VERBATIM_TAGS = frozenset({"code", "quote"})
_BLANK_LINES = re.compile(r"\n\s*\n")
_WHITESPACE = re.compile(r"\s+")


def _is_block_code(element: Any) -> bool:
    """A code element that is a block of its own (several lines), not a word of code inside a sentence."""
    return element.tag == "code" and "\n" in "".join(element.itertext()).strip()


def _inline(element: Any, *, verbatim: bool = False) -> str:
    """An element's text. Outside code and preformatted blocks, whitespace runs (the line breaks of
    the page's source included) become one space, as a browser shows them: a sentence is never cut
    into lines; explicit line breaks (<br>) stay."""
    verbatim = verbatim or element.tag in _VERBATIM_TAGS

    def spaced(text: str) -> str:
        return text if verbatim else _WHITESPACE.sub(" ", text)

    parts = [spaced(element.text or "")]
    for child in element:
        if child.tag == "lb":
            parts.append("\n")
        elif child.tag == "list":
            parts.append(f"\n{_render_list(child)}\n")
        elif child.tag == "table":
            parts.append(f"\n{_render_table(child)}\n")
        elif child.tag == "code" and not _is_block_code(child):  # `a word of code` inside a sentence
            parts.append(_inline(child, verbatim=verbatim))
        elif _is_block_code(child) and not verbatim:  # (code inside code is fenced once)
            parts.append(f"\n{_fenced(child)}\n")
        elif child.tag in _NESTED_BLOCK_TAGS:  # paragraphs inside a quote, an item, a cell
            parts.append(f"\n{_inline(child)}\n")
        else:
            parts.append(_inline(child, verbatim=verbatim))
        parts.append(spaced(child.tail or ""))
    return "".join(parts)


def _render_list(element: Any) -> str:
    ordered = element.get("rend") == "ol"
    lines = []
    for number, item in enumerate((child for child in element if child.tag == "item"), start=1):
        text = _BLANK_LINES.sub("\n", _inline(item).strip())  # an item stays one tight group of lines
        if text:
            lines.append(f"{number}. {text}" if ordered else f"- {text}")
    return "\n".join(lines)


def _render_table(element: Any) -> str:
    rows = []
    for row in (child for child in element if child.tag == "row"):
        cells = [" ".join(_inline(cell).split()) for cell in row if cell.tag == "cell"]
        if any(cells):
            rows.append(" | ".join(cell for cell in cells if cell))
    return "\n".join(rows)


def _fenced(element: Any) -> str:
    """A block of code between Markdown fences: its lines (a `# comment` among them) are code, never
    headings or prose."""
    return f"```\n{_inline(element).strip(chr(10))}\n```"


def _heading(element: Any) -> str:
    """A heading as a Markdown heading line of its level (`<h2>` → `## …`): ingestion cuts the page
    into sections at these lines (sources/sections.py)."""
    rend = element.get("rend") or ""
    level = int(rend[1]) if len(rend) == 2 and rend[0] == "h" and rend[1] in "123456" else 2
    text = " ".join(_inline(element).split())
    return f"{'#' * level} {text}" if text else ""


def _render_blocks(parent: Any, blocks: list[str]) -> None:
    if parent.text and parent.text.strip():
        blocks.append(parent.text)
    for child in parent:
        if child.tag == "list":
            blocks.append(_render_list(child))
        elif child.tag == "table":
            blocks.append(_render_table(child))
        elif child.tag in ("div", "section", "body"):
            _render_blocks(child, blocks)
        elif child.tag == "head":
            blocks.append(_heading(child))
        elif _is_block_code(child):
            blocks.append(_fenced(child))
        else:
            blocks.append(_inline(child))
        if child.tail and child.tail.strip():
            blocks.append(child.tail)


_HEADING_TAGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_PERMALINK_MARKS = str.maketrans("", "", "\u00b6\U0001f517")  # the pilcrow and link symbol of heading anchors


def _mark_headings(tree: Any) -> None:
    """Turn every <h1>-<h6> into a paragraph that reads as a Markdown heading line ("## Caching").

    trafilatura drops many documentation headings — short and link-dense, with their permalink
    anchors, they look like navigation to it (all of the PostgreSQL manual's and Django's section
    titles) — but a heading is what tells where one topic ends and the next begins, and what a
    passage is about: ingestion cuts pages into sections at these lines (sources/sections.py)."""
    for heading in [element for element in tree.iter(*_HEADING_TAGS)]:
        text = " ".join(heading.text_content().translate(_PERMALINK_MARKS).split())
        parent = heading.getparent()
        if parent is None:
            continue
        paragraph = lxml_html.Element("p")
        paragraph.text = f"{'#' * int(heading.tag[1])} {text}" if text else ""
        paragraph.tail = heading.tail
        parent.replace(heading, paragraph)


def _main_content(tree: Any, url: str | None) -> str:
    try:
        document = trafilatura.bare_extraction(
            tree,
            url=url,
            favor_recall=True,  # an assistant would rather see a little boilerplate than miss content
            include_comments=False,
            include_tables=True,
            include_images=False,
            include_links=False,
            include_formatting=False,
            with_metadata=False,  # its date detection (htmldate) doubles the cost; the title is ours
            prune_xpath=_PRUNE_XPATHS,
        )
        if document is None or document.body is None:
            return ""
        blocks: list[str] = []
        _render_blocks(document.body, blocks)
        return "\n\n".join(blocks)
    except Exception:  # a bug in the heuristics must not lose the page: the basic extraction still runs
        logger.warning("trafilatura failed on %s; using the basic HTML extraction", url or "a page", exc_info=True)
        return ""


def _basic_text(tree: Any) -> str:
    """All visible text of <body> minus scripts, styles, navigation and footers; linear time."""
    root = tree.find("body")
    if root is None:
        root = tree
    parts: list[str] = []
    walker = etree.iterwalk(root, events=("start", "end"))
    for event, element in walker:
        tag = element.tag if isinstance(element.tag, str) else ""
        if event == "start":
            if (
                tag in _SKIPPED_TAGS
                or element.get("hidden") is not None
                or element.get("aria-hidden") == "true"
                or element.get("role") in _SKIPPED_ROLES
            ):
                walker.skip_subtree()  # its "end" event still comes, and brings the tail
                continue
            if tag in ("td", "th") and element.getprevious() is not None:
                parts.append(" | ")
            elif tag in _PARAGRAPH_TAGS:
                parts.append("\n\n")
            elif tag in _LINE_TAGS:
                parts.append("\n")
            parts.append(element.text or "")
        else:
            if tag in _PARAGRAPH_TAGS:
                parts.append("\n\n")
            elif tag in _LINE_TAGS:
                parts.append("\n")
            if element is not root:
                parts.append(element.tail or "")
    return "".join(parts)


def extract_html(html: bytes | str, *, url: str | None = None, charset: str | None = None) -> ExtractedDocument:
    """The main content of an HTML page as text.

    Bytes are decoded with ``decode_text``: BOM, then ``charset`` (e.g. from the HTTP
    Content-Type), then the page's own ``<meta charset>``, then detection. The main content comes
    from trafilatura (navigation, header, footer, sidebars, cookie banners dropped; headings,
    paragraphs, lists and tables kept as text, blocks separated by blank lines); when it finds
    nothing (tiny pages) or the page is too big for it, a basic extraction of <body> is used.
    Title: og:title, else <title>, else the first <h1>.

    Raises ``ExtractionError`` if the input exceeds ``settings.UPLOAD_MAX_BYTES``, has more than
    ``MAX_HTML_TAGS`` tags, or yields no text.
    """
    if isinstance(html, bytes):
        check_size(len(html), "page")
        text = decode_text(html, charset or _meta_charset(html))
    else:
        check_size(len(html), "page")
        text = html
    # Browsers drop NUL characters from a page's text; libxml2 would turn each into U+FFFD.
    text = text.replace("\x00", "")
    if text.count("<") > MAX_HTML_TAGS:
        raise ExtractionError(f"The page has too much markup to process (more than {MAX_HTML_TAGS:,} tags).")
    tree = _parse(text)
    if tree is None:
        raise NoTextError("No text could be extracted from the web page.")
    metadata: dict[str, Any] = {}
    language = _language(tree)
    if language:
        metadata["language"] = language
    title = _title(tree)  # before the headings become paragraphs: the first <h1> may be the title
    _mark_headings(tree)
    element_count = sum(1 for _ in tree.iter())
    body = _main_content(tree, url) if element_count <= MAX_MAIN_CONTENT_ELEMENTS else ""
    metadata["extractor"] = "main-content"
    if len(normalize_text(body)) < _MIN_MAIN_CONTENT_CHARS:
        basic = _basic_text(tree)
        if normalize_text(basic):
            body = basic
            metadata["extractor"] = "basic"
    return finish(body, title=title, kind="html", metadata=metadata)
