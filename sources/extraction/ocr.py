"""OCR with Tesseract: the text of image uploads (PNG, JPEG, TIFF) and of scanned PDF pages.

Optional at runtime: without the ``tesseract`` binary (Debian's ``tesseract-ocr`` and one
``tesseract-ocr-<lang>`` package per language in ``settings.OCR_LANGUAGES``), or with
``MINIRAG_OCR_ENABLED=false``, images and scans end in an ``ExtractionError`` that says so; the
rest of extraction does not depend on it.

Everything here is bounded, because images are the easiest input to make hostile:

* **Pixels.** An image or TIFF page is refused before it is decoded when its header declares
  more than ``MAX_IMAGE_PIXELS`` (a 10 MB PNG can declare billions of pixels: a decompression
  bomb). Pillow opens only the format the content was detected as, never its other plugins.
  What reaches Tesseract is scaled to at most ``MAX_OCR_PIXELS``.
* **PDF pages** are rendered by PDFium in a child process (``render_pdf_page.py``) limited to
  ``RENDER_MEMORY_BYTES`` of address space and to the time left in the budget, so an embedded
  image bomb or a PDFium crash costs that process only.
* **Work.** One document gets ``settings.OCR_MAX_PAGES`` pages and ``settings.OCR_MAX_SECONDS``
  of OCR (``OcrBudget``): more pages are refused before any is read, and a document whose OCR
  runs out of time fails with a message saying how far it got; the Tesseract process is killed.
"""

from __future__ import annotations

import io
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytesseract
from django.conf import settings
from PIL import Image, ImageOps, UnidentifiedImageError

from sources.extraction.base import (
    KIND_LABELS,
    ExtractedDocument,
    ExtractionError,
    check_size,
    finish,
    max_text_chars,
    no_text_error,
)

logger = logging.getLogger(__name__)

# Tesseract's OpenMP threads fight over the cores with the other workers: on 2 cores one dense
# A4 page took 8 s with OpenMP's default and 2.7 s with one thread (measured). Parallelism comes
# from running several workers. Read by the tesseract child processes; an operator's value wins.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")

# Decoding an image costs its declared pixels (one to four bytes each), whatever its file size:
# 100 million pixels is an A4 page scanned at 1,200 DPI or a 100-megapixel photo; beyond that
# an image is refused unread.
MAX_IMAGE_PIXELS = 100_000_000
# What Tesseract is given: an A4 page at 300 DPI has 8.7 M pixels, A3 17 M; larger images are
# scaled down to this (Tesseract's time grows with pixels, its accuracy does not past ~300 DPI).
MAX_OCR_PIXELS = 25_000_000
# Small images (screenshots, photos of a label) are enlarged: Tesseract wants letters 20-30
# pixels high and misreads smaller ones.
MIN_OCR_PIXELS = 1_000_000
# The resolution PDF pages are rendered at for OCR.
OCR_DPI = 300
# The address space of the PDF page renderer: its page bitmap is at most MAX_OCR_PIXELS bytes,
# PDFium decodes the page's images in full (a 10,000 x 10,000 RGB scan is 300 MB).
RENDER_MEMORY_BYTES = 1536 * 1024 * 1024
RENDER_SCRIPT = Path(__file__).with_name("render_pdf_page.py")
# The most one page may take to render, or to read: a dense A4 page reads in ~3 s, so a page
# still running after this is crafted or absurd. It also keeps the run's heartbeat (written after
# each page) well inside MINIRAG_INGEST_STALE_AFTER_SECONDS, so the reaper never takes a live run
# for a dead one.
MAX_SECONDS_PER_PAGE = 120
PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "tiff": "TIFF"}

OcrProgress = Callable[[int, int], None]  # (pages read, pages to read)


def _no_progress(done: int, total: int) -> None:
    return None


class OcrUnavailableError(ExtractionError):
    """OCR would be needed but is turned off or not installed (or lacks a configured language)."""


# --- Availability -------------------------------------------------------------------------------

_languages_lock = threading.Lock()
_installed_languages: dict[str, frozenset[str]] = {}  # tesseract command → its language data


def configured_languages() -> list[str]:
    return settings.OCR_LANGUAGES.split("+")


def _tesseract_languages() -> frozenset[str] | None:
    """The languages the configured tesseract has data for, or None if it cannot be run. Found
    once per command and process; a missing binary is looked for again next time (it may be
    installed while the server runs)."""
    command = settings.OCR_TESSERACT_CMD
    with _languages_lock:
        if command in _installed_languages:
            return _installed_languages[command]
    if shutil.which(command) is None:
        return None
    pytesseract.pytesseract.tesseract_cmd = command
    try:
        languages = frozenset(pytesseract.get_languages())
    except (pytesseract.TesseractNotFoundError, OSError):
        return None
    with _languages_lock:
        _installed_languages[command] = languages
    return languages


def ocr_unavailable_reason() -> str | None:
    """Why OCR cannot run here, as a clause for the tenant ("OCR ... is not installed on this
    server"), or None if it can."""
    if not settings.OCR_ENABLED:
        return "OCR is turned off on this server"
    installed = _tesseract_languages()
    if installed is None:
        return "OCR (Tesseract) is not installed on this server"
    missing = [code for code in configured_languages() if code not in installed]
    if missing:
        logger.warning(
            "MINIRAG_OCR_LANGUAGES names %s, but tesseract has no data for them (installed: %s).",
            "+".join(missing),
            ", ".join(sorted(installed)),
        )
        return f"the OCR language data for {', '.join(missing)} is not installed on this server"
    return None


def unavailable_error(what: str, reason: str) -> OcrUnavailableError:
    return OcrUnavailableError(
        f"The {what} is a picture of text, which is read with OCR, but {reason}. Ask the operator to set up "
        'OCR (docs/sources.md, "OCR"), or upload a document with selectable text.'
    )


# --- The work budget ----------------------------------------------------------------------------


class OcrBudget:
    """The pages and seconds of OCR one document may use (``settings.OCR_MAX_PAGES``,
    ``settings.OCR_MAX_SECONDS``), counted from the first page read."""

    def __init__(self, what: str, pages: int) -> None:
        self.what = what
        self.pages = pages
        if pages > settings.OCR_MAX_PAGES:
            raise too_many_pages(what, f"{pages:,}")
        self.deadline = time.monotonic() + settings.OCR_MAX_SECONDS

    def seconds_left(self, pages_done: int) -> float:
        """The time left in the budget; raises once it is spent."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise self.exhausted(pages_done)
        return left

    def page_timeout(self, pages_done: int) -> float:
        """The time the next step of a page may take: what is left, at most MAX_SECONDS_PER_PAGE."""
        return min(self.seconds_left(pages_done), MAX_SECONDS_PER_PAGE)

    def timed_out(self, pages_done: int, step: str) -> ExtractionError:
        """The error for a page step killed at ``page_timeout``: the budget, or the page's own limit."""
        if self.deadline - time.monotonic() <= 1:
            return self.exhausted(pages_done)
        return ExtractionError(
            f"OCR gave up on page {pages_done + 1} of the {self.what}: {step} it took more than "
            f"{MAX_SECONDS_PER_PAGE} seconds, which no ordinary page does. Export it again as a simpler file."
        )

    def exhausted(self, pages_done: int) -> ExtractionError:
        limit = settings.OCR_MAX_SECONDS
        duration = f"{limit // 60} minutes" if limit >= 120 and limit % 60 == 0 else f"{limit} seconds"
        return ExtractionError(
            f"OCR stopped after {pages_done:,} of {self.pages:,} pages of the {self.what}: reading scans may take at "
            f"most {duration} per document (MINIRAG_OCR_MAX_SECONDS), and this one needs more. Split it into "
            "smaller files, or upload a version with selectable text."
        )


def too_many_pages(what: str, pages: str) -> ExtractionError:
    return ExtractionError(
        f"The {what} has {pages} pages to read with OCR; at most {settings.OCR_MAX_PAGES:,} are read per document "
        "(MINIRAG_OCR_MAX_PAGES), so it was not processed. Split it into smaller files."
    )


# --- Tesseract ------------------------------------------------------------------------------------


def _tesseract(image_path: str, *, budget: OcrBudget, pages_done: int) -> str:
    """The text Tesseract reads in the image file, killed when the budget runs out."""
    timeout = budget.page_timeout(pages_done)
    pytesseract.pytesseract.tesseract_cmd = settings.OCR_TESSERACT_CMD
    try:
        # --psm 3: find the page layout (columns, blocks) by itself, as for a scanned page.
        return pytesseract.image_to_string(image_path, lang=settings.OCR_LANGUAGES, config="--psm 3", timeout=timeout)
    except pytesseract.TesseractNotFoundError:
        raise unavailable_error(budget.what, "OCR (Tesseract) is not installed on this server") from None
    except pytesseract.TesseractError:
        logger.warning("Tesseract failed on page %d of a %s", pages_done + 1, budget.what, exc_info=True)
        raise ExtractionError(
            f"OCR could not read page {pages_done + 1} of the {budget.what}; it may be damaged."
        ) from None
    except RuntimeError as exc:  # pytesseract's way of saying it killed a run that took too long
        if "timeout" not in str(exc).lower():
            raise
        raise budget.timed_out(pages_done, "reading") from None


def _ocr_text(text: str) -> str:
    # Tesseract ends each page with a form feed.
    return text.replace("\f", "\n").strip()


# --- Images ---------------------------------------------------------------------------------------


def _too_many_pixels(what: str, size: tuple[int, int], page: int | None = None) -> ExtractionError:
    width, height = size
    where = f"Page {page} of the {what}" if page is not None else f"The {what}"
    return ExtractionError(
        f"{where} is {width:,} x {height:,} pixels ({width * height / 1e6:,.0f} million); at most "
        f"{MAX_IMAGE_PIXELS // 1_000_000} million pixels are read, so it was refused unread. Scan or export it at "
        "a lower resolution (300 DPI is plenty for OCR)."
    )


def _check_pixels(image: Image.Image, what: str, page: int | None) -> None:
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ExtractionError(f"The {what} has no pixels.")
    if width * height > MAX_IMAGE_PIXELS:
        raise _too_many_pixels(what, image.size, page)


@contextmanager
def _opened(data: bytes, kind: str) -> Iterator[Image.Image]:
    """The image, lazily opened (only its header is read) with the one Pillow plugin of its
    detected format."""
    what = KIND_LABELS[kind]
    try:
        image = Image.open(io.BytesIO(data), formats=[PIL_FORMATS[kind]])
    except Image.DecompressionBombError:  # over Pillow's own limit (2 x 89 M pixels) already
        raise ExtractionError(
            f"The {what} declares more pixels than any real scan has (over {MAX_IMAGE_PIXELS // 1_000_000} million), "
            "so it was refused unread."
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        logger.info("Unreadable %s", what, exc_info=True)
        raise ExtractionError(f"The {what} could not be read; it may be damaged.") from None
    try:
        yield image
    finally:
        image.close()


def _frame_count(image: Image.Image, what: str) -> int:
    """Pages of a (multi-page TIFF) image, each checked against MAX_IMAGE_PIXELS before any is
    decoded. Walks at most OCR_MAX_PAGES + 1 of them: a crafted file may chain thousands."""
    count = 0
    while True:
        _check_pixels(image, what, count + 1 if count else None)
        count += 1
        if count > settings.OCR_MAX_PAGES:
            raise too_many_pages(what, f"more than {settings.OCR_MAX_PAGES:,}")
        try:
            image.seek(count)
        except EOFError:
            break
    return count


def _prepared(image: Image.Image) -> Image.Image:
    """The current page of ``image`` as Tesseract reads best: upright (EXIF orientation), 8-bit
    gray on a white background, between MIN_OCR_PIXELS and MAX_OCR_PIXELS."""
    width, height = image.size
    pixels = width * height
    if image.format == "JPEG" and pixels > MAX_OCR_PIXELS:
        # JPEG decodes at 1/2, 1/4 or 1/8 of its size for nearly nothing: never hold the whole.
        factor = math.sqrt(MAX_OCR_PIXELS / pixels)
        image.draft("L", (max(1, int(width * factor)), max(1, int(height * factor))))
    image.load()
    page = ImageOps.exif_transpose(image) or image
    page = _gray(page)
    pixels = page.width * page.height
    if pixels > MAX_OCR_PIXELS or pixels < MIN_OCR_PIXELS:
        factor = math.sqrt(MAX_OCR_PIXELS / pixels) if pixels > MAX_OCR_PIXELS else 2.0
        size = (max(1, round(page.width * factor)), max(1, round(page.height * factor)))
        page = page.resize(size, Image.Resampling.LANCZOS)
    return page


def _gray(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        # 16- and 32-bit gray: stretched to 0-255 (a plain conversion clips, and turns a 16-bit
        # scan white).
        image = image.convert("I") if image.mode.startswith("I;16") else image
        low, high = image.getextrema()
        if high <= low:
            return Image.new("L", image.size, 255)
        scale = 255 / (high - low)
        return image.point(lambda value: (value - low) * scale).convert("L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent pixels are often black underneath: put the image on white paper.
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(paper, rgba).convert("L")
    return image.convert("L")


def extract_image(data: bytes, kind: str, *, on_progress: OcrProgress | None = None) -> ExtractedDocument:
    """The text of a PNG, JPEG or (multi-page) TIFF image, read with OCR page by page.

    ``on_progress(pages read, pages)`` is called before the first page and after each one.
    Metadata: ``pages``, ``width``, ``height`` (of the first page), ``ocr_pages``,
    ``ocr_languages``. Raises ``OcrUnavailableError`` when OCR is off or not installed, and
    ``ExtractionError`` for a damaged image, one over ``MAX_IMAGE_PIXELS``, more pages than
    ``settings.OCR_MAX_PAGES``, OCR over its time budget, and an image without text
    (``no_text_error``).
    """
    what = KIND_LABELS[kind]
    check_size(len(data), what)
    progress = on_progress or _no_progress
    reason = ocr_unavailable_reason()
    if reason is not None:
        raise unavailable_error(what, reason)
    with _opened(data, kind) as image, tempfile.TemporaryDirectory(prefix="minirag-ocr-") as directory:
        first_size = image.size
        pages = _frame_count(image, what)
        budget = OcrBudget(what, pages)
        texts: list[str] = []
        chars = 0
        for index in range(pages):
            progress(index, pages)
            # Handed to Tesseract as a file in the raw PGM format: no PNG compression to wait for.
            page_path = Path(directory, f"page-{index + 1}.pgm")
            try:
                image.seek(index)
                with _prepared(image) as page:
                    page.save(page_path, format="PPM")
            except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
                logger.info("Unreadable page %d of a %s", index + 1, what, exc_info=True)
                raise ExtractionError(f"Page {index + 1} of the {what} could not be read; it may be damaged.") from None
            text = _ocr_text(_tesseract(str(page_path), budget=budget, pages_done=index))
            page_path.unlink()
            chars += len(text)
            if chars > max_text_chars():
                raise ExtractionError(
                    f"The {what} holds more than {max_text_chars():,} characters of text, the most one document may "
                    "have. Split it into smaller files."
                )
            if text:
                texts.append(text)
        progress(pages, pages)
    metadata: dict[str, Any] = {
        "pages": pages,
        "width": first_size[0],
        "height": first_size[1],
        "ocr_pages": pages,
        "ocr_languages": settings.OCR_LANGUAGES,
    }
    if not texts:
        raise no_text_error(
            kind,
            f"OCR ({settings.OCR_LANGUAGES}) read the image and found no text. If it is a scan or a photo of a page, "
            "check that it is sharp, upright and at least 200 DPI, and in a language read here.",
        )
    return finish("\n\n".join(texts), title="", kind=kind, metadata=metadata)


# --- PDF pages ------------------------------------------------------------------------------------


def ocr_pdf_pages(
    data: bytes, page_indexes: Sequence[int], *, on_progress: OcrProgress | None = None
) -> tuple[dict[int, str], list[int]]:
    """OCR the given pages (0-based) of a PDF, one by one: each is rendered at OCR_DPI by PDFium
    in a child process (``render_pdf_page.py``, memory- and time-limited), then read by
    Tesseract. Returns (text by page index, pages that could not be rendered).

    The caller has checked ``ocr_unavailable_reason()``. Raises ``ExtractionError`` for more
    pages than ``settings.OCR_MAX_PAGES`` and when the time budget runs out (the message says
    after how many pages).
    """
    budget = OcrBudget("PDF", len(page_indexes))
    progress = on_progress or _no_progress
    texts: dict[int, str] = {}
    unrendered: list[int] = []
    total = len(page_indexes)
    with tempfile.TemporaryDirectory(prefix="minirag-ocr-") as directory:
        pdf_path = Path(directory, "document.pdf")
        pdf_path.write_bytes(data)
        for done, index in enumerate(page_indexes):
            progress(done, total)
            image_path = Path(directory, f"page-{index + 1}.pgm")
            if not _render_page(pdf_path, index, image_path, budget=budget, pages_done=done):
                unrendered.append(index)
                continue
            texts[index] = _ocr_text(_tesseract(str(image_path), budget=budget, pages_done=done))
            image_path.unlink()
        progress(total, total)
    return texts, unrendered


def _render_page(pdf_path: Path, index: int, image_path: Path, *, budget: OcrBudget, pages_done: int) -> bool:
    """Render one page to ``image_path``; False if it could not be rendered (damaged, or over
    the renderer's memory). Raises when the budget runs out while it renders."""
    timeout = budget.page_timeout(pages_done)
    command = [
        sys.executable,
        "-I",  # isolated: no user site-packages, no PYTHON* variables, not the working directory
        str(RENDER_SCRIPT),
        str(pdf_path),
        str(index),
        str(image_path),
        str(OCR_DPI),
        str(MAX_OCR_PIXELS),
        str(RENDER_MEMORY_BYTES),
    ]
    try:
        result = subprocess.run(command, capture_output=True, timeout=timeout, check=False)  # noqa: S603 - fixed argv
    except subprocess.TimeoutExpired:
        raise budget.timed_out(pages_done, "rendering") from None
    if result.returncode != 0 or not image_path.exists():
        logger.info(
            "PDF page %d could not be rendered for OCR (exit %s): %s",
            index + 1,
            result.returncode,
            result.stderr[-2000:].decode(errors="replace"),
        )
        return False
    return True
