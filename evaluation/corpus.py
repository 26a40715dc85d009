"""The documents of a set as MiniRAG reads them, whole or cut into topics, and how a passage is found in text.

Two ways to give a bot the same documents, as tenants do:

* **page**: each file is one source, uploaded as it is (the real extraction path: HTML through
  ``extract_html``, Markdown as text). Chunks then mix the topics of a page.
* **topic**: each file is cut at its headings, and each section is one text source (its heading
  and its text), so no chunk mixes two topics.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import cache
from pathlib import Path

from evaluation.sets import EvaluationSet, Gold, words

MARKDOWN_HEADING = re.compile(r"^#{1,4} +\S")
FENCE = re.compile(r"^(```|~~~)")


@dataclass(frozen=True)
class Section:
    file: str
    title: str
    text: str


def kind_of(file: str) -> str:
    return "html" if file.endswith((".html", ".htm")) else "markdown" if file.endswith(".md") else "text"


@cache
def _extracted(path: str, kind: str) -> str:
    """The text of one file, through MiniRAG's own extraction (as an upload of it would read)."""
    from sources.extraction import extract_html, extract_plain

    data = Path(path).read_bytes()
    return extract_html(data).text if kind == "html" else extract_plain(data, kind).text


def document_text(evaluation_set: EvaluationSet, file: str) -> str:
    return _extracted(str(evaluation_set.path(file)), kind_of(file))


def sections(evaluation_set: EvaluationSet, file: str) -> list[Section]:
    """The file cut at its headings: Markdown `#`-`####` outside code fences, from the extracted
    text; HTML h1-h4, from the page itself (the main-content extractor keeps paragraphs but may
    drop the headings between them), each section the text of the blocks up to the next heading.
    Markdown text before the first heading is a section of its own; an HTML page's is its
    navigation, left out."""
    path = evaluation_set.path(file)
    if kind_of(file) == "html":
        parts = _html_sections(path.read_bytes())
    else:
        parts = _markdown_sections(document_text(evaluation_set, file))
    found = [Section(file=file, title=title or file, text="\n\n".join(blocks).strip()) for title, blocks in parts]
    return [section for section in found if len(words(section.text)) > len(words(section.title))]


def _markdown_sections(text: str) -> list[tuple[str, list[str]]]:
    parts: list[tuple[str, list[str]]] = []
    fenced = False
    for line in text.split("\n"):
        if FENCE.match(line.strip()):
            fenced = not fenced
        heading = not fenced and MARKDOWN_HEADING.match(line)
        if heading or not parts:
            parts.append((line.lstrip("# ").strip() if heading else "", []))
        parts[-1][1].append(line)
    return parts


HTML_HEADINGS = {"h1", "h2", "h3", "h4"}
HTML_BLOCKS = {"p", "pre", "li", "dt", "dd", "td", "th", "blockquote", "caption"}


def _html_sections(data: bytes) -> list[tuple[str, list[str]]]:
    from lxml import html as lxml_html

    body = lxml_html.fromstring(data).find("body")
    parts: list[tuple[str, list[str]]] = [("", [])]
    if body is None:
        return parts
    for element in body.iter():
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag in HTML_HEADINGS:
            parts.append((" ".join(element.text_content().split()), []))
        elif tag in HTML_BLOCKS and not any(a.tag in HTML_BLOCKS for a in element.iterancestors()):
            text = element.text_content()
            text = text.strip("\n") if tag == "pre" else " ".join(text.split())
            if text:
                parts[-1][1].append(text)
    # What comes before the first heading of a page is its navigation bar, not a topic.
    return [(title, [title, *blocks]) for title, blocks in parts if blocks and title]


def longest_run(quote: str, text: str) -> int:
    """How many words of `quote`, in a row, appear in `text` in the same order."""
    quote_words, text_words = words(quote), words(text)
    if not quote_words or not text_words:
        return 0
    matcher = SequenceMatcher(None, quote_words, text_words, autojunk=False)
    return matcher.find_longest_match(0, len(quote_words), 0, len(text_words)).size


def holds_passage(text: str, gold: Gold) -> bool:
    """Whether `text` (a retrieved chunk, or an answer) carries the gold passage: half of its words
    in a row, and at least eight (or the whole passage when it is shorter). A chunk boundary may cut
    a passage; half of it is still the passage, and eight words in a row are never a coincidence."""
    needed = min(len(words(gold.quote)), max(8, (len(words(gold.quote)) + 1) // 2))
    return needed > 0 and longest_run(gold.quote, text) >= needed
