"""What every extractor shares: the result type, the errors, the supported kinds and the limits."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from sources.normalize import normalize_text

SUPPORTED_EXTENSIONS = (
    ".txt", ".md", ".csv", ".html", ".htm", ".pdf", ".docx", ".png", ".jpg", ".jpeg", ".tif", ".tiff"
)  # fmt: skip

KIND_BY_EXTENSION = {
    ".txt": "text",
    ".md": "markdown",
    ".csv": "csv",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".tif": "tiff",
    ".tiff": "tiff",
}
# Pictures of text: read with OCR (sources/extraction/ocr.py).
IMAGE_KINDS = ("png", "jpeg", "tiff")
MIME_TYPES = {
    "text": "text/plain",
    "markdown": "text/markdown",
    "csv": "text/csv",
    "html": "text/html",
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "png": "image/png",
    "jpeg": "image/jpeg",
    "tiff": "image/tiff",
}
# How each kind is named in messages shown to the tenant.
KIND_LABELS = {
    "text": "text file",
    "markdown": "Markdown file",
    "csv": "CSV file",
    "html": "web page",
    "pdf": "PDF",
    "docx": "Word document",
    "png": "PNG image",
    "jpeg": "JPEG image",
    "tiff": "TIFF image",
}
# The phrase every "this file has no text" error carries, whatever the format (clients and
# support search for it): a document without text is most often a scan saved without OCR.
NO_TEXT_FOUND = "no text found — is it a scan?"


@dataclass(frozen=True)
class ExtractedDocument:
    """The text of one file or page, ready to be chunked.

    ``text`` is normalised (``normalize_text``) and never empty. ``title`` is the best title the
    format offers ("" if none). ``metadata`` holds cheap facts about the source (page count, CSV
    columns, declared language...), JSON-serialisable.
    """

    text: str
    title: str
    mime_type: str
    metadata: dict[str, Any] = field(default_factory=dict)


class ExtractionError(Exception):
    """The content cannot be turned into text. Permanent: retrying the same bytes will not help.

    ``message`` is written for the tenant: it says what is wrong and, where possible, what to do,
    and never contains internals (paths, stack traces, library messages).
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NoTextError(ExtractionError):
    """The content is readable but holds no text."""


class UnsupportedFileTypeError(ExtractionError):
    """The file is of a type we don't extract, or its content does not match its extension.

    Built from the specific reason; the message always starts with "Unsupported file type" and
    lists the supported extensions.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"Unsupported file type: {reason}. Supported file types: {', '.join(SUPPORTED_EXTENSIONS)}.")
        self.reason = reason


def max_input_bytes() -> int:
    """The largest input any extractor accepts (read at call time so tests can override it)."""
    return int(settings.UPLOAD_MAX_BYTES)


def max_text_chars() -> int:
    """The most characters of text one file or page may yield (``settings.EXTRACT_MAX_CHARS``)."""
    return int(settings.EXTRACT_MAX_CHARS)


def too_much_text(what: str) -> ExtractionError:
    limit = max_text_chars()
    return ExtractionError(
        f"The {what} holds more than {limit:,} characters of text, the most one document may have. "
        "Split it into smaller files."
    )


def check_text_length(length: int, what: str) -> None:
    if length > max_text_chars():
        raise too_much_text(what)


def check_size(size: int, what: str) -> None:
    limit = max_input_bytes()
    if size > limit:
        raise ExtractionError(
            f"The {what} is too large ({size / 1048576:.1f} MB); the limit is {limit / 1048576:.0f} MB."
        )


def clean_title(title: object) -> str:
    """A title as a single normalised line, "" for anything that is not a usable string."""
    if not isinstance(title, str):
        return ""
    return " ".join(normalize_text(title).split())[:500]


# What PostgreSQL refuses in text and JSON (NUL) and what UTF-8 cannot encode (lone surrogates).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(value: Any) -> Any:
    """``value`` (JSON-like: str, list, dict, numbers) with NUL and lone surrogates removed from
    every string, so that it can be saved in a PostgreSQL ``jsonb`` or text column."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("", value)
    if isinstance(value, list | tuple):
        return [storable(item) for item in value]
    if isinstance(value, dict):
        return {storable(str(key)): storable(item) for key, item in value.items()}
    return value


def no_text_error(kind: str, detail: str = "") -> NoTextError:
    """The error for a file that yields no text: names the file kind, carries ``NO_TEXT_FOUND``,
    and ``detail`` (what was tried) or, by default, how to get a scan read."""
    detail = detail or (
        "If it holds pictures of text, upload them as a PDF or as PNG, JPEG or TIFF images: those are read with OCR."
    )
    return NoTextError(f"No text could be extracted from the {KIND_LABELS[kind]}: {NO_TEXT_FOUND} {detail}")


def finish(text: str, *, title: str, kind: str, metadata: dict[str, Any] | None = None) -> ExtractedDocument:
    """Normalise the extracted text; refuse an empty result (``no_text_error``; for a web page,
    which is no scan, a plain ``NoTextError``) or one over ``max_text_chars()``."""
    text = normalize_text(text)
    if not text:
        if kind == "html":
            raise NoTextError("No text could be extracted from the web page.")
        raise no_text_error(kind)
    check_text_length(len(text), KIND_LABELS[kind])
    return ExtractedDocument(
        text=text, title=clean_title(title), mime_type=MIME_TYPES[kind], metadata=storable(metadata or {})
    )
