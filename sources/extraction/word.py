"""Word (.docx) to text with python-docx, behind ZIP-bomb checks."""

from __future__ import annotations

import io
import logging
import zipfile
from typing import Any

import docx
from docx.opc.constants import RELATIONSHIP_TYPE
from docx.table import Table
from docx.text.paragraph import Paragraph

from sources.extraction.archive import ZIP_ERRORS, MemberTooLargeError, repack
from sources.extraction.base import (
    ExtractedDocument,
    ExtractionError,
    check_size,
    finish,
    max_text_chars,
    too_much_text,
)

logger = logging.getLogger(__name__)

# A .docx is a ZIP; python-docx holds every part in memory and parses the XML ones with lxml: up
# to ~20x their size in memory and ~0.6 s per MB for crafted shapes (1-letter paragraphs), ~0.3 s
# for real text. Real documents expand to a few MB (images excepted, which are stored, not
# deflated): a 500-page report has a few MB of XML. So all parts together may expand to 100 MB
# (images), the XML parts to 16 MB (at worst ~10 s and ~350 MB). XML compresses ~5-20:1; a
# ratio above 200:1 only comes from crafted repetition (a bomb). The ratio is only judged on parts
# big enough to matter (1 MiB), since tiny parts can have odd ratios. Real packages have tens of
# parts, a few hundred with many images. Sizes are first checked as the ZIP directory declares
# them, then enforced while reading (``archive.read_member``), so a directory that lies does not
# get further than one that tells the truth.
MAX_DOCX_UNCOMPRESSED_BYTES = 100 * 1024 * 1024
MAX_DOCX_XML_BYTES = 16 * 1024 * 1024
MAX_DOCX_COMPRESSION_RATIO = 200
MAX_DOCX_ENTRIES = 2000
_RATIO_CHECK_MIN_BYTES = 1024 * 1024
_XML_SUFFIXES = (".xml", ".rels")

_DAMAGED = "The Word document could not be read; it may be damaged. Try saving it again as .docx."


def _expands_beyond(limit: int) -> ExtractionError:
    size = f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit:,} bytes"
    return ExtractionError(
        f"The Word document expands to more than {size} when uncompressed "
        "(or claims to), so it was not processed. Save it without embedded media, or split it."
    )


def check_zip_limits(entries: list[zipfile.ZipInfo]) -> None:
    """Refuse a ZIP whose directory announces a bomb: too many parts, too much data, too much
    XML, an absurd compression ratio."""
    if len(entries) > MAX_DOCX_ENTRIES:
        raise ExtractionError(
            f"The Word document has {len(entries):,} parts; at most {MAX_DOCX_ENTRIES:,} are supported "
            "(real documents have a few dozen), so it was not processed."
        )
    for entry in entries:
        if entry.file_size > _RATIO_CHECK_MIN_BYTES and entry.file_size > MAX_DOCX_COMPRESSION_RATIO * max(
            entry.compress_size, 1
        ):
            raise ExtractionError(
                f"The Word document expands more than {MAX_DOCX_COMPRESSION_RATIO} times when uncompressed, "
                "which only crafted files (ZIP bombs) do, so it was not processed."
            )
    if sum(entry.file_size for entry in entries) > MAX_DOCX_UNCOMPRESSED_BYTES:
        raise _expands_beyond(MAX_DOCX_UNCOMPRESSED_BYTES)
    if sum(entry.file_size for entry in entries if _is_xml(entry.filename)) > MAX_DOCX_XML_BYTES:
        raise _expands_beyond(MAX_DOCX_XML_BYTES)


def _is_xml(name: str) -> bool:
    return name.lower().endswith(_XML_SUFFIXES)


def _checked_package(data: bytes) -> bytes:
    """The package, once its directory passed ``check_zip_limits``, rewritten from parts read
    within the limits (``archive.repack``): what python-docx then reads is what was checked."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            check_zip_limits(archive.infolist())
            return repack(archive, member_limit=MAX_DOCX_UNCOMPRESSED_BYTES)
    except MemberTooLargeError:
        raise _expands_beyond(MAX_DOCX_UNCOMPRESSED_BYTES) from None
    except ZIP_ERRORS:  # a part that inflates to something else than it declares, encryption, ...
        raise ExtractionError(_DAMAGED) from None


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


def _style_name(paragraph: Paragraph, names: dict[str | None, str]) -> str:
    # python-docx looks a paragraph's style up in styles.xml (an XPath search) every time; a
    # document uses a handful of styles, so the name is looked up once per style id.
    style_id = paragraph._p.style
    if style_id not in names:
        try:
            style = paragraph.style
        except (KeyError, ValueError):
            style = None
        names[style_id] = (style.name or "") if style is not None else ""
    return names[style_id]


def _blocks(document: Any) -> list[str]:
    """Paragraphs and tables in document order; consecutive list items share a block. Stops with
    an ``ExtractionError`` as soon as the text passes ``max_text_chars()``."""
    blocks: list[str] = []
    in_list = False
    style_names: dict[str | None, str] = {}
    budget = max_text_chars()
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            rows = _table_rows(item)
            if rows:
                blocks.append("\n".join(rows))
                budget -= sum(len(row) for row in rows)
            in_list = False
            if budget < 0:
                raise too_much_text("Word document")
            continue
        text = item.text.strip()
        if not text:
            continue
        budget -= len(text)
        if budget < 0:
            raise too_much_text("Word document")
        style = _style_name(item, style_names)
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
    ZIP bomb (see ``check_zip_limits``; sizes are enforced again while the parts are read), a
    damaged or non-Word package, an input over the upload limit, text beyond ``max_text_chars()``
    or a document without text.
    """
    check_size(len(data), "Word document")
    package = _checked_package(data)
    try:
        document = docx.Document(io.BytesIO(package))
        blocks = _blocks(document)
        title, language = _core_properties(document)
    except ExtractionError:
        raise
    except Exception:  # python-docx surfaces broken packages as KeyError, ValueError, lxml errors...
        logger.info("Unreadable DOCX", exc_info=True)
        raise ExtractionError(_DAMAGED) from None
    metadata: dict[str, Any] = {}
    if language:
        metadata["language"] = language
    return finish("\n\n".join(blocks), title=title, kind="docx", metadata=metadata)
