"""PDF to text: the text layer of each page (pypdf), and OCR of the pages that have none (scans),
pages separated by blank lines."""

from __future__ import annotations

import io
import logging
import re
from typing import Any

from django.conf import settings
from pypdf import PasswordType, PdfReader, apply_configuration
from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError

from sources.extraction.base import (
    ExtractedDocument,
    ExtractionError,
    check_size,
    finish,
    max_text_chars,
    no_text_error,
)
from sources.extraction.detection import is_pdf
from sources.extraction.ocr import MAX_IMAGE_PIXELS, OcrProgress, ocr_pdf_pages, ocr_unavailable_reason

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

# A page whose text layer has fewer visible characters than this, and which draws an image, is read
# with OCR: a scanner's or an app's stamp ("Scanned by ...", a page number) is not the page's text.
MIN_PAGE_TEXT_CHARS = 20
# Image XObjects followed through nested forms when looking for a page's images.
_MAX_XOBJECTS_PER_PAGE = 1000
_MAX_FORM_DEPTH = 8

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
        # (width, height) of the images written inline in each page's content (BI ... EI).
        self.inline_images: dict[int, list[tuple[int, int]]] = {}

    def start_page(self, number: int) -> None:
        self.page_number, self.page_chars = number, 0

    def operator(self, operator: bytes, operands: Any, *_args: Any) -> None:
        self.operations += 1
        if operator == b"INLINE IMAGE" and isinstance(operands, dict):
            self.inline_images.setdefault(self.page_number, []).append(_inline_image_size(operands))
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


def extract_pdf(data: bytes, *, on_ocr_progress: OcrProgress | None = None) -> ExtractedDocument:
    """The text of a PDF: each page's text layer, and for the pages without one that draw an
    image (scans), the text OCR reads (``sources.extraction.ocr``); pages joined with blank lines.

    Title from the document metadata (ignoring names word processors generate). Metadata:
    ``pages``; ``pages_without_text`` when some pages still have none; ``ocr_pages`` and
    ``ocr_languages`` when pages were read with OCR, ``ocr_unavailable`` (the reason) when they
    needed it but OCR is off or not installed; ``language`` if declared. An encrypted PDF is
    opened with the empty password if that works. ``on_ocr_progress(pages read, pages)`` follows
    the OCR.

    Raises ``ExtractionError`` for a file that is not a PDF or is damaged, a password-protected
    PDF, more than ``MAX_PDF_PAGES`` pages, an input over the upload limit, a PDF over the work
    budget (``MAX_PDF_OPERATIONS``, ``MAX_PDF_PAGE_CHARS``, ``max_text_chars()``, and for OCR
    ``settings.OCR_MAX_PAGES``, ``settings.OCR_MAX_SECONDS`` and ``MAX_IMAGE_PIXELS`` per image),
    and a PDF that yields no text at all (``no_text_error``: a scan OCR cannot read, or cannot
    run on).
    """
    check_size(len(data), "PDF")
    if not is_pdf(data):
        raise ExtractionError("The file is not a PDF.")
    with apply_configuration(**_PYPDF_LIMITS):
        try:
            return _extract(data, on_ocr_progress)
        except _BudgetExceededError as exc:
            raise ExtractionError(exc.message) from None


def _extract(data: bytes, on_ocr_progress: OcrProgress | None) -> ExtractedDocument:
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
    # The text layer of every page ("" for none), None for a page that could not be read.
    texts: list[str | None] = []
    failed_pages = oversized_pages = 0
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
            texts.append(None)
            continue
        except Exception:  # one broken page should not cost the rest of the document
            logger.info("Unreadable PDF page %d", number + 1, exc_info=True)
            failed_pages += 1
            texts.append(None)
            continue
        if not text.strip():
            texts.append("")
            continue
        texts.append(text)
        chars_left -= len(text)
        if chars_left < 0:
            raise _too_much_text()
    scanned = [
        index for index, text in enumerate(texts) if text is not None and _is_scanned(reader, index, text, budget)
    ]
    ocr_texts: dict[int, str] = {}
    unavailable = ocr_unavailable_reason() if scanned else None
    if scanned and unavailable is None:
        ocr_texts, _unrendered = ocr_pdf_pages(data, scanned, on_progress=on_ocr_progress)
        for index, text in ocr_texts.items():
            if text:  # OCR's reading replaces the page's few characters of text layer (a stamp)
                chars_left -= len(text) - len(texts[index] or "")
                texts[index] = text
        if chars_left < 0:
            raise _too_much_text()
    pages = [text for text in texts if text]
    if not pages:
        if oversized_pages:
            raise ExtractionError(
                "The PDF is too complex to extract: its page content is larger than 16 MB once uncompressed, "
                "or holds more than a million drawing instructions. Export it again as a simpler PDF."
            )
        if failed_pages and failed_pages == page_count:
            raise ExtractionError(_DAMAGED)
        raise _no_text(scanned, ocr_texts, unavailable)
    metadata: dict[str, Any] = {"pages": page_count}
    without_text = page_count - len(pages)
    if without_text:
        metadata["pages_without_text"] = without_text
    if ocr_texts:
        metadata["ocr_pages"] = len(ocr_texts)
        metadata["ocr_languages"] = settings.OCR_LANGUAGES
    if unavailable:
        metadata["ocr_unavailable"] = unavailable
        logger.warning("%d scanned PDF page(s) were not read: %s", len(scanned), unavailable)
    language = _language(reader)
    if language:
        metadata["language"] = language
    return finish("\n\n".join(pages), title=_title(reader), kind="pdf", metadata=metadata)


def _too_much_text() -> ExtractionError:
    return ExtractionError(
        f"The PDF holds more than {max_text_chars():,} characters of text, the most one document may "
        "have. Split it into smaller files."
    )


def _no_text(scanned: list[int], ocr_texts: dict[int, str], unavailable: str | None) -> ExtractionError:
    if not scanned:
        return no_text_error("pdf", "It has no text layer and no images to read with OCR.")
    if unavailable:
        return no_text_error(
            "pdf",
            f"It has no text layer (it looks like scanned images), and {unavailable}, so it cannot be read. "
            'Upload a PDF with selectable text, or ask the operator to set up OCR (docs/sources.md, "OCR").',
        )
    if not ocr_texts:
        return ExtractionError(_DAMAGED)  # not one scanned page could be rendered
    pages = f"its {len(ocr_texts)} scanned page" + ("s" if len(ocr_texts) > 1 else "")
    return no_text_error(
        "pdf",
        f"It has no text layer, and OCR ({settings.OCR_LANGUAGES}) found no text on {pages} either. If it is a "
        "scan, check that it is legible (200-300 DPI, upright) and in a language read here.",
    )


def _is_scanned(reader: PdfReader, index: int, text: str, budget: _WorkBudget) -> bool:
    """Whether page ``index`` should be read with OCR: next to no text layer, and an image drawn
    on it (a blank page is not worth a render). Refuses a page whose image declares more than
    ``MAX_IMAGE_PIXELS``: rendering decodes it in full."""
    if len("".join(text.split())) >= MIN_PAGE_TEXT_CHARS:
        return False
    sizes = list(budget.inline_images.get(index + 1, []))
    try:
        sizes.extend(_xobject_image_sizes(reader.pages[index].get("/Resources")))
    except Exception:  # a damaged resource dictionary: no images known (the page stays as it is)
        logger.info("Unreadable resources on PDF page %d", index + 1, exc_info=True)
    for width, height in sizes:
        if width * height > MAX_IMAGE_PIXELS:
            raise ExtractionError(
                f"Page {index + 1} of the PDF holds an image of {width:,} x {height:,} pixels; images of at most "
                f"{MAX_IMAGE_PIXELS // 1_000_000} million pixels are read with OCR (decoding a larger one could "
                "exhaust the server's memory), so the PDF was refused. Export it at a lower resolution."
            )
    return bool(sizes)


def _xobject_image_sizes(resources: Any) -> list[tuple[int, int]]:
    """(width, height) of every image XObject a page's resources hold, through nested forms
    (each object once, at most _MAX_XOBJECTS_PER_PAGE, _MAX_FORM_DEPTH levels deep)."""
    sizes: list[tuple[int, int]] = []
    seen: set[int] = set()
    pending: list[tuple[Any, int]] = [(resources, 0)]
    while pending and len(seen) < _MAX_XOBJECTS_PER_PAGE:
        current, depth = pending.pop()
        current = current.get_object() if hasattr(current, "get_object") else current
        if not isinstance(current, dict):
            continue
        xobjects = current.get("/XObject")
        xobjects = xobjects.get_object() if hasattr(xobjects, "get_object") else xobjects
        if not isinstance(xobjects, dict):
            continue
        for reference in list(xobjects.values())[:_MAX_XOBJECTS_PER_PAGE]:
            key = getattr(reference, "idnum", None) or id(reference)
            if key in seen:
                continue
            seen.add(key)
            xobject = reference.get_object() if hasattr(reference, "get_object") else reference
            if not isinstance(xobject, dict):
                continue
            subtype = xobject.get("/Subtype")
            if subtype == "/Image":
                sizes.append((_as_int(xobject.get("/Width")), _as_int(xobject.get("/Height"))))
            elif subtype == "/Form" and depth < _MAX_FORM_DEPTH:
                pending.append((xobject.get("/Resources"), depth + 1))
    return sizes


def _inline_image_size(operands: dict[str, Any]) -> tuple[int, int]:
    settings_ = operands.get("settings") or {}
    width = settings_.get("/W", settings_.get("/Width"))
    height = settings_.get("/H", settings_.get("/Height"))
    return _as_int(width), _as_int(height)


def _as_int(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0
