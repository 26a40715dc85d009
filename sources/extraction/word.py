"""Word (.docx) to text with python-docx, behind a ZIP-bomb check."""

from __future__ import annotations

import io
import logging
import zipfile
from typing import Any

import docx
from docx.opc.constants import RELATIONSHIP_TYPE
from docx.table import Table
from docx.text.paragraph import Paragraph

from sources.extraction.base import ExtractedDocument, ExtractionError, check_size, finish

logger = logging.getLogger(__name__)

# A .docx is a ZIP; python-docx inflates every XML part in memory. Real documents expand to a
# few MB (images excepted, which are stored, not deflated); 100 MB leaves room for huge ones and
# still bounds memory. XML compresses ~5-20:1; a ratio above 200:1 only comes from crafted
# repetition (a bomb). The ratio is only judged on parts big enough to matter (1 MiB), since tiny
# parts of a few hundred bytes can have odd ratios. Real packages have tens of parts, a few
# hundred with many images.
MAX_DOCX_UNCOMPRESSED_BYTES = 100 * 1024 * 1024
MAX_DOCX_COMPRESSION_RATIO = 200
MAX_DOCX_ENTRIES = 2000
_RATIO_CHECK_MIN_BYTES = 1024 * 1024

_DAMAGED = "The Word document could not be read; it may be damaged. Try saving it again as .docx."


def check_zip_limits(data: bytes) -> None:
    """Refuse a ZIP whose directory announces a bomb: too many parts, too much data, absurd ratio.

    Only the central directory is read. Declared sizes can't be used to lie past this check:
    Python's zipfile never inflates a part beyond its declared size.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise ExtractionError(_DAMAGED) from None
    too_big = ExtractionError(
        "The Word document is too large once uncompressed, or is malformed; it was not processed."
    )
    if len(entries) > MAX_DOCX_ENTRIES:
        raise too_big
    if sum(entry.file_size for entry in entries) > MAX_DOCX_UNCOMPRESSED_BYTES:
        raise too_big
    for entry in entries:
        if entry.file_size > _RATIO_CHECK_MIN_BYTES and entry.file_size > MAX_DOCX_COMPRESSION_RATIO * max(
            entry.compress_size, 1
        ):
            raise too_big


def _cell_text(cell: Any) -> str:
    parts = []
    for item in cell.iter_inner_content():
        parts.append(item.text if isinstance(item, Paragraph) else "; ".join(_table_rows(item)))
    return " ".join(" ".join(parts).split())


def _table_rows(table: Table) -> list[str]:
    rows = []
    for row in table.rows:
        cells: list[str] = []
        seen: set[int] = set()
        for cell in row.cells:
            # A merged cell is returned once per grid column it spans; keep it once.
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            text = _cell_text(cell)
            if text:
                cells.append(text)
        if cells:
            rows.append(" | ".join(cells))
    return rows


def _style_name(paragraph: Paragraph) -> str:
    try:
        style = paragraph.style
    except (KeyError, ValueError):
        return ""
    return (style.name or "") if style is not None else ""


def _blocks(document: Any) -> list[str]:
    """Paragraphs and tables in document order; consecutive list items share a block."""
    blocks: list[str] = []
    in_list = False
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            rows = _table_rows(item)
            if rows:
                blocks.append("\n".join(rows))
            in_list = False
            continue
        text = item.text.strip()
        if not text:
            continue
        style = _style_name(item)
        is_list_item = style.startswith("List")
        if is_list_item and in_list:
            blocks[-1] += "\n" + text
        else:
            # Headings ("Heading 1", "Title") are blocks of their own, as every paragraph is.
            blocks.append(text)
        in_list = is_list_item
    return blocks


def _core_properties(document: Any) -> tuple[str, str]:
    # python-docx invents core properties titled "Word Document" when a file has none.
    try:
        document.part.package.part_related_by(RELATIONSHIP_TYPE.CORE_PROPERTIES)
    except KeyError:
        return "", ""
    properties = document.core_properties
    return properties.title or "", (properties.language or "").strip()[:35]


def extract_docx(data: bytes) -> ExtractedDocument:
    """The text of a Word document: paragraphs in order (headings as their own lines), tables
    row by row as ``cell | cell``. Headers, footers, comments and text boxes are left out.

    Title and ``language`` metadata from the core properties. Raises ``ExtractionError`` for a
    ZIP bomb (see ``check_zip_limits``), a damaged or non-Word package, an input over the upload
    limit, or a document without text.
    """
    check_size(len(data), "Word document")
    check_zip_limits(data)
    try:
        document = docx.Document(io.BytesIO(data))
        blocks = _blocks(document)
        title, language = _core_properties(document)
    except Exception:  # python-docx surfaces broken packages as KeyError, ValueError, lxml errors...
        logger.info("Unreadable DOCX", exc_info=True)
        raise ExtractionError(_DAMAGED) from None
    metadata: dict[str, Any] = {}
    if language:
        metadata["language"] = language
    return finish("\n\n".join(blocks), title=title, kind="docx", metadata=metadata)
