"""PDF to text with pypdf: the text layer of each page, pages separated by blank lines."""

from __future__ import annotations

import io
import logging
import re
from typing import Any

from pypdf import PasswordType, PdfReader, apply_configuration
from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError

from sources.extraction.base import ExtractedDocument, ExtractionError, check_size, finish, max_text_chars
from sources.extraction.detection import is_pdf

logger = logging.getLogger(__name__)

# 2,000 pages is already a large book; within the 10 MB upload cap more pages means near-empty
# pages or a crafted file, and pypdf takes ~2-5 ms per ordinary text page, so this bounds the run.
MAX_PDF_PAGES = 2000
# The work budget. A few hundred bytes of PDF can make pypdf run for minutes: a form XObject
# drawn 10,000 times is parsed and interpreted 10,000 times (5.9 M characters out of 900 bytes),
# and one page's text costs more than linear time (a 20 MB content stream took 127 s). So every
# operator pypdf interprets, in pages and forms alike, is counted: real pages need 150-400
# (measured), crafted ones cost up to ~10 us each, so 2 M operations (1,000 per page of a
# 2,000-page book) bound a run to ~20 s. A page showing more than 200,000 characters (a dense
# page has ~5,000) is refused as soon as its text operators pass that, before its cost grows; the
# document as a whole is held to ``max_text_chars()``.
MAX_PDF_OPERATIONS = 2_000_000
MAX_PDF_PAGE_CHARS = 200_000
# pypdf's own limits (pypdf.Configuration), tightened for text extraction: no content stream is
# inflated beyond 16 MB or parsed beyond 1 M tokens (~150 MB of parsed operators).
_PYPDF_LIMITS = {
    "zlib_maximum_output_length": 16_000_000,
    "lzw_maximum_output_length": 16_000_000,
    "run_length_maximum_output_length": 16_000_000,
    "array_based_stream_maximum_output_length": 16_000_000,
    "stream_parsing_work_maximum_count": 1_000_000,
}

_DAMAGED = "The PDF could not be read; it may be damaged. Try exporting it again or saving it as a new PDF."
# Titles that word processors put in the metadata by themselves.
_GENERATED_TITLE = re.compile(r"^(?:microsoft (?:word|powerpoint) - .*|untitled(?: document)?|document\d*)$", re.I)


class _BudgetExceededError(BaseException):
    """Stops pypdf in the middle of a page. A BaseException on purpose: pypdf catches Exception
    around each form XObject and would carry on with the next one."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


_TEXT_OPERATORS = frozenset({b"Tj", b"TJ", b"'", b'"'})


class _WorkBudget:
    """A pypdf visitor that counts the operators interpreted and the characters they show."""

    def __init__(self) -> None:
        self.operations = 0
        self.page_chars = 0
        self.page_number = 0

    def start_page(self, number: int) -> None:
        self.page_number, self.page_chars = number, 0

    def operator(self, operator: bytes, operands: Any, *_args: Any) -> None:
        self.operations += 1
        if operator in _TEXT_OPERATORS and operands:
            # pypdf reports a line's text only when the line ends; count what is shown as it comes.
            shown = operands[0] if operator == b"TJ" else operands[-1:]
            if isinstance(shown, list):
                self._add_chars(sum(len(item) for item in shown if isinstance(item, str | bytes)))
        if self.operations > MAX_PDF_OPERATIONS:
            raise _BudgetExceededError(
                f"The PDF is too complex to extract: its pages hold more than {MAX_PDF_OPERATIONS:,} drawing "
                "operations. Split it into smaller files, or export it again as a simpler PDF."
            )

    def _add_chars(self, count: int) -> None:
        self.page_chars += count
        if self.page_chars > MAX_PDF_PAGE_CHARS:
            raise _BudgetExceededError(
                f"Page {self.page_number} of the PDF holds more than {MAX_PDF_PAGE_CHARS:,} characters of text, "
                "which no real page does, so the PDF was not processed."
            )


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
    PDF, more than ``MAX_PDF_PAGES`` pages, an input over the upload limit, a PDF over the work
    budget (``MAX_PDF_OPERATIONS``, ``MAX_PDF_PAGE_CHARS``, ``max_text_chars()``), and a PDF
    without a text layer (scanned pages: OCR is not supported).
    """
    check_size(len(data), "PDF")
    if not is_pdf(data):
        raise ExtractionError("The file is not a PDF.")
    with apply_configuration(**_PYPDF_LIMITS):
        try:
            return _extract(data)
        except _BudgetExceededError as exc:
            raise ExtractionError(exc.message) from None


def _extract(data: bytes) -> ExtractedDocument:
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
    empty_pages = failed_pages = oversized_pages = 0
    budget = _WorkBudget()
    chars_left = max_text_chars()
    for number in range(page_count):
        budget.start_page(number + 1)
        try:
            text = reader.pages[number].extract_text(visitor_operand_before=budget.operator) or ""
        except LimitReachedError:  # a content stream beyond _PYPDF_LIMITS: skipped, like a broken page
            logger.info("PDF page %d is over the reader's limits", number + 1, exc_info=True)
            failed_pages += 1
            oversized_pages += 1
            continue
        except Exception:  # one broken page should not cost the rest of the document
            logger.info("Unreadable PDF page %d", number + 1, exc_info=True)
            failed_pages += 1
            continue
        if text.strip():
            texts.append(text)
            chars_left -= len(text)
            if chars_left < 0:
                raise ExtractionError(
                    f"The PDF holds more than {max_text_chars():,} characters of text, the most one document may "
                    "have. Split it into smaller files."
                )
        else:
            empty_pages += 1
    if not texts:
        if oversized_pages:
            raise ExtractionError(
                "The PDF is too complex to extract: its page content is larger than 16 MB once uncompressed, "
                "or holds more than a million drawing instructions. Export it again as a simpler PDF."
            )
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
