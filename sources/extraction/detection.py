"""Which kind of file an upload is: by its extension, confirmed by its content."""

from __future__ import annotations

import codecs
import io
import re
import zipfile
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as defused_fromstring

from sources.extraction.archive import ZIP_ERRORS, MemberTooLargeError, read_member
from sources.extraction.base import IMAGE_KINDS, KIND_BY_EXTENSION, UnsupportedFileTypeError
from sources.extraction.text import decode_text
from sources.normalize import normalize_text

# Signatures that settle what a file is even if it happens to decode as text.
_SIGNATURES = (
    (b"%PDF-", "a PDF document"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a legacy Microsoft Office file (.doc, .xls or .ppt)"),
    (b"{\\rtf", "an RTF document"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"II+\x00", "a BigTIFF image"),
    (b"MM\x00+", "a BigTIFF image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\x7fELF", "an executable program"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
)
# Only telling when the content is not text anyway ("MZ" also starts ordinary sentences).
_WEAK_SIGNATURES = ((b"MZ", "a Windows executable"),)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_BOMS_WITH_NULS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)

_TEXT_SAMPLE_BYTES = 64 * 1024
# Control characters no text file contains (tab, line breaks, form feed, ESC of terminal colours and
# the DOS end-of-file Ctrl-Z are allowed), and the replacement character left by failed decoding.
_BINARY_CHARS = re.compile("[\x00-\x08\x0e-\x19\x1c-\x1f\x7f\ufffd]")
_MAX_BINARY_CHARS_PER_100 = 1

_WORD_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
_MAX_CONTENT_TYPES_BYTES = 1024 * 1024
_CONTENT_TYPES_NS = "{http://schemas.openxmlformats.org/package/2006/content-types}"


# The images we read with OCR, by their magic bytes (BigTIFF, WebP, GIF... are not among them).
_IMAGE_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)


def image_kind(data: bytes) -> str | None:
    """The image kind ("png", "jpeg" or "tiff") whose signature starts ``data``, else None."""
    for signature, kind in _IMAGE_SIGNATURES:
        if data.startswith(signature):
            return kind
    return None


def is_pdf(data: bytes) -> bool:
    """Whether ``data`` starts with the PDF header (a little leading whitespace is tolerated)."""
    return data[:1024].lstrip().startswith(b"%PDF-")


def looks_like_text(data: bytes) -> bool:
    """Whether ``data`` decodes as text: no NUL bytes (unless a UTF-16/32 BOM explains them) and
    almost no control or undecodable characters in the first 64 KiB."""
    if b"\x00" in data and not data.startswith(_BOMS_WITH_NULS):
        return False
    sample = data[:_TEXT_SAMPLE_BYTES]
    try:
        # Incremental so that a multi-byte character cut by the sample does not count as an error.
        text = codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        text = decode_text(sample)
    bad = len(_BINARY_CHARS.findall(text))
    return bad <= 4 or bad * 100 <= len(text) * _MAX_BINARY_CHARS_PER_100


def _describe_zip(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        return "a damaged ZIP archive"
    if "word/document.xml" in names:
        return "a Word document (.docx)"
    if "xl/workbook.xml" in names:
        return "an Excel workbook (.xlsx)"
    if "ppt/presentation.xml" in names:
        return "a PowerPoint presentation (.pptx)"
    return "a ZIP archive"


def describe_content(data: bytes) -> str:
    """A short phrase for what the bytes look like, for error messages."""
    if not data:
        return "an empty file"
    if is_pdf(data):
        return "a PDF document"
    if data.startswith(_ZIP_MAGIC):
        return _describe_zip(data)
    for signature, description in _SIGNATURES:
        if data.startswith(signature):
            return description
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "a WebP image"
    if looks_like_text(data):
        return "plain text"
    for signature, description in _WEAK_SIGNATURES:
        if data.startswith(signature):
            return description
    return "binary data"


def _docx_problem(data: bytes) -> str | None:
    """None if ``data`` is a Word (.docx) package, else what it looks like instead."""
    if not data.startswith(_ZIP_MAGIC):
        return describe_content(data)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            if "word/document.xml" not in names or "[Content_Types].xml" not in names:
                return _describe_zip(data)
            # Read in small steps and never past 1 MiB, whatever size the directory declares.
            content_types = read_member(archive, archive.getinfo("[Content_Types].xml"), limit=_MAX_CONTENT_TYPES_BYTES)
    except MemberTooLargeError:
        return "a damaged Word document"
    except ZIP_ERRORS:
        return "a damaged ZIP archive"
    try:
        root = defused_fromstring(content_types)
    except (ParseError, DefusedXmlException, ValueError):
        return "a damaged Word document"
    for override in root.iter(f"{_CONTENT_TYPES_NS}Override"):
        if override.get("PartName", "").lower() == "/word/document.xml":
            content_type = override.get("ContentType", "")
            if content_type == _WORD_MAIN:
                return None
            if "macroenabled" in content_type.lower():
                return "a macro-enabled Word document (.docm)"
            if "template" in content_type.lower():
                return "a Word template (.dotx)"
            return "an Office document of another kind"
    return None  # no explicit override: let the parser judge


def _extension(filename: str) -> str:
    base = re.split(r"[/\\]", filename or "")[-1].strip()
    _stem, dot, extension = base.rpartition(".")
    return f".{extension.lower()}" if dot and extension else ""


def _display_name(filename: str) -> str:
    base = re.split(r"[/\\]", filename or "")[-1]
    base = " ".join(normalize_text(base).split())
    if len(base) > 80:
        base = base[:77] + "..."
    return f"'{base}'" if base else "the file"


def detect_file_type(data: bytes, filename: str) -> str:
    """The kind of an uploaded file: "text", "markdown", "csv", "html", "pdf", "docx", or one of
    the images read with OCR, "png", "jpeg" and "tiff".

    The extension picks the kind; the content must agree: a PDF starts with ``%PDF-``; a .docx is
    a ZIP holding ``word/document.xml`` and ``[Content_Types].xml`` (and is not a macro-enabled
    document or a template); the text kinds (.txt .md .csv .html .htm) must decode as text with no
    NUL bytes (UTF-16/32 with a BOM is text) and must not carry another format's signature; an
    image extension (.png .jpg .jpeg .tif .tiff) needs the magic bytes of one of those three formats,
    and the kind returned is the one the content has (a PNG saved as .jpg is read as the PNG it is).

    Raises ``UnsupportedFileTypeError`` for an unknown extension or content that does not match
    the extension (a PDF renamed .txt, an executable renamed .pdf, ...). Only reads the ZIP
    directory and at most 64 KiB of content, so it is cheap enough for upload time.
    """
    name = _display_name(filename)
    extension = _extension(filename)
    kind = KIND_BY_EXTENSION.get(extension)
    if kind is None:
        raise UnsupportedFileTypeError(
            f"{name} has a {extension} extension" if extension else f"{name} has no file extension"
        )
    problem: str | None = None
    if kind == "pdf":
        problem = None if is_pdf(data) else describe_content(data)
    elif kind in IMAGE_KINDS:
        # Phones and scanners get extensions wrong between image formats; the decoder is picked
        # from the content (and only among these three), so trust the magic bytes.
        content_kind = image_kind(data)
        if content_kind is not None:
            return content_kind
        problem = describe_content(data)
    elif kind == "docx":
        problem = _docx_problem(data)
    elif data:
        described = describe_content(data)
        problem = None if described == "plain text" else described
    if problem is not None:
        raise UnsupportedFileTypeError(
            f"the content of {name} does not match its extension {extension} (it looks like {problem})"
        )
    return kind
