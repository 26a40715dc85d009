"""Step 1 of ingestion: get the text of a source (text, uploaded file, web page, curated answer).

Each loader returns `LoadedDocument`s of normalized text; failures are `ExtractionError`
(permanent: the content itself is the problem) or `FetchError` (which says if it is transient).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from minirag.safe_http import fetch
from sources.extraction import ExtractionError, OcrProgress, decode_text, extract_file, extract_html, extract_pdf
from sources.extraction.base import check_text_length
from sources.models import Source, SourceFile, SourceType
from sources.normalize import normalize_text

HTML_TYPES = ("text/html", "application/xhtml+xml")
TEXT_TYPES = ("text/plain", "text/markdown", "text/x-markdown", "text/csv")
PDF_TYPES = ("application/pdf",)
URL_CONTENT_TYPES = (*HTML_TYPES, *TEXT_TYPES, *PDF_TYPES)


@dataclass(frozen=True)
class LoadedDocument:
    text: str
    title: str = ""
    url: str = ""
    mime_type: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


def load_documents(source: Source, *, on_ocr_progress: OcrProgress | None = None) -> list[LoadedDocument]:
    """The source's documents. ``on_ocr_progress(pages read, pages)`` follows OCR of images and
    scanned PDF pages, the one slow part of loading."""
    if source.source_type == SourceType.TEXT:
        return [_load_text(source)]
    if source.source_type == SourceType.UPLOAD:
        return [_load_upload(source, on_ocr_progress)]
    if source.source_type == SourceType.URL:
        return [load_url(source.config["url"], on_ocr_progress=on_ocr_progress)]
    if source.source_type == SourceType.QA:
        return [_load_curated_answer(source)]
    raise ExtractionError(f"Sources of type {source.source_type} have no documents of their own.")


def _load_text(source: Source) -> LoadedDocument:
    text = normalize_text(source.content)
    if not text:
        raise ExtractionError("The source's text is empty.")
    return LoadedDocument(text=text, title=source.name, mime_type="text/plain")


def _load_curated_answer(source: Source) -> LoadedDocument:
    """A curated answer as a one-section Markdown text: the question as its heading, the answer as
    its body. Chunking starts every chunk of a section with its heading (sources/sections.py), so
    each chunk of the answer carries the question for dense and lexical search alike, and a model
    quoting the context quotes the answer under it (the extractive one never quotes a heading)."""
    question = normalize_text(" ".join(str(source.config.get("question", "")).split()))
    answer = normalize_text(source.content)
    if not question or not answer:
        raise ExtractionError("The curated answer has no question or no answer.")
    return LoadedDocument(text=f"# {question}\n\n{answer}", title=question, mime_type="text/markdown")


def _load_upload(source: Source, on_ocr_progress: OcrProgress | None) -> LoadedDocument:
    stored = SourceFile.objects.filter(source=source).first()
    if stored is None:
        raise ExtractionError("The uploaded file is missing; upload it again.")
    extracted = extract_file(bytes(stored.data), stored.filename, on_ocr_progress=on_ocr_progress)
    return LoadedDocument(
        text=extracted.text,
        title=extracted.title or stored.filename,
        mime_type=extracted.mime_type,
        metadata=extracted.metadata,
    )


def load_url(url: str, *, on_ocr_progress: OcrProgress | None = None) -> LoadedDocument:
    """Fetch a page through the SSRF guard and extract its main text (a scanned PDF's with OCR)."""
    response = fetch(url, allowed_content_types=URL_CONTENT_TYPES, max_bytes=settings.FETCH_MAX_BYTES)
    if response.content_type in HTML_TYPES:
        extracted = extract_html(response.content, url=response.url, charset=response.charset)
    elif response.content_type in PDF_TYPES:
        extracted = extract_pdf(response.content, on_ocr_progress=on_ocr_progress)
    else:
        text = normalize_text(decode_text(response.content, response.charset))
        if not text:
            raise ExtractionError(f"No text could be extracted from {response.url}.")
        check_text_length(len(text), "page")
        return LoadedDocument(text=text, url=response.url, mime_type=response.content_type)
    return LoadedDocument(
        text=extracted.text,
        title=extracted.title,
        url=response.url,
        mime_type=extracted.mime_type,
        metadata=extracted.metadata,
    )
