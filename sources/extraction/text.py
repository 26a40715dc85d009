"""Bytes to text (``decode_text``) and the plain-text kinds (.txt, .md)."""

from __future__ import annotations

import codecs
import logging
import re

from charset_normalizer import from_bytes

from sources.extraction.base import ExtractedDocument, finish

logger = logging.getLogger(__name__)

# Longest BOMs first: the UTF-32-LE BOM starts with the UTF-16-LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# As browsers do (WHATWG Encoding): a page labelled Latin-1 or ASCII is really Windows-1252, which
# is identical except that it has printable characters (curly quotes, euro, dashes) at 0x80-0x9F.
_CHARSET_ALIASES = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin-1": "cp1252",
    "latin1": "cp1252",
    "l1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "utf8": "utf-8",
}
# Python codecs that decode bytes but are not character sets: a declared charset naming one of
# these (a hostile page can declare anything) is ignored.
_NOT_CHARSETS = {"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined", "mbcs", "oem"}
# Labels that are usually a default rather than a statement about the bytes.
_DEFAULT_DECLARATIONS = {"cp1252", "iso8859-1", "ascii", "iso8859-15", "latin-1"}
# charset-normalizer is only consulted on a prefix: enough to recognise an encoding, and it keeps
# the guess fast on 10 MB inputs. The full input is then decoded with the guessed codec.
_GUESS_SAMPLE_BYTES = 64 * 1024


def _stray_bytes_as_cp1252(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler: bytes that are not UTF-8 are read as Windows-1252 (U+FFFD for the
    five bytes it leaves undefined), the usual origin of stray bytes in a UTF-8 text."""
    if not isinstance(error, UnicodeDecodeError):  # registered for decoding only
        raise error
    return error.object[error.start : error.end].decode("cp1252", errors="replace"), error.end


codecs.register_error("minirag-cp1252-fallback", _stray_bytes_as_cp1252)


def _codec_for(label: str | None) -> str | None:
    if not label:
        return None
    label = label.strip().strip("\"'").strip().lower()
    label = _CHARSET_ALIASES.get(label, label)
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError):
        return None
    if info.name.replace("_", "-") in _NOT_CHARSETS or not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def decode_text(data: bytes, declared_charset: str | None = None) -> str:
    """Decode bytes of unknown provenance to text. Never raises on any input.

    Order: a byte order mark (UTF-8/16/32) wins; then the declared charset if it is a real
    character set and decodes the bytes cleanly (Latin-1 and ASCII labels read as Windows-1252,
    as browsers do); then strict UTF-8; then UTF-8 with its stray bytes read as Windows-1252, when
    the bytes are mostly UTF-8 (``_mostly_utf8``: mixed encodings, e.g. a Latin-1 paragraph pasted
    into a UTF-8 file); then charset-normalizer's best guess; as a last resort Windows-1252 with
    undecodable bytes replaced by U+FFFD.
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError:
                if codec == "utf-8-sig":
                    return data.decode(codec, errors="minirag-cp1252-fallback")
                if codec != "utf-32":  # an odd-length UTF-16 text is still mostly readable
                    return data.decode(codec, errors="replace")
    codec = _codec_for(declared_charset)
    if codec in _DEFAULT_DECLARATIONS and _is_utf8(data):
        # Servers and editors label everything Latin-1 by default; bytes that are valid UTF-8
        # (non-ASCII included) essentially never are Latin-1 text that just happens to look so.
        codec = "utf-8"
    if codec is not None:
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if _mostly_utf8(data):
        return data.decode("utf-8", errors="minirag-cp1252-fallback")
    if _looks_western(data):
        return data.decode("cp1252", errors="replace")
    guessed = _guess_codec(data)
    if guessed is not None:
        return data.decode(guessed, errors="replace")
    return data.decode("cp1252", errors="replace")


def _looks_western(data: bytes) -> bool:
    """Whether the bytes read as Western European text in Windows-1252, the most common legacy
    encoding. charset-normalizer is unreliable on short Latin texts (it read a German cp1252
    sentence as mac_turkish), so this plain check runs first. Text in Cyrillic, Greek, Hebrew,
    Arabic... single-byte code pages also decodes in cp1252, but as words made only of accented
    letters; real Western text has at most a minority of non-ASCII letters.
    """
    try:
        text = data[:_GUESS_SAMPLE_BYTES].decode("cp1252")
    except UnicodeDecodeError:  # 0x81, 0x8D, 0x8F, 0x90, 0x9D are unassigned (frequent in CJK encodings)
        return False
    letters = non_ascii = 0
    for char in text:
        if char.isalpha():
            letters += 1
            non_ascii += char > "\x7f"
    return letters > 0 and non_ascii * 2 <= letters


def _mostly_utf8(data: bytes) -> bool:
    """Whether the bytes are UTF-8 with a few stray bytes: some valid multi-byte sequences, and at
    most four stray bytes for each. Legacy single-byte text (cp1252, cp1251...) rarely forms a
    valid multi-byte sequence, and then among many more invalid ones, so it keeps its own
    decoding."""
    replaced = data.decode("utf-8", errors="replace")
    literal = data.count("\ufffd".encode())  # U+FFFD really present in the text
    invalid = replaced.count("\ufffd") - literal
    non_ascii = len(replaced) - len(replaced.encode("ascii", errors="ignore"))
    valid_multibyte = non_ascii - replaced.count("\ufffd")
    return valid_multibyte > 0 and valid_multibyte * 4 >= invalid


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _guess_codec(data: bytes) -> str | None:
    sample = data[:_GUESS_SAMPLE_BYTES]
    try:
        best = from_bytes(sample).best()
    except Exception:  # a detector bug must not make a file undecodable; cp1252 still works
        logger.warning("charset-normalizer failed on a %d-byte sample", len(sample), exc_info=True)
        return None
    if best is None:
        return None
    return _codec_for(best.encoding)


_ATX_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


def markdown_title(text: str) -> str:
    """The text of the first Markdown heading (ATX ``# Title`` or setext), "" if there is none.

    Lines inside fenced code blocks are skipped: a ``# comment`` in a shell snippet is not a title.
    """
    in_fence = False
    previous = ""
    for line in text.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
            previous = ""
            continue
        if in_fence:
            continue
        heading = _ATX_HEADING.match(line)
        if heading:
            return heading.group(1).strip()
        if previous.strip() and _SETEXT_UNDERLINE.match(line) and not previous.lstrip().startswith(("-", "*", ">")):
            return previous.strip()
        previous = line
    return ""


def extract_plain(data: bytes, kind: str) -> ExtractedDocument:
    """A .txt or .md file: decoded and normalised; the title is its first Markdown heading."""
    text = decode_text(data)
    return finish(text, title=markdown_title(text), kind=kind, metadata={})
