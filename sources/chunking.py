"""Boundary-aware chunking of normalised text (DESIGN.md §4, step 3).

``chunk_text(text, size=512, overlap=64)`` cuts text into chunks of at most ``size`` characters,
each chunk after the first starting with up to ``overlap`` characters repeated from the end of
the previous one. ``chunk_spans`` is the same computation returning offsets into ``text``, for
callers that want to point back at the source (and for the tests, which check every invariant on
offsets rather than guessing where an overlap ends).

How a chunk is cut. Boundaries are ranked: paragraph break (a blank line) > line break > end of
sentence (``. ! ? …`` followed by whitespace, or the CJK full stop and fullwidth ! and ?, U+3002
U+FF01 U+FF1F, which end a sentence even with no space after them, as CJK text has none) > any
whitespace between words > anywhere (only inside a single word longer than ``size``). From the
position where the new content of a chunk starts, the highest rank whose first unit still fits in
a chunk is chosen, and the chunk is extended to the *last* boundary of that rank that fits. This
is exactly the classic recursive splitter (split on paragraphs, greedily pack them; split a
paragraph that is too big on lines, pack those; and so on down to words and characters),
computed without materialising any list of pieces.

Overlap. Before packing, the chunk is extended backwards into the previous chunk by at most
``overlap`` characters, starting on a word boundary (never mid-word). If the overlap would stop the
first unit of the chosen rank from fitting, the overlap is shortened, down to nothing: a chunk
never exceeds ``size``, and a unit is never split further just to make room for an overlap.

Guarantees (property-tested): every chunk is non-empty, stripped and at most ``size`` characters;
the chunks' new parts (chunk minus overlap) tile the text in order, separated only by whitespace,
so together they contain every word of the input exactly once, in order; the output depends only
on the arguments. Work per chunk is bounded by ``size``, so the whole run is linear in the length
of the text, whatever its shape (one giant line, no whitespace at all, ...).
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass

__all__ = ["DEFAULT_CHUNK_OVERLAP", "DEFAULT_CHUNK_SIZE", "ChunkSpan", "chunk_spans", "chunk_text"]

DEFAULT_CHUNK_SIZE = 512
DEFAULT_CHUNK_OVERLAP = 64

# Quotes and brackets that may close a sentence after its terminator: 'He said "Stop." Then ...'.
_CLOSERS = "\"')\\]\u00bb\u201d\u2019\u300d\u300f\u3011\u3015\uff09"
_CJK_TERMINATORS = "\u3002\uff01\uff1f"  # ideographic full stop, fullwidth ! and ?

# A boundary is the *start* of the whitespace run (or the zero-width position) separating two units,
# so a chunk ending there is already right-stripped.
_SENTENCE_GAP = re.compile(
    rf"[.!?…]+[{_CLOSERS}]*(?P<space>\s+)|[{_CJK_TERMINATORS}]+[{_CLOSERS}]*(?P<cjk>\s*)",
)
_WORD_GAP = re.compile(r"\s+")
_NON_SPACE = re.compile(r"\S")
# Where an overlap may start: a non-space character at the start of the text, after whitespace,
# or right after a CJK sentence terminator (and its closing quotes).
_WORD_START = re.compile(
    rf"(?:^|(?<=\s)|(?<=[{_CJK_TERMINATORS}])(?![{_CJK_TERMINATORS}{_CLOSERS}])"
    rf"|(?<=[{_CJK_TERMINATORS}][{_CLOSERS}])(?![{_CLOSERS}]))(?=\S)",
)
# How far past the window a boundary's whitespace run is read, so that a run straddling the window
# edge is still classified by all of its newlines. Normalised text has runs of at most 2.
_LOOKAHEAD = 64
# A hard cut is moved back by at most this many characters to avoid separating a base character
# from its combining marks (or a ZWJ sequence).
_MAX_CLUSTER_BACKOFF = 16


@dataclass(frozen=True, slots=True)
class ChunkSpan:
    """One chunk as offsets into the chunked text: the chunk is ``text[start:end]``.

    ``text[start:body_start]`` is the overlap (repeated from the previous chunk, plus the
    whitespace that followed it); ``text[body_start:end]`` is new content. Without overlap,
    ``start == body_start``.
    """

    start: int
    body_start: int
    end: int

    @property
    def overlap_length(self) -> int:
        return self.body_start - self.start


def _validate(size: int, overlap: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be an integer >= 1, got {size!r}")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap < size:
        raise ValueError(f"overlap must be an integer with 0 <= overlap < size ({size}), got {overlap!r}")


def _newline_boundaries(text: str, first: int, last: int, text_end: int) -> tuple[list[int], list[int]]:
    """Paragraph and line boundaries in ``(first, last]``: starts of whitespace runs holding 2+ / 1 newline.

    ``text[first]`` must not be whitespace. Newlines are located with ``str.find`` (memchr), far
    cheaper than a regex scan over a window that has none, as in giant single-line inputs.
    """
    paragraphs: list[int] = []
    lines: list[int] = []
    stop = min(text_end, last + _LOOKAHEAD)
    newline = text.find("\n", first, stop)
    while newline >= 0:
        gap = newline
        while text[gap - 1].isspace():  # stops at `first` at the latest, which is not whitespace
            gap -= 1
        if gap > last:
            break
        run_end = newline + 1
        newlines = 1
        while run_end < stop and text[run_end].isspace():
            newlines += text[run_end] == "\n"
            run_end += 1
        (paragraphs if newlines > 1 else lines).append(gap)
        newline = text.find("\n", run_end, stop)
    return paragraphs, lines


def _sentence_boundaries(text: str, first: int, last: int, text_end: int) -> list[int]:
    """Sentence boundaries in ``(first, last]``, in order."""
    found: list[int] = []
    for match in _SENTENCE_GAP.finditer(text, first, min(text_end, last + _LOOKAHEAD)):
        gap = match.start("space")
        if gap < 0:  # the CJK alternative matched
            gap = match.start("cjk")
        if gap > last:
            break
        if first < gap < text_end:
            found.append(gap)
    return found


def _last_word_boundary(text: str, reach: int) -> int:
    """Start of the last whitespace run starting at or before ``reach``.

    The caller guarantees that such a run exists after the chunk's first character and that
    ``reach`` is inside the text. Walks back over at most one word, so the cost stays bounded.
    """
    position = reach
    while not text[position].isspace():
        position -= 1
    while text[position - 1].isspace():
        position -= 1
    return position


def _overlap_start(text: str, previous: ChunkSpan | None, overlap: int, earliest: int, body_start: int) -> int:
    """Where the chunk whose new content starts at ``body_start`` should start.

    The earliest word start inside the last ``overlap`` characters of ``previous`` and not before
    ``earliest`` (so that the chunk's first unit still fits), or ``body_start`` if there is none.
    """
    if previous is None or overlap == 0:
        return body_start
    low = max(previous.start, previous.end - overlap, earliest)
    if low >= previous.end:
        return body_start
    match = _WORD_START.search(text, low, previous.end)
    return match.start() if match else body_start


def _joins_previous(char: str) -> bool:
    return unicodedata.category(char).startswith("M") or char in "\u200c\u200d"


def _hard_cut(text: str, start: int, limit: int) -> int:
    """End offset for a chunk that has to cut a single over-long word at ``limit`` (< len(text))."""
    # Don't leave combining marks or joiners orphaned at the start of the next chunk; a cluster
    # longer than the back-off (only in contrived text) is cut where the limit falls.
    end = limit
    while end > start + 1 and limit - end < _MAX_CLUSTER_BACKOFF and _joins_previous(text[end]):
        end -= 1
    return limit if _joins_previous(text[end]) else end


def _next_span(
    text: str, body_start: int, text_end: int, previous: ChunkSpan | None, size: int, overlap: int
) -> ChunkSpan:
    limit = body_start + size  # the furthest a chunk whose content starts here can reach
    paragraphs, lines = _newline_boundaries(text, body_start, limit, text_end)
    if text_end <= limit:
        paragraphs.append(text_end)  # the end of the text closes a unit of every rank
    # The highest rank with a boundary within reach wins; lower ranks are only scanned if needed.
    ends = paragraphs or lines or _sentence_boundaries(text, body_start, limit, text_end)
    if ends:
        start = _overlap_start(text, previous, overlap, ends[0] - size, body_start)
        end = ends[bisect_right(ends, start + size) - 1]
        return ChunkSpan(start, body_start, end)
    # Words: only the first boundary (for the overlap) and the last one that fits are needed, and
    # enumerating the dozens in between is what made giant single-line inputs slow.
    first_gap = _WORD_GAP.search(text, body_start, min(text_end, limit + 1))
    if first_gap is not None:
        start = _overlap_start(text, previous, overlap, first_gap.start() - size, body_start)
        return ChunkSpan(start, body_start, _last_word_boundary(text, start + size))
    # No boundary at all within reach: a single word longer than `size`. It gets no overlap, which
    # could only start before the word and so would take room from the word itself.
    return ChunkSpan(body_start, body_start, _hard_cut(text, body_start, limit))


def chunk_spans(text: str, *, size: int = DEFAULT_CHUNK_SIZE, overlap: int = DEFAULT_CHUNK_OVERLAP) -> list[ChunkSpan]:
    """Chunk ``text`` and return each chunk as offsets into ``text`` (see ``chunk_text``).

    Raises ``ValueError`` unless ``size >= 1`` and ``0 <= overlap < size``.
    """
    _validate(size, overlap)
    text_end = len(text.rstrip())
    first = _NON_SPACE.search(text, 0, text_end)
    if first is None:
        return []
    spans: list[ChunkSpan] = []
    previous: ChunkSpan | None = None
    body_start = first.start()
    while body_start < text_end:
        previous = _next_span(text, body_start, text_end, previous, size, overlap)
        spans.append(previous)
        following = _NON_SPACE.search(text, previous.end, text_end)
        body_start = following.start() if following else text_end
    return spans


def chunk_text(text: str, *, size: int = DEFAULT_CHUNK_SIZE, overlap: int = DEFAULT_CHUNK_OVERLAP) -> list[str]:
    """Split already-normalised ``text`` into chunks of at most ``size`` characters.

    Splits preferably on paragraphs, then lines, then sentences, then words, and only cuts inside
    a word longer than ``size``. Each chunk after the first starts with an overlap of at most
    ``overlap`` characters copied from the end of the previous chunk, starting on a word boundary;
    the overlap is shortened or dropped rather than letting a chunk exceed ``size``.

    Chunks are stripped and never empty; empty or whitespace-only text gives ``[]``. Deterministic.
    Raises ``ValueError`` unless ``size >= 1`` and ``0 <= overlap < size``.
    """
    return [text[span.start : span.end] for span in chunk_spans(text, size=size, overlap=overlap)]
