"""Turning uploaded files and fetched pages into clean text (DESIGN.md §4, step 1).

Every function here is pure (bytes in, ``ExtractedDocument`` out) and raises ``ExtractionError``
for content that cannot be used; that error is permanent (retrying the same bytes won't help)
and its ``message`` is safe to show to the tenant. Supported uploads: ``SUPPORTED_EXTENSIONS``,
each checked by content as well as by extension (``detect_file_type``).

Inputs are bounded: ``settings.UPLOAD_MAX_BYTES`` for any input, ``settings.EXTRACT_MAX_CHARS``
for the text any input yields, and per format limits against crafted files (``MAX_PDF_PAGES`` and
the PDF work budget, ``MAX_CSV_ROWS``, the DOCX ZIP-bomb limits, ``MAX_HTML_TAGS`` and
``MAX_MAIN_CONTENT_ELEMENTS``); each limit's reason is documented where it is defined, and all of
them, with what the tenant sees, in docs/sources.md ("Limits and hostile input").
"""

from __future__ import annotations

from sources.extraction.base import (
    SUPPORTED_EXTENSIONS,
    ExtractedDocument,
    ExtractionError,
    UnsupportedFileTypeError,
    check_size,
)
from sources.extraction.detection import detect_file_type
from sources.extraction.pdf import MAX_PDF_PAGES, extract_pdf
from sources.extraction.tabular import MAX_CSV_ROWS, extract_csv
from sources.extraction.text import decode_text, extract_plain
from sources.extraction.web import MAX_HTML_TAGS, MAX_MAIN_CONTENT_ELEMENTS, extract_html
from sources.extraction.word import (
    MAX_DOCX_COMPRESSION_RATIO,
    MAX_DOCX_ENTRIES,
    MAX_DOCX_UNCOMPRESSED_BYTES,
    MAX_DOCX_XML_BYTES,
    extract_docx,
)

__all__ = [
    "MAX_CSV_ROWS",
    "MAX_DOCX_COMPRESSION_RATIO",
    "MAX_DOCX_ENTRIES",
    "MAX_DOCX_UNCOMPRESSED_BYTES",
    "MAX_DOCX_XML_BYTES",
    "MAX_HTML_TAGS",
    "MAX_MAIN_CONTENT_ELEMENTS",
    "MAX_PDF_PAGES",
    "SUPPORTED_EXTENSIONS",
    "ExtractedDocument",
    "ExtractionError",
    "UnsupportedFileTypeError",
    "decode_text",
    "detect_file_type",
    "extract_csv",
    "extract_docx",
    "extract_file",
    "extract_html",
    "extract_pdf",
]


def extract_file(data: bytes, filename: str) -> ExtractedDocument:
    """Detect the kind of an uploaded file (``detect_file_type``) and extract its text.

    Raises ``UnsupportedFileTypeError`` for an unsupported or mismatched file, and
    ``ExtractionError`` for an empty or oversized file or anything the extractor refuses.
    """
    if not data:
        raise ExtractionError("The file is empty.")
    check_size(len(data), "file")
    kind = detect_file_type(data, filename)
    if kind == "pdf":
        return extract_pdf(data)
    if kind == "docx":
        return extract_docx(data)
    if kind == "html":
        return extract_html(data)
    if kind == "csv":
        return extract_csv(data)
    return extract_plain(data, kind)
