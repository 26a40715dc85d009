"""Turning uploaded files and fetched pages into clean text (DESIGN.md §4, step 1).

Every function here is pure (bytes in, ``ExtractedDocument`` out) and raises ``ExtractionError``
for content that cannot be used; that error is permanent (retrying the same bytes won't help)
and its ``message`` is safe to show to the tenant. Supported uploads: ``SUPPORTED_EXTENSIONS``,
each checked by content as well as by extension (``detect_file_type``). Images (PNG, JPEG, TIFF)
and the pages of a PDF that have no text layer are read with OCR (``ocr.py``), when Tesseract is
installed. A file that yields no text at all fails with ``NO_TEXT_FOUND`` in its message.

Inputs are bounded: ``settings.UPLOAD_MAX_BYTES`` for any input, ``settings.EXTRACT_MAX_CHARS``
for the text any input yields, and per format limits against crafted files (``MAX_PDF_PAGES`` and
the PDF work budget, the OCR budget and ``MAX_IMAGE_PIXELS``, ``MAX_CSV_ROWS``, the DOCX ZIP-bomb
limits, ``MAX_HTML_TAGS`` and ``MAX_MAIN_CONTENT_ELEMENTS``); each limit's reason is documented
where it is defined, and all of them, with what the tenant sees, in docs/sources.md ("Limits and
hostile input").
"""

from __future__ import annotations

from sources.extraction.base import (
    IMAGE_KINDS,
    NO_TEXT_FOUND,
    SUPPORTED_EXTENSIONS,
    ExtractedDocument,
    ExtractionError,
    NoTextError,
    UnsupportedFileTypeError,
    check_size,
    no_text_error,
)
from sources.extraction.detection import detect_file_type
from sources.extraction.ocr import MAX_IMAGE_PIXELS, OcrProgress, OcrUnavailableError, extract_image
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
    "MAX_IMAGE_PIXELS",
    "MAX_MAIN_CONTENT_ELEMENTS",
    "MAX_PDF_PAGES",
    "NO_TEXT_FOUND",
    "SUPPORTED_EXTENSIONS",
    "ExtractedDocument",
    "ExtractionError",
    "NoTextError",
    "OcrProgress",
    "OcrUnavailableError",
    "UnsupportedFileTypeError",
    "decode_text",
    "detect_file_type",
    "extract_csv",
    "extract_docx",
    "extract_file",
    "extract_html",
    "extract_image",
    "extract_pdf",
]


def extract_file(data: bytes, filename: str, *, on_ocr_progress: OcrProgress | None = None) -> ExtractedDocument:
    """Detect the kind of an uploaded file (``detect_file_type``) and extract its text.
    ``on_ocr_progress(pages read, pages)`` follows OCR, for images and scanned PDF pages.

    Raises ``UnsupportedFileTypeError`` for an unsupported or mismatched file, and
    ``ExtractionError`` for an empty or oversized file, a file without text (``NO_TEXT_FOUND``)
    or anything the extractor refuses (``OcrUnavailableError`` when an image or scan needs OCR
    and it is not available).
    """
    if not data:
        raise ExtractionError("The file is empty.")
    check_size(len(data), "file")
    kind = detect_file_type(data, filename)
    if kind == "pdf":
        return extract_pdf(data, on_ocr_progress=on_ocr_progress)
    if kind in IMAGE_KINDS:
        return extract_image(data, kind, on_progress=on_ocr_progress)
    if kind == "docx":
        return extract_docx(data)
    if kind == "html":
        try:
            return extract_html(data)
        except NoTextError:
            # A web page without text is no scan; an uploaded file may be: the file rule applies.
            raise no_text_error("html") from None
    if kind == "csv":
        return extract_csv(data)
    return extract_plain(data, kind)
