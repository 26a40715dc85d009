"""What every extractor shares: the result type, the errors, the supported kinds and the limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from sources.normalize import normalize_text

SUPPORTED_EXTENSIONS = (".txt", ".md", ".csv", ".html", ".htm", ".pdf", ".docx")

KIND_BY_EXTENSION = {
    ".txt": "text",
    ".md": "markdown",
    ".csv": "csv",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
}
MIME_TYPES = {
    "text": "text/plain",
    "markdown": "text/markdown",
    "csv": "text/csv",
    "html": "text/html",
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}
# How each kind is named in messages shown to the tenant.
KIND_LABELS = {
    "text": "text file",
    "markdown": "Markdown file",
    "csv": "CSV file",
    "html": "web page",
    "pdf": "PDF",
    "docx": "Word document",
}


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


def finish(text: str, *, title: str, kind: str, metadata: dict[str, Any] | None = None) -> ExtractedDocument:
    """Normalise the extracted text and refuse an empty result."""
    text = normalize_text(text)
    if not text:
        raise ExtractionError(f"No text could be extracted from the {KIND_LABELS[kind]}.")
    return ExtractedDocument(text=text, title=clean_title(title), mime_type=MIME_TYPES[kind], metadata=metadata or {})
