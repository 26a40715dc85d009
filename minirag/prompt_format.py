"""The numbered context block of a grounded prompt: written by the chat orchestrator, read back by
the offline `local/extractive` model (which answers from the same context a hosted model sees).

    <context>
    [1] [MANDATORY] Source: Returns policy — Returns (https://example.com/returns)
    You can return any item within 30 days.
    [2] Source: Shipping
    We ship in two days.
    </context>

A header line is `[n]`, an optional authority label, and `Source: name`, with ` — title` and
` (url)` when known. Content follows on the next lines. The block's tags count only as whole
lines, and a content line that would look like a header (`[3] ...`) or a tag is written with a
leading space, so a document can neither end the block nor forge an item for the parser.

For a model reading the prompt, a document (or a page title) that spells the delimiters is
neutralised wherever they appear, in any case and spacing: `<context>` / `</context>` lose their
opening angle bracket (it becomes U+2039, a single angle quotation mark), and an authority label
(`[MANDATORY]`) becomes `(MANDATORY)`. So a page cannot appear to close the block and talk as the
system, nor promote itself to a binding rule; what it says stays quoted material inside the block.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

CONTEXT_OPEN = "<context>"
CONTEXT_CLOSE = "</context>"
AUTHORITY_LABELS = ("MANDATORY", "GUIDELINE", "INFORMATIONAL")

# A tag-like "<context" / "</ context" anywhere in document text, and an authority label in brackets.
_TAG_LIKE = re.compile(r"<(?=\s*/?\s*context\b)", re.IGNORECASE)
_LABEL_LIKE = re.compile(r"\[\s*(" + "|".join(AUTHORITY_LABELS) + r")\s*\]", re.IGNORECASE)

_HEADER = re.compile(
    r"^\[(?P<number>\d+)\](?: \[(?P<label>MANDATORY|GUIDELINE|INFORMATIONAL)\])? Source: (?P<source>.*?)"
    r"(?: — (?P<title>.*?))?(?: \((?P<url>https?://[^\s)]+)\))?$"
)


@dataclass(frozen=True)
class ContextItem:
    number: int
    text: str
    source_name: str = ""
    title: str = ""
    url: str = ""
    label: str | None = None  # MANDATORY, GUIDELINE, INFORMATIONAL, or None for plain local chunks


def neutralise(text: str) -> str:
    """Document text with the block's delimiters and authority labels made inert (see above)."""
    return _LABEL_LIKE.sub(r"(\1)", _TAG_LIKE.sub("\u2039", text))


def _one_line(value: str) -> str:
    # " — " separates the title in a header, so it cannot appear inside a name or title.
    return neutralise(" ".join(value.split()).replace(" — ", " - "))


def _url(value: str) -> str:
    # The header's URL ends at ")", so parentheses inside it are percent-encoded (and angle
    # brackets, so that it cannot spell a tag either).
    encoded = "".join(value.split())
    for char, code in (("(", "%28"), (")", "%29"), ("<", "%3C"), (">", "%3E")):
        encoded = encoded.replace(char, code)
    return encoded


def render_context(items: Sequence[ContextItem]) -> str:
    lines = [CONTEXT_OPEN]
    for item in items:
        header = f"[{item.number}]"
        if item.label:
            header += f" [{item.label}]"
        header += f" Source: {_one_line(item.source_name) or 'unnamed'}"
        if item.title and _one_line(item.title) != _one_line(item.source_name):
            header += f" — {_one_line(item.title)}"
        if item.url:
            header += f" ({_url(item.url)})"
        lines.append(header)
        for line in neutralise(item.text).splitlines() or [""]:
            escaped = re.match(r"^\s*\[\d+\]", line) or line.strip() in (CONTEXT_OPEN, CONTEXT_CLOSE)
            lines.append(f" {line}" if escaped else line)
    lines.append(CONTEXT_CLOSE)
    return "\n".join(lines)


def _unescaped(line: str) -> str:
    if line.startswith(" ") and (
        re.match(r"^\s*\[\d+\]", line[1:]) or line[1:].strip() in (CONTEXT_OPEN, CONTEXT_CLOSE)
    ):
        return line[1:]
    return line


def parse_context(prompt: str) -> list[ContextItem]:
    """The items of the first context block in `prompt` (none if there is no block)."""
    lines = prompt.splitlines()
    try:
        start = lines.index(CONTEXT_OPEN)
        end = lines.index(CONTEXT_CLOSE, start + 1)
    except ValueError:
        return []
    items: list[ContextItem] = []
    header: re.Match[str] | None = None
    body: list[str] = []

    def flush() -> None:
        if header is not None:
            items.append(
                ContextItem(
                    number=int(header["number"]),
                    text="\n".join(_unescaped(line) for line in body).strip("\n"),
                    source_name=header["source"] or "",
                    title=header["title"] or "",
                    url=header["url"] or "",
                    label=header["label"],
                )
            )

    for line in lines[start + 1 : end]:
        match = _HEADER.match(line)
        if match:
            flush()
            header, body = match, []
        elif header is not None:
            body.append(line)
    flush()
    return items
