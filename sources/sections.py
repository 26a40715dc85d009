"""A document cut at its headings, so that a chunk never mixes two sections and always says where
it comes from.

A page of documentation is a row of topics. Cut into fixed-size pieces regardless of its headings,
a chunk ends one topic and starts the next ("…five working days. ## rotate_keys Re-encrypts…"):
its embedding sits between the two, and a question on either finds it only half-way. And a piece
from the middle of a long section has lost its subject: "Run it twice; the second run does
nothing." is about key rotation only because of the heading three paragraphs up.

So `sections` cuts the text at its Markdown headings (`#` to `######` at the start of a line,
outside fenced code; uploaded Markdown has them, and HTML extraction writes the page's `<h1>`-`<h6>`
that way) and gives each section its **trail**: the headings above it, outermost first
("Operations > Rotating keys and secrets"). Ingestion chunks each section's body on its own and
starts every chunk with the trail as a heading line, so both the embedding and the lexical vector
of the chunk carry its subject, and a citation shows where it is. Text without headings is one
section with an empty trail: chunked exactly as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
FENCE = re.compile(r"^\s*(```|~~~)")
TRAIL_SEPARATOR = " > "
# A trail longer than this keeps its innermost headings: the nearest ones say the most.
MAX_TRAIL_CHARS = 160


@dataclass(frozen=True)
class Section:
    trail: str  # the headings above the body, outermost first; "" before the first heading
    level: int  # the innermost heading's level (0 without one)
    body: str

    @property
    def header(self) -> str:
        """The line each chunk of this section starts with ("" without headings)."""
        return f"{'#' * self.level} {self.trail}" if self.trail else ""


def _trail(headings: list[tuple[int, str]]) -> str:
    titles = [title for _, title in headings]
    while len(titles) > 1 and len(TRAIL_SEPARATOR.join(titles)) > MAX_TRAIL_CHARS:
        titles.pop(0)
    return TRAIL_SEPARATOR.join(titles)[:MAX_TRAIL_CHARS]


def sections(text: str) -> list[Section]:
    """The text's sections in order; sections whose body is empty (a heading directly followed by
    a sub-heading) are left out: their heading lives on in the trail of the ones below."""
    found: list[Section] = []
    headings: list[tuple[int, str]] = []  # the open headings, outermost first
    lines: list[str] = []
    fenced = False

    def close() -> None:
        body = "\n".join(lines).strip()
        if body:
            level = headings[-1][0] if headings else 0
            found.append(Section(trail=_trail(headings), level=level, body=body))
        lines.clear()

    for line in text.split("\n"):
        if FENCE.match(line):
            fenced = not fenced
        heading = None if fenced else HEADING.match(line)
        if heading is None:
            lines.append(line)
            continue
        close()
        level = len(heading.group(1))
        while headings and headings[-1][0] >= level:
            headings.pop()
        headings.append((level, " ".join(heading.group(2).split())))
    close()
    return found
