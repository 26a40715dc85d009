"""Text normalisation applied to everything ingestion extracts, before it is chunked and embedded.

``normalize_text`` makes text from very different sources (PDF text layers, Word documents, web
pages, CSV renderings, user uploads in any encoding) look alike, so that the same words produce the
same chunks, the same content hashes and therefore the same point ids (DESIGN.md §4, step 4).

Contract (each point is tested, idempotence by a property test):

* Unicode NFC.
* ``\\r\\n`` and ``\\r`` become ``\\n``; the Unicode line/paragraph separators and NEL become
  line breaks too.
* Every other kind of space (NBSP, the U+2000-U+200A family, narrow NBSP, medium mathematical
  space, ideographic space, Ogham space mark, tab, form feed, vertical tab, the ASCII
  file/group/record/unit separators) becomes a plain space: two words are never glued together.
* Invisible characters that carry no text are removed: zero-width space, word joiner, BOM / zero
  width no-break space, soft hyphen, lone surrogates and every other control character except
  ``\\n``. ZWJ and ZWNJ (U+200D, U+200C) are kept: they change the meaning of text in scripts
  such as Persian, Hindi and in emoji sequences.
* Runs of spaces become one space; spaces at the start and end of lines are removed; three or
  more line breaks become two (paragraph breaks survive, layout padding does not); the whole text
  is stripped.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["normalize_text"]


def _build_replacements() -> dict[str, str]:
    table: dict[str, str] = {}
    # Control characters (Cc) are removed, except the ones that separate words or lines: removing
    # those would glue the words on either side together.
    for code in (*range(0x00, 0x20), *range(0x7F, 0xA0)):
        table[chr(code)] = ""
    for char in "\t\v\f\x1c\x1d\x1e\x1f":
        table[char] = " "
    del table["\n"]
    table["\r"] = "\n"  # "\r\n" is replaced first, so a lone "\r" is a line break
    table["\x85"] = "\n"  # NEL, NEXT LINE
    table["\u2028"] = "\n"  # LINE SEPARATOR
    table["\u2029"] = "\n\n"  # PARAGRAPH SEPARATOR
    # Every space separator (category Zs) other than the ASCII space.
    for code in (0xA0, 0x1680, *range(0x2000, 0x200B), 0x202F, 0x205F, 0x3000):
        table[chr(code)] = " "
    # Invisible format characters that never carry meaning in extracted text. ZWNJ (U+200C) and
    # ZWJ (U+200D) are deliberately absent; bidi marks are left alone as well.
    for code in (0x00AD, 0x200B, 0x2060, 0xFEFF):
        table[chr(code)] = ""
    # Lone surrogates can come out of lenient decoders ("surrogateescape"); they cannot be encoded
    # as UTF-8, so PostgreSQL, JSON and the embedding providers would all reject the text.
    for code in range(0xD800, 0xE000):
        table[chr(code)] = ""
    return table


def _character_class(chars: list[str]) -> str:
    """A regex character class matching exactly ``chars``, written as ranges."""
    codes = sorted(ord(char) for char in chars)
    ranges: list[tuple[int, int]] = []
    for code in codes:
        if ranges and code == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    return "[" + "".join(f"\\U{low:08x}-\\U{high:08x}" for low, high in ranges) + "]"


_REPLACEMENTS = _build_replacements()
_SPECIAL_CHARS = re.compile(_character_class(list(_REPLACEMENTS)))


def _replace(match: re.Match[str]) -> str:
    return _REPLACEMENTS[match.group()]


def _squeeze(text: str, run: str, single: str) -> str:
    # str.replace is a C loop; each pass shortens every run, so few passes are ever needed, and a
    # text without the run (the usual case) is scanned once. Far faster than an equivalent regex.
    while run in text:
        text = text.replace(run, single)
    return text


def normalize_text(text: str) -> str:
    """Return ``text`` normalised as described in the module docstring.

    Pure and idempotent: ``normalize_text(normalize_text(t)) == normalize_text(t)`` for every
    string. About 0.1 s for 10 MB of ordinary text.
    """
    if not text:
        return ""
    # Character-level mapping runs before NFC: removing e.g. a soft hyphen between a letter and a
    # combining mark can create a new composable pair, and NFC must see the final sequence. NFC
    # itself never produces a character the table would change (the only canonical decompositions
    # to a space, U+2000/U+2001, are mapped first), so the order keeps the function idempotent.
    text = _SPECIAL_CHARS.sub(_replace, text.replace("\r\n", "\n"))
    text = unicodedata.normalize("NFC", text)
    text = _squeeze(text, "  ", " ")
    # With single spaces only, each side of a newline has at most one space to drop.
    text = text.replace(" \n", "\n").replace("\n ", "\n")
    text = _squeeze(text, "\n\n\n", "\n\n")
    return text.strip(" \n")
