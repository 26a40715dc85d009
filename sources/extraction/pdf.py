"""PDF to text with pypdf: the text layer of each page, pages separated by blank lines."""

from __future__ import annotations

import io
import logging
import re
from typing import Any

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError

from sources.extraction.base import ExtractedDocument, ExtractionError, check_size, finish
from sources.extraction.detection import is_pdf

logger = logging.getLogger(__name__)

# 2,000 pages is already a large book; within the 10 MB upload cap more pages means near-empty
# pages or a crafted file, and pypdf takes ~2-5 ms per ordinary text page, so this bounds the run.
MAX_PDF_PAGES = 2000

_DAMAGED = "The PDF could not be read; it may be damaged. Try exporting it again or saving it as a new PDF."
# Titles that word processors put in the metadata by themselves.
_GENERATED_TITLE = re.compile(r"^(?:microsoft (?:word|powerpoint) - .*|untitled(?: document)?|document\d*)$", re.I)


def _open(data: bytes) -> PdfReader:
    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted:
        try:
            # Many PDFs are "encrypted" only to carry permission flags, with an empty user password.
            decrypted = reader.decrypt("")
        except (DependencyError, NotImplementedError):
            raise ExtractionError(
                "The PDF is encrypted with a method that is not supported. Remove the protection and upload it again."
            ) from None
        if decrypted == PasswordType.NOT_DECRYPTED:
            raise ExtractionError("The PDF is encrypted (password-protected). Remove the password and upload it again.")
    return reader


def _title(reader: PdfReader) -> str:
    try:
        metadata = reader.metadata
        title = str(metadata.title or "") if metadata is not None else ""
    except Exception:  # metadata is optional; a damaged info dictionary must not fail the document
        logger.info("Unreadable PDF metadata", exc_info=True)
        return ""
    title = " ".join(title.split())
    return "" if _GENERATED_TITLE.match(title) else title


def _language(reader: PdfReader) -> str:
    try:
        language = reader.trailer["/Root"].get("/Lang")
    except Exception:  # optional, like the title
        logger.info("Unreadable PDF /Lang", exc_info=True)
        return ""
    return str(language).strip()[:35] if language else ""


def extract_pdf(data: bytes) -> ExtractedDocument:
    """The text layer of a PDF: each page's text, pages joined with blank lines.

    Title from the document metadata (ignoring names word processors generate). Metadata:
    ``pages``, ``pages_without_text`` when some pages have none, ``language`` if declared.
    An encrypted PDF is opened with the empty password if that works.

    Raises ``ExtractionError`` for a file that is not a PDF or is damaged, a password-protected
    PDF, more than ``MAX_PDF_PAGES`` pages, an input over the upload limit, and a PDF without a
    text layer (scanned pages: OCR is not supported).
    """
    check_size(len(data), "PDF")
    if not is_pdf(data):
        raise ExtractionError("The file is not a PDF.")
    try:
        reader = _open(data)
        page_count = len(reader.pages)
    except ExtractionError:
        raise
    except FileNotDecryptedError:
        raise ExtractionError("The PDF is encrypted (password-protected). Remove the password and upload it again.")
    except Exception:  # pypdf raises many types (and plain ValueError/KeyError) on broken files
        logger.info("Unreadable PDF", exc_info=True)
        raise ExtractionError(_DAMAGED) from None
    if page_count > MAX_PDF_PAGES:
        raise ExtractionError(
            f"The PDF has {page_count:,} pages; at most {MAX_PDF_PAGES:,} are supported. Split it into smaller files."
        )
    texts: list[str] = []
    empty_pages = failed_pages = 0
    for number in range(page_count):
        try:
            text = reader.pages[number].extract_text() or ""
        except Exception:  # one broken page should not cost the rest of the document
            logger.info("Unreadable PDF page %d", number + 1, exc_info=True)
            failed_pages += 1
            continue
        if text.strip():
            texts.append(text)
        else:
            empty_pages += 1
    if not texts:
        if failed_pages and not empty_pages:
            raise ExtractionError(_DAMAGED)
        raise ExtractionError(
            "The PDF has no text layer (it looks like scanned images), and OCR is not supported. "
            "Upload a PDF with selectable text."
        )
    metadata: dict[str, Any] = {"pages": page_count}
    if empty_pages or failed_pages:
        metadata["pages_without_text"] = empty_pages + failed_pages
    language = _language(reader)
    if language:
        metadata["language"] = language
    return finish("\n\n".join(texts), title=_title(reader), kind="pdf", metadata=metadata)
