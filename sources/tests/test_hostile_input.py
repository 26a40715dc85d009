"""Hostile input: crafted files, pages, sitemaps and request bodies.

Every attack here must end in a clear 4xx (API) or an `error` status with a readable message
(ingestion), within a stated time and memory bound, without losing what is already stored. The
hostile inputs are generated inside the tests. Memory is measured with tracemalloc (every Python
allocation, including the buffers zlib and zipfile inflate into); lxml's C allocations are not
seen by it, so tree-building attacks are bounded by the tag and size limits asserted instead.
Limits and what the tenant sees are documented in docs/sources.md ("Limits and hostile input").
Sections follow the issue's list; item 7 (prompt injection) is chat/tests/test_prompt_injection.py.
"""

from __future__ import annotations

import gc
import io
import ipaddress
import json
import random
import struct
import threading
import time
import tracemalloc
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from fpdf import FPDF
from fpdf.enums import EncryptionMethod

from conftest import LocalSite, TenantWorld
from minirag.safe_http import destinations
from minirag.vectorstore import get_vector_store
from sources import discovery, extraction
from sources.extraction import (
    ExtractionError,
    detect_file_type,
    extract_file,
    extract_html,
    extract_pdf,
)
from sources.ingestion import plan_chunks
from sources.loaders import LoadedDocument
from sources.models import Chunk, Document, Source, SourceFile
from sources.services import source_upload
from tenants.tenancy import tenant_scope
from webhooks.models import WebhookDelivery

MB = 1024 * 1024

# --- Measuring --------------------------------------------------------------------------------


@dataclass
class Cost:
    seconds: float = 0.0
    peak_mb: float = 0.0


@contextmanager
def measured(*, memory: bool = True) -> Iterator[Cost]:
    """Wall time, and the peak of Python allocations (tracemalloc) while the block runs."""
    cost = Cost()
    if memory:
        tracemalloc.start()
        tracemalloc.reset_peak()
    started = time.perf_counter()
    try:
        yield cost
    finally:
        cost.seconds = time.perf_counter() - started
        if memory:
            cost.peak_mb = tracemalloc.get_traced_memory()[1] / MB
            tracemalloc.stop()


def extraction_error(call: Callable[[], Any]) -> str:
    with pytest.raises(ExtractionError) as caught:
        call()
    return caught.value.message


# --- API helpers ------------------------------------------------------------------------------


def upload(world: TenantWorld, filename: str, data: bytes) -> Any:
    return world.client("admin").post(
        "/v1/sources/upload",
        {"bot_profile_id": str(world.bot.pk), "file": SimpleUploadedFile(filename, data)},
        format="multipart",
    )


def create_source(world: TenantWorld, **body: Any) -> dict[str, Any]:
    body.setdefault("bot_profile_id", str(world.bot.pk))
    response = world.client("admin").post("/v1/sources", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def ingest(world: TenantWorld, source_id: str) -> dict[str, Any]:
    assert world.client("admin").post(f"/v1/sources/{source_id}/ingest").status_code == 202
    return world.client().get(f"/v1/sources/{source_id}").json()


def upload_and_ingest(world: TenantWorld, filename: str, data: bytes) -> dict[str, Any]:
    response = upload(world, filename, data)
    assert response.status_code == 201, response.content
    return ingest(world, response.json()["id"])


def stored_chunks(world: TenantWorld, source_id: str) -> list[str]:
    with tenant_scope(world.tenant):
        return list(Chunk.objects.filter(source_id=source_id).order_by("chunk_index").values_list("content", flat=True))


def children(world: TenantWorld, parent_id: str) -> list[dict[str, Any]]:
    return world.client().get(f"/v1/sources/{parent_id}/children").json()


# --- 1. DOCX: ZIP bombs -----------------------------------------------------------------------

CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    b'<Default Extension="xml" ContentType="application/xml"/>'
    b'<Override PartName="/word/document.xml" '
    b'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)
RELS = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Target="word/document.xml" '
    b'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"/></Relationships>'
)


def document_xml(body: bytes) -> bytes:
    return (
        b'<?xml version="1.0" encoding="UTF-8"?><w:document '
        b'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
        + body
        + b"</w:body></w:document>"
    )


def paragraph(text: bytes) -> bytes:
    return b"<w:p><w:r><w:t>" + text + b"</w:t></w:r></w:p>"


@dataclass
class Member:
    name: str
    content: bytes
    zeros_after: int = 0  # this many zero bytes more in the deflate stream
    declared: bool = True  # whether the directory declares them (False: it lies)


def raw_zip(members: list[Member]) -> bytes:
    """A ZIP written by hand, so that its directory can lie: a member whose deflate stream holds
    `zeros_after` more bytes than the size and CRC it declares."""
    out = bytearray()
    central = bytearray()
    for member in members:
        name = member.name.encode()
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        compressed = bytearray(compressor.compress(member.content))
        crc = zlib.crc32(member.content)
        size = len(member.content)
        zeros = bytes(MB)
        for _ in range(member.zeros_after // MB):
            compressed += compressor.compress(zeros)
            if member.declared:
                crc, size = zlib.crc32(zeros, crc), size + MB
        compressed += compressor.flush()
        header = struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(compressed), size, len(name), 0)
        central += struct.pack(
            "<4s6H3I5H2I",
            b"PK\x01\x02",
            20,
            20,
            0,
            8,
            0,
            0,
            crc,
            len(compressed),
            size,
            len(name),
            0,
            0,
            0,
            0,
            0,
            len(out),
        )
        central += name
        out += header + name + compressed
    directory_at = len(out)
    out += central + struct.pack(
        "<4s4H2IH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), directory_at, 0
    )
    return bytes(out)


def docx_package(body: bytes, **document: Any) -> list[Member]:
    return [
        Member("[Content_Types].xml", CONTENT_TYPES),
        Member("_rels/.rels", RELS),
        Member("word/document.xml", document_xml(body), **document),
    ]


def test_a_docx_whose_directory_lies_is_read_only_as_far_as_it_declares() -> None:
    # The directory declares a small, valid document.xml; its deflate stream goes on for 200 MB of
    # zeros. Python's zipfile inflates a whole compressed block per call before cutting it to the
    # declared size (ZipFile.read, which python-docx uses, took 1.6 GB for 800 MB of zeros).
    package = raw_zip(docx_package(paragraph(b"The real text."), zeros_after=200 * MB, declared=False))
    assert len(package) < 300_000
    with measured() as cost:
        assert detect_file_type(package, "liar.docx") == "docx"
        assert extract_file(package, "liar.docx").text == "The real text."
    assert cost.peak_mb < 16, cost
    assert cost.seconds < 5, cost

    # The same trick on [Content_Types].xml, which upload-time type detection reads.
    lying_types = raw_zip(
        [
            Member("[Content_Types].xml", CONTENT_TYPES, zeros_after=200 * MB, declared=False),
            *docx_package(paragraph(b"x"))[1:],
        ]
    )
    with measured() as cost:
        assert detect_file_type(lying_types, "liar.docx") == "docx"
    assert cost.peak_mb < 8, cost


def test_a_docx_bomb_is_refused_from_its_directory_before_inflating(alpha: TenantWorld) -> None:
    # 300 MB of zeros in 300 KB: accepted as a .docx at upload (it has the shape of one), refused
    # at ingestion with a readable reason, and nothing is inflated on the way.
    bomb = raw_zip(docx_package(paragraph(b"boom"), zeros_after=300 * MB))
    assert len(bomb) < 400_000
    with measured() as cost:
        response = upload(alpha, "bomb.docx", bomb)
        assert response.status_code == 201, response.content
        source = ingest(alpha, response.json()["id"])
    assert source["status"] == "error"
    assert source["error_message"].startswith("The Word document expands more than 200 times when uncompressed")
    assert cost.peak_mb < 40, cost
    assert cost.seconds < 10, cost


def test_a_docx_expanding_past_the_xml_limit_at_a_plausible_ratio_is_refused() -> None:
    # ~17 MB of XML at about 100:1, under the ratio a bomb would need: refused by the XML limit.
    rng = random.Random(7)
    chunks = [paragraph(b"a" * 800 + bytes(rng.choice(b"bcdefghij") for _ in range(8))) for _ in range(21_000)]
    package = raw_zip(docx_package(b"".join(chunks)))
    info = zipfile.ZipFile(io.BytesIO(package)).getinfo("word/document.xml")
    assert info.file_size > extraction.MAX_DOCX_XML_BYTES and info.file_size < 200 * info.compress_size
    with measured() as cost:
        message = extraction_error(lambda: extract_file(package, "long.docx"))
    assert message.startswith("The Word document expands to more than 16 MB when uncompressed")
    assert cost.seconds < 5, cost
    assert cost.peak_mb < 8, cost


def test_a_docx_with_thousands_of_parts_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for member in docx_package(paragraph(b"x")):
            archive.writestr(member.name, member.content)
        for number in range(5000):
            archive.writestr(f"word/media/part{number}.xml", b"")
    with measured() as cost:
        message = extraction_error(lambda: extract_file(buffer.getvalue(), "parts.docx"))
    assert message.startswith("The Word document has 5,003 parts; at most 2,000 are supported")
    assert cost.seconds < 5, cost


def test_docx_text_is_held_to_the_character_limit(settings: Any) -> None:
    settings.EXTRACT_MAX_CHARS = 50_000
    package = raw_zip(docx_package(paragraph(b"word " * 2_000) * 30))  # 300,000 characters
    message = extraction_error(lambda: extract_file(package, "long.docx"))
    assert message == (
        "The Word document holds more than 50,000 characters of text, the most one document may have. "
        "Split it into smaller files."
    )


# --- 2. PDF -----------------------------------------------------------------------------------

FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def build_pdf(objects: list[bytes], *, catalog_extra: bytes = b"") -> bytes:
    """A PDF written by hand: `objects[i]` is the body of object i + 1; object 1 must be the
    catalog, and its `catalog_extra` entries are added."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        if number == 1:
            body = body[:-2] + catalog_extra + b">>"
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def stream(data: bytes, *, compress: bool = True, extra: bytes = b"") -> bytes:
    if compress:
        data = zlib.compress(data, 9)
        extra += b" /Filter /FlateDecode"
    return b"<< /Length %d%s >>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def page(content: int, *, extra: bytes = b"", xobjects: bytes = b"") -> bytes:
    return (
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R " % content
        + b"/Resources << /Font << /F1 3 0 R >> "
        + (b"/XObject << " + xobjects + b" >> " if xobjects else b"")
        + b">> "
        + extra
        + b">>"
    )


def one_page_pdf(content: bytes, *, page_extra: bytes = b"", objects: list[bytes] = (), **kwargs: Any) -> bytes:
    """Catalog 1, pages 2, font 3, page 4, content 5, then `objects` from 6."""
    return build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
            FONT,
            page(5, extra=page_extra, **kwargs),
            stream(content),
            *objects,
        ]
    )


HELLO = b"BT /F1 12 Tf 72 720 Td (Hello from a hostile PDF) Tj ET"


def many_pages_pdf(count: int, content: bytes = HELLO) -> bytes:
    kids = b" ".join(b"%d 0 R" % (5 + number) for number in range(count))
    return build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % count,
            FONT,
            stream(content),  # object 4: one content stream shared by every page
            *[page(4) for _ in range(count)],
        ]
    )


def deep_page_tree_pdf(depth: int) -> bytes:
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    for level in range(depth):
        parent = b"/Parent %d 0 R " % (level + 1) if level else b""
        objects.append(b"<< /Type /Pages " + parent + b"/Kids [%d 0 R] /Count 1 >>" % (level + 3))
    leaf = depth + 2
    objects.append(
        b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Contents %d 0 R " % (leaf - 1, leaf + 1)
        + b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (leaf + 2)
    )
    objects += [stream(HELLO), FONT]
    return build_pdf(objects)


def fpdf_document(text: str, **encryption: Any) -> bytes:
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, text)
    if encryption:
        pdf.set_encryption(owner_password="owner-secret", **encryption)
    return bytes(pdf.output())


@pytest.fixture
def no_collection_at_the_recursion_limit() -> Iterator[None]:
    """pypdf recurses to the interpreter's limit on these files (and recovers). A garbage collection
    that starts there runs earlier tests' finalizers with no stack left: their RecursionError is an
    "unraisable exception", which pytest turns into this test's failure. Collect first, not during."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.usefixtures("no_collection_at_the_recursion_limit")
def test_pdfs_nested_ten_thousand_deep_end_readably_and_fast() -> None:
    arrays = one_page_pdf(HELLO, page_extra=b"/Junk " + b"[" * 10_000 + b"]" * 10_000 + b" ")
    dictionaries = one_page_pdf(HELLO, page_extra=b"/Junk " + b"<< /A " * 10_000 + b"1" + b" >>" * 10_000 + b" ")
    with measured(memory=False) as cost:
        assert extraction_error(lambda: extract_pdf(arrays)).startswith("The PDF could not be read; it may be damaged")
        # pypdf gives up on the junk entry but the page itself is fine.
        assert extract_pdf(dictionaries).text == "Hello from a hostile PDF"
        # A page tree 10,000 levels deep (pypdf stops at 100) and one that contains itself.
        assert "damaged" in extraction_error(lambda: extract_pdf(deep_page_tree_pdf(10_000)))
        looping = build_pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [2 0 R 4 0 R] /Count 2 >>",
                FONT,
                page(5),
                stream(HELLO),
            ]
        )
        assert "damaged" in extraction_error(lambda: extract_pdf(looping))
    assert cost.seconds < 5, cost


def test_a_pdf_with_thousands_of_pages_is_refused_and_one_at_the_cap_is_read() -> None:
    with measured(memory=False) as cost:
        assert extraction_error(lambda: extract_pdf(many_pages_pdf(5000))) == (
            "The PDF has 5,000 pages; at most 2,000 are supported. Split it into smaller files."
        )
        # 100,000 references to one page object: the same refusal, from the page count.
        kids = b" ".join([b"4 0 R"] * 100_000)
        shared = build_pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [" + kids + b"] /Count 100000 >>",
                FONT,
                page(5),
                stream(HELLO),
            ]
        )
        assert "100,000 pages; at most 2,000" in extraction_error(lambda: extract_pdf(shared))
        document = extract_pdf(many_pages_pdf(2000))
    assert document.metadata == {"pages": 2000}
    assert document.text.count("Hello from a hostile PDF") == 2000
    assert cost.seconds < 10, cost


def test_truncated_corrupt_and_encrypted_pdfs_fail_readably() -> None:
    whole = one_page_pdf(HELLO)
    damaged = "The PDF could not be read; it may be damaged. Try exporting it again or saving it as a new PDF."
    for cut in (40, 150, len(whole) // 2):
        assert extraction_error(lambda cut=cut: extract_pdf(whole[:cut])) == damaged
    assert extraction_error(lambda: extract_pdf(b"%PDF-1.7\n" + random.Random(3).randbytes(50_000))) == damaged
    for method in (EncryptionMethod.RC4, EncryptionMethod.AES_128, EncryptionMethod.AES_256):
        locked = fpdf_document("Board minutes.", user_password="hunter2", encryption_method=method)
        assert extraction_error(lambda locked=locked: extract_pdf(locked)) == (
            "The PDF is encrypted (password-protected). Remove the password and upload it again."
        )
    # Encrypted with an empty user password (permissions only): read as usual.
    open_pdf = fpdf_document("Printing is restricted.", user_password="", encryption_method=EncryptionMethod.AES_256)
    assert extract_pdf(open_pdf).text == "Printing is restricted."


def test_pdf_amplification_is_cut_off_by_the_work_budget() -> None:
    page_limit = "Page 1 of the PDF holds more than 200,000 characters of text, which no real page does"
    # A 1 KB PDF whose page draws one 10 KB form 10,000 times would yield 100 MB of text (pypdf
    # parses and runs the form again at every use).
    form_text = b"BT /F1 12 Tf 72 720 Td (word word word word word word word word word) Tj ET\n" * 130
    form = stream(
        form_text, extra=b" /Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >>"
    )
    amplifier = one_page_pdf(b"/Fm1 Do\n" * 10_000, objects=[form], xobjects=b"/Fm1 6 0 R")
    assert len(amplifier) < 2000
    with measured() as cost:
        assert extraction_error(lambda: extract_pdf(amplifier)).startswith(page_limit)
    assert cost.seconds < 5, cost
    assert cost.peak_mb < 50, cost
    # 3 MB of text operators on one line (before the budget, 10 MB of them took 127 s: pypdf's
    # cost on a single line grows faster than linearly), and a content stream inflating to 100 MB
    # (over the 16 MB pypdf is allowed here).
    one_line = one_page_pdf(b"BT /F1 12 Tf 72 720 Td " + b"(word word word word word ) Tj " * 100_000 + b"ET")
    flate_bomb = one_page_pdf(b"BT /F1 12 Tf 72 720 Td (bomb) Tj ET " + b" " * (100 * MB))
    with measured(memory=False) as cost:
        assert extraction_error(lambda: extract_pdf(one_line)).startswith(page_limit)
        assert extraction_error(lambda: extract_pdf(flate_bomb)).startswith(
            "The PDF is too complex to extract: its page content is larger than 16 MB once uncompressed"
        )
    assert cost.seconds < 15, cost


def test_pdf_operations_are_budgeted_across_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pages full of operators that show nothing cost time but produce no text: the operation
    # budget (2 M, ~20 s at worst) stops them. Scaled down here to keep the test fast.
    monkeypatch.setattr(extraction.pdf, "MAX_PDF_OPERATIONS", 20_000)
    busy = many_pages_pdf(100, b"BT /F1 12 Tf " + b"() Tj\n" * 1_000 + b"ET")
    with measured(memory=False) as cost:
        assert extraction_error(lambda: extract_pdf(busy)) == (
            "The PDF is too complex to extract: its pages hold more than 20,000 drawing operations. "
            "Split it into smaller files, or export it again as a simpler PDF."
        )
    assert cost.seconds < 5, cost


def test_pdf_text_is_held_to_the_character_limit(settings: Any) -> None:
    settings.EXTRACT_MAX_CHARS = 10_000
    message = extraction_error(lambda: extract_pdf(many_pages_pdf(1000)))  # 24,000 characters
    assert message == (
        "The PDF holds more than 10,000 characters of text, the most one document may have. "
        "Split it into smaller files."
    )


# --- 3. A giant single line -------------------------------------------------------------------


@pytest.mark.parametrize(
    "unit",
    [
        pytest.param(b"lorem ipsum dolor sit amet consectetur adipiscing elit sed do ", id="words"),
        pytest.param(b"x", id="no-whitespace"),
        pytest.param("\u6f22\u5b57\u304b\u306a\u3002".encode(), id="cjk"),
    ],
)
def test_a_giant_single_line_at_the_upload_cap_is_chunked_in_linear_time(unit: bytes) -> None:
    cap = django_settings.UPLOAD_MAX_BYTES
    data = (unit * (cap // len(unit)))[: cap - cap % len(unit)]
    assert b"\n" not in data and len(data) > cap - len(unit)
    with measured() as cost:
        document = extract_file(data, "giant.txt")
        planned = plan_chunks(uuid.uuid4(), [LoadedDocument(text=document.text)], size=512, overlap=64)
    # Measured ~1.3 s and ~35 MB (under tracemalloc) for 10 MB; anything quadratic takes minutes.
    assert cost.seconds < 20, cost
    assert cost.peak_mb < 8 * cap / MB, cost
    assert all(0 < len(chunk.content) <= 512 for chunk in planned)
    assert len(planned) >= len(document.text) // 512


def test_a_file_over_the_upload_cap_is_refused_before_it_is_read(alpha: TenantWorld) -> None:
    cap = django_settings.UPLOAD_MAX_BYTES
    with measured(memory=False) as cost:
        assert extraction_error(lambda: extract_file(b"x" * (2 * cap), "huge.txt")).startswith(
            "The file is too large (20.0 MB); the limit is 10 MB."
        )
        response = upload(alpha, "huge.txt", b"word " * (4 * cap // 5))  # 20 MB of one line
    assert response.status_code == 413
    assert response.json() == {"detail": "The file is larger than the 10 MB upload limit."}
    assert cost.seconds < 5, cost


def test_a_single_line_upload_is_ingested_in_bounded_chunks(alpha: TenantWorld) -> None:
    # Small enough to embed quickly (the offline model does ~10-20 chunks/s on 2 cores); the
    # test above covers the size.
    line = " ".join(f"word{number}" for number in range(1_500)).encode()  # ~11 KB, no newline
    with measured(memory=False) as cost:
        source = upload_and_ingest(alpha, "one-line.txt", line)
    assert source["status"] == "ready", source["error_message"]
    chunks = stored_chunks(alpha, source["id"])
    assert source["chunk_count"] == len(chunks) >= len(line) // 512
    assert all(len(chunk) <= 512 for chunk in chunks)
    assert chunks[0].startswith("word0 word1 ") and chunks[-1].endswith("word1499")
    assert cost.seconds < 20, cost


# --- 4. Encodings, NUL bytes, BOMs, control characters ----------------------------------------

UTF8_TEXT = "\u00dcber die Gr\u00f6\u00dfe der St\u00e4dte und das Caf\u00e9 am Platz. " * 20


@pytest.mark.parametrize(
    ("filename", "data", "expected", "absent"),
    [
        pytest.param(
            "mixed.txt",
            UTF8_TEXT.encode() + "Ein Absatz in Latin-1: \u00e9t\u00e9 \u00e0 Z\u00fcrich.".encode("latin-1"),
            ["\u00dcber die Gr\u00f6\u00dfe", "\u00e9t\u00e9 \u00e0 Z\u00fcrich"],
            ["\u00c3", "\ufffd"],
            id="utf-8-with-a-latin-1-paragraph",
        ),
        pytest.param(
            "broken.md",
            b"# Notes\n\nValid start. " + b"\xff\xfe\xc3\x28 \xe2\x82 \xf0\x9f\x98 invalid sequences. " * 30,
            ["Valid start.", "invalid sequences."],
            ["\x00"],
            id="malformed-utf-8",
        ),
        pytest.param(
            "bom.md",
            b"\xef\xbb\xbf# Title\n\nA line with a bell\x07, an escape\x1b[31m code and a form feed\x0c here. "
            + b"Plain words follow. " * 50,
            ["A line with a bell, an escape[31m code and a form feed here."],
            ["\ufeff", "\x07", "\x1b", "\x0c"],
            id="bom-and-control-characters",
        ),
        pytest.param(
            "table.csv",
            ("name,no\x00te\n" + "Alice,first row\nBob,second row\n" * 20).encode("utf-16"),
            ["name: Alice; note: first row"],
            ["\x00"],
            id="utf-16-csv-with-nul-characters",
        ),
        pytest.param(
            "page.html",
            b"\xef\xbb\xbf<html><head><title>T\xc3\xadtulo</title></head><body><p>Se\xc3\xb1or \x01\x02 "
            + b"words. </p>" * 40
            + b"</body></html>",
            ["Se\u00f1or words."],
            ["\x01", "\x02"],
            id="html-bom-and-controls",
        ),
    ],
)
def test_odd_encodings_ingest_with_clean_text(
    alpha: TenantWorld, filename: str, data: bytes, expected: list[str], absent: list[str]
) -> None:
    source = upload_and_ingest(alpha, filename, data)
    assert source["status"] == "ready", source["error_message"]
    text = " ".join(stored_chunks(alpha, source["id"]))
    for fragment in expected:
        assert fragment in text
    for fragment in absent:
        assert fragment not in text
    with tenant_scope(alpha.tenant):
        document = Document.objects.get(source_id=source["id"])
    assert "\\u0000" not in json.dumps(document.metadata) and "\x00" not in document.title


def test_nul_bytes_never_reach_postgresql(alpha: TenantWorld, site: LocalSite) -> None:
    # A .txt with raw NUL bytes is refused at upload as binary, readably.
    refused = upload(alpha, "nul.txt", b"hello\x00world " * 100)
    assert refused.status_code == 422
    assert "Unsupported file type" in refused.json()["detail"] and "binary data" in refused.json()["detail"]
    # Pages may carry NUL bytes in their text, and a PDF in its text and its /Lang entry: they are
    # ingested and stored without them (PostgreSQL text and jsonb refuse "\x00").
    html = site.add(
        "/nul.html", b"<html><body><p>Hello\x00 world, " + b"and more words.\x00 " * 30 + b"</p></body></html>"
    )
    text = site.add("/nul.txt", b"plain\x00 text " * 50, "text/plain")
    pdf = build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
            FONT,
            page(5),
            stream(b"BT /F1 12 Tf 72 720 Td (Text\\000 with a NUL) Tj ET"),
        ],
        catalog_extra=b" /Lang (en\\000GB)",
    )
    for url, expected in ((html, "Hello world, and more words."), (text, "plain text plain text")):
        source = ingest(alpha, create_source(alpha, name="nul", source_type="url", config={"url": url})["id"])
        assert source["status"] == "ready", source["error_message"]
        assert expected in stored_chunks(alpha, source["id"])[0]
    source = upload_and_ingest(alpha, "nul.pdf", pdf)
    assert source["status"] == "ready", source["error_message"]
    assert stored_chunks(alpha, source["id"]) == ["Text with a NUL"]
    with tenant_scope(alpha.tenant):
        assert Document.objects.get(source_id=source["id"]).metadata == {"pages": 1, "language": "enGB"}
        assert not any("\x00" in content for content in Chunk.objects.values_list("content", flat=True))


# --- 5. HTML with millions of tags, and deep nesting -------------------------------------------


def test_html_with_millions_of_tags_is_refused_quickly_and_keeps_what_was_stored(
    alpha: TenantWorld, site: LocalSite
) -> None:
    url = site.add(
        "/docs", "<html><body><main><p>" + "The warranty lasts two years. " * 40 + "</p></main></body></html>"
    )
    first = ingest(alpha, create_source(alpha, name="Docs", source_type="url", config={"url": url})["id"])
    assert first["status"] == "ready" and first["chunk_count"] >= 1
    before = stored_chunks(alpha, first["id"])
    vectors = get_vector_store().count("minirag_chunks", tenant_id=alpha.tenant.pk, source_ids=[first["id"]])

    tags = b"<html><body>" + b"<div>" * 2_000_000 + b"text</body></html>"  # 10 MB, under both caps
    assert len(tags) < min(django_settings.FETCH_MAX_BYTES, django_settings.UPLOAD_MAX_BYTES)
    site.add("/docs", tags)
    with measured() as cost:
        again = ingest(alpha, first["id"])
    message = "The page has too much markup to process (more than 500,000 tags)."
    assert again["status"] == "error" and again["error_message"] == message
    assert cost.seconds < 10, cost
    assert cost.peak_mb < 48, cost  # ~20 MB measured: the 10 MB body and its text; no tree is built
    with measured(memory=False) as cost:
        uploaded = upload_and_ingest(alpha, "tags.html", tags)
    assert uploaded["status"] == "error" and uploaded["error_message"] == message
    assert cost.seconds < 10, cost
    # The failed refresh lost nothing: the same chunks and vectors are still served.
    assert stored_chunks(alpha, first["id"]) == before
    assert get_vector_store().count("minirag_chunks", tenant_id=alpha.tenant.pk, source_ids=[first["id"]]) == vectors


def test_html_under_the_tag_limit_and_deep_nesting_stay_bounded(alpha: TenantWorld) -> None:
    intro = b"<p>The introduction is kept even when the rest nests too deeply.</p>"
    siblings = b"<html><body>" + intro + b"<div></div>" * 240_000 + b"</body></html>"  # 480,000 tags
    nested = b"<html><body>" + intro + b"<div>" * 100_000 + b"deep" + b"</div>" * 100_000 + b"</body></html>"
    with measured() as cost:
        assert extract_html(siblings).text == intro[3:-4].decode()
        # libxml2 stops nesting at depth 256: no RecursionError, the text above the depth is kept.
        assert extract_html(nested).text == intro[3:-4].decode()
    assert cost.seconds < 15, cost
    assert cost.peak_mb < 64, cost
    source = upload_and_ingest(alpha, "nested.html", nested)
    assert source["status"] == "ready" and stored_chunks(alpha, source["id"]) == [intro[3:-4].decode()]


# --- 6. Sitemaps and the SSRF guard -----------------------------------------------------------


class RecordingServer:
    """An HTTP server that records every path asked of it: the internal service a hostile
    sitemap points at. Nothing may ever reach it."""

    def __init__(self, host: str, port: int) -> None:
        self.requests: list[str] = []
        recorded = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorded.append(self.path)
                body = b"internal secret"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def internal(site: LocalSite) -> Iterator[RecordingServer]:
    """An internal service on 127.0.0.2, on the same port as the public test site: a page URL
    that got past the guard would land here."""
    server = RecordingServer("127.0.0.2", site.server.server_address[1])
    yield server
    server.close()


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, Callable[[], list[str]]]:
    """Name resolution as the test says (no network): IP literals resolve to themselves."""
    table: dict[str, Callable[[], list[str]]] = {"localhost": lambda: ["127.0.0.1", "::1"]}

    def resolve(host: str, port: int) -> list[str]:
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            pass
        if host not in table:
            raise OSError(f"unknown host {host}")
        return table[host]()

    monkeypatch.setattr(destinations, "resolve", resolve)
    return table


def sitemap_xml(urls: list[str], *, index: bool = False) -> str:
    tag, entry = ("sitemapindex", "sitemap") if index else ("urlset", "url")
    entries = "".join(f"<{entry}><loc>{url}</loc></{entry}>" for url in urls)
    return f'<?xml version="1.0"?><{tag} xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</{tag}>'


def public_site(site: LocalSite, dns: dict[str, Any], settings: Any) -> str:
    """The test site, reached as docs.example.test with the SSRF guard on (its loopback address
    stands in for a public one)."""
    dns["docs.example.test"] = lambda: ["127.0.0.1"]
    settings.ALLOW_PRIVATE_NETWORKS = False
    settings.SSRF_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    return f"http://docs.example.test:{site.server.server_address[1]}"


def test_a_sitemap_listing_private_addresses_never_reaches_them(
    alpha: TenantWorld, site: LocalSite, internal: RecordingServer, dns: dict[str, Any], settings: Any
) -> None:
    base = public_site(site, dns, settings)
    port = site.server.server_address[1]
    dns["internal.example.test"] = lambda: ["127.0.0.2"]
    hostile = [
        f"http://127.0.0.2:{port}/secret",
        "http://10.0.0.1/admin",
        "http://169.254.169.254/latest/meta-data/",
        f"http://[::1]:{port}/x",
        f"http://localhost:{port}/x",
        f"http://internal.example.test:{port}/x",
    ]
    site.add("/ok", "<html><body><p>" + "A public page. " * 30 + "</p></body></html>")
    site.add("/sitemap.xml", sitemap_xml([*hostile, f"{base}/ok"]), "application/xml")
    parent = create_source(alpha, name="Map", source_type="sitemap", config={"url": f"{base}/sitemap.xml"})
    result = ingest(alpha, parent["id"])
    # Only the sitemap's own host is crawled: the private addresses never become pages at all.
    assert result["status"] == "ready"
    assert [child["config"]["url"] for child in children(alpha, parent["id"])] == [f"{base}/ok"]
    assert internal.requests == []
    assert site.requests == ["/robots.txt", "/sitemap.xml", "/ok"]


def test_sitemap_pages_whose_host_turns_private_end_in_error_unfetched(
    alpha: TenantWorld, site: LocalSite, internal: RecordingServer, dns: dict[str, Any], settings: Any
) -> None:
    # DNS rebinding: the host is public while the sitemap is read, then points at the internal
    # service when its pages are fetched. Each page is checked again, refused, and says why.
    base = public_site(site, dns, settings)
    site.add("/sitemap.xml", sitemap_xml([f"{base}/a", f"{base}/b"]), "application/xml")
    parent = create_source(alpha, name="Map", source_type="sitemap", config={"url": f"{base}/sitemap.xml"})
    dns["docs.example.test"] = lambda: ["127.0.0.2"] if "/sitemap.xml" in site.requests else ["127.0.0.1"]
    result = ingest(alpha, parent["id"])
    pages = children(alpha, parent["id"])
    assert len(pages) == 2
    blocked = "docs.example.test points to a private or reserved address, which is not allowed"
    assert all(page["status"] == "error" and page["error_message"] == blocked for page in pages)
    assert internal.requests == []
    assert site.requests == ["/robots.txt", "/sitemap.xml"]
    # The sitemap reports it: its status is its pages', and its webhook says what failed.
    assert result["status"] == "error" and result["children_count"] == 2
    with tenant_scope(alpha.tenant):
        events = [json.loads(row.body) for row in WebhookDelivery.objects.filter(event="source.failed")]
    failure = next(event for event in events if event["source_id"] == parent["id"])
    assert failure["error"] == f"All 2 pages failed. The first: {blocked}"
    assert (failure["children_count"], failure["failed_children"]) == (2, 2)


def test_a_sitemap_on_a_private_host_is_refused_and_never_fetched(
    alpha: TenantWorld, site: LocalSite, dns: dict[str, Any], settings: Any
) -> None:
    settings.ALLOW_PRIVATE_NETWORKS = False
    port = site.server.server_address[1]
    for url in (
        f"http://127.0.0.1:{port}/sitemap.xml",
        "http://10.1.2.3/sitemap.xml",
        "http://169.254.169.254/latest/sitemap.xml",
        f"http://[::1]:{port}/sitemap.xml",
        f"http://localhost:{port}/sitemap.xml",
    ):
        response = alpha.client("admin").post(
            "/v1/sources",
            {"bot_profile_id": str(alpha.bot.pk), "name": "x", "source_type": "sitemap", "config": {"url": url}},
            format="json",
        )
        assert response.status_code == 422, url
        assert "points to a private or reserved address, which is not allowed" in response.json()["detail"]
    # A name that resolved to a public address when the source was saved, and to loopback now.
    dns["docs.example.test"] = lambda: ["93.184.216.34"]
    url = f"http://docs.example.test:{port}/sitemap.xml"
    parent = create_source(alpha, name="Map", source_type="sitemap", config={"url": url})
    dns["docs.example.test"] = lambda: ["127.0.0.1"]
    site.add("/sitemap.xml", sitemap_xml([f"http://docs.example.test:{port}/a"]), "application/xml")
    result = ingest(alpha, parent["id"])
    assert result["status"] == "error"
    assert result["error_message"] == (
        "The sitemap could not be fetched: docs.example.test points to a private or reserved address, "
        "which is not allowed"
    )
    assert site.requests == []


def test_sitemap_index_loops_and_fan_out_are_bounded(alpha: TenantWorld, site: LocalSite) -> None:
    url = site.url
    site.add("/a", "<html><body><p>" + "Page A. " * 40 + "</p></body></html>")
    site.add("/b", "<html><body><p>" + "Page B. " * 40 + "</p></body></html>")
    site.add(
        "/index.xml",
        sitemap_xml(
            [url("/index.xml"), url("/loop.xml"), url("/leaf.xml"), *(url(f"/s{n}.xml") for n in range(500))],
            index=True,
        ),
        "application/xml",
    )
    site.add(
        "/loop.xml", sitemap_xml([url("/index.xml"), url("/loop.xml"), url("/leaf.xml")], index=True), "application/xml"
    )
    site.add("/leaf.xml", sitemap_xml([url("/a"), url("/b"), url("/a")]), "application/xml")
    parent = create_source(alpha, name="Loop", source_type="sitemap", config={"url": url("/index.xml")})
    result = ingest(alpha, parent["id"])
    assert result["status"] == "ready" and result["children_count"] == 2
    sitemaps = [path for path in site.requests if path.endswith(".xml")]
    assert len(sitemaps) == len(set(sitemaps)) == discovery.MAX_SITEMAP_FILES  # each once, 20 at most
    assert "/s18.xml" not in sitemaps and "/s499.xml" not in sitemaps


def test_huge_sitemaps_are_bounded_by_max_pages_and_the_size_cap(alpha: TenantWorld, site: LocalSite) -> None:
    # 300,000 entries (13 MB): parsed only until max_pages pages are found, in flat memory.
    for number in range(3):
        site.add(f"/p/{number}", f"<html><body><p>{'Product page. ' * 30}{number}</p></body></html>")
    big = sitemap_xml([site.url(f"/p/{number}") for number in range(300_000)])
    site.add("/big.xml", big, "application/xml")
    with measured() as cost:
        pages = discovery.discover_from_sitemap(site.url("/big.xml"), max_pages=3)
    assert pages == [site.url(f"/p/{number}") for number in range(3)]
    # The body itself is held twice while it is received (~26 MB); parsing adds next to nothing
    # (parsing it whole took ~80 MB more before).
    assert cost.peak_mb < 2.5 * len(big) / MB, cost
    assert cost.seconds < 10, cost
    parent = create_source(
        alpha, name="Big", source_type="sitemap", config={"url": site.url("/big.xml"), "max_pages": 3}
    )
    assert ingest(alpha, parent["id"])["children_count"] == 3

    # 1,000,000 entries (46 MB): the download stops at the 20 MB cap, with a readable reason.
    site.add("/huge.xml", sitemap_xml([site.url(f"/p/{number}") for number in range(1_000_000)]), "application/xml")
    huge = create_source(alpha, name="Huge", source_type="sitemap", config={"url": site.url("/huge.xml")})
    with measured(memory=False) as cost:
        result = ingest(alpha, huge["id"])
    assert result["status"] == "error"
    assert result["error_message"] == (
        f"The sitemap {site.url('/huge.xml')} is larger than 20 MB; split it into several sitemaps listed by a "
        "sitemap index."
    )
    assert cost.seconds < 10, cost


# --- 8. Oversized and odd API input on the sources routes -------------------------------------


def test_an_upload_one_byte_over_the_cap_is_413_and_stores_nothing(alpha: TenantWorld) -> None:
    cap = django_settings.UPLOAD_MAX_BYTES
    with tenant_scope(alpha.tenant):
        before = Source.objects.count()
    at_cap = upload(alpha, "cap.txt", b"a" * cap)
    assert at_cap.status_code == 201 and at_cap.json()["config"]["file_size"] == cap
    over = upload(alpha, "cap.txt", b"a" * (cap + 1))
    assert over.status_code == 413
    assert over.json() == {"detail": "The file is larger than the 10 MB upload limit."}
    with tenant_scope(alpha.tenant):
        assert Source.objects.count() == before + 1


LYING_FILES = [
    ("manual.pdf", b"\x7fELF\x02\x01\x01" + bytes(200), "an executable program"),
    ("manual.pdf", b"MZ\x90\x00" + bytes(200), "a Windows executable"),
    ("manual.pdf", b"PK\x03\x04" + bytes(200), "a damaged ZIP archive"),
    ("manual.pdf", raw_zip(docx_package(paragraph(b"x"))), "a Word document (.docx)"),
    ("notes.txt", b"%PDF-1.7\n" + bytes(range(256)), "a PDF document"),
    ("report.docx", b"<html><body>not a document</body></html>", "plain text"),
    ("photo.md", b"\x89PNG\r\n\x1a\n" + bytes(200), "a PNG image"),
]


def test_a_file_whose_extension_lies_is_422_and_stores_nothing(alpha: TenantWorld) -> None:
    with tenant_scope(alpha.tenant):
        before = Source.objects.count()
    for filename, data, looks_like in LYING_FILES:
        response = upload(alpha, filename, data)
        assert response.status_code == 422, filename
        detail = response.json()["detail"]
        assert detail.startswith(
            f"file: Unsupported file type: the content of '{filename}' does not match its extension"
        )
        assert f"(it looks like {looks_like})" in detail
    with tenant_scope(alpha.tenant):
        assert Source.objects.count() == before


def raw_multipart_upload(world: TenantWorld, filename: bytes, data: bytes = b"hello world") -> Any:
    boundary = b"hostile-boundary"
    body = (
        b"--"
        + boundary
        + b'\r\nContent-Disposition: form-data; name="bot_profile_id"\r\n\r\n'
        + str(world.bot.pk).encode()
        + b"\r\n--"
        + boundary
        + b'\r\nContent-Disposition: form-data; name="file"; filename="'
        + filename
        + b'"\r\n'
        + b"Content-Type: application/octet-stream\r\n\r\n"
        + data
        + b"\r\n--"
        + boundary
        + b"--\r\n"
    )
    return world.client("admin").generic(
        "POST", "/v1/sources/upload", body, content_type=f"multipart/form-data; boundary={boundary.decode()}"
    )


HOSTILE_FILENAMES = [
    (b"../../etc/passwd.txt", "passwd.txt"),
    (b"..\\..\\windows\\win.ini.txt", "win.ini.txt"),
    (b"/abs/path/notes.md", "notes.md"),
    (b"a\x00b.txt", "ab.txt"),
    (b"bell\x07\x1b[31mred\r\x7f.txt", "bell[31mred.txt"),
    ("\u202etxt.exe\u202c.txt".encode(), "txt.exe.txt"),
    (b"x" * 300 + b".txt", "x" * 251 + ".txt"),
]


def test_hostile_filenames_are_stored_sanitised(alpha: TenantWorld) -> None:
    for filename, stored in HOSTILE_FILENAMES:
        response = raw_multipart_upload(alpha, filename)
        assert response.status_code == 201, response.content
        assert response.json()["config"]["original_filename"] == stored
        assert response.json()["name"] == stored[:200]  # the name defaults to the file name, cut to fit
        with tenant_scope(alpha.tenant):
            assert SourceFile.objects.get(source_id=response.json()["id"]).filename == stored


def test_filenames_beyond_what_the_parser_accepts_are_clear_4xx(alpha: TenantWorld) -> None:
    too_long = raw_multipart_upload(alpha, b"x" * 10_000 + b".txt")
    assert too_long.status_code == 400
    assert too_long.json() == {"detail": "Multipart form parse error - Request max total header size exceeded."}
    undecodable = raw_multipart_upload(alpha, b"\xff\xfe.txt")
    assert undecodable.status_code == 422 and undecodable.json()["detail"] == "file: No file was submitted."
    # The service sanitises names too, for callers that do not go through Django's parser.
    with tenant_scope(alpha.tenant):
        source = source_upload(
            tenant=alpha.tenant,
            bot_profile=alpha.bot,
            uploaded=SimpleUploadedFile("sub\\dir\\a\x00\x01b\ud800.txt", b"hello"),
        )
        assert source.name == "ab.txt" and SourceFile.objects.get(source=source).filename == "ab.txt"


def post_json(world: TenantWorld, path: str, body: str, method: str = "POST") -> Any:
    return world.client("admin").generic(method, path, body.encode(), content_type="application/json")


def test_deeply_nested_and_huge_json_bodies_are_clear_4xx(alpha: TenantWorld) -> None:
    bot = str(alpha.bot.pk)
    too_deep = {"detail": "JSON parse error: the body is nested more than 64 levels deep."}
    with measured(memory=False) as cost:
        for depth in (65, 900, 10_000, 100_000):
            config = "[" * depth + "]" * depth
            body = (
                f'{{"bot_profile_id": "{bot}", "name": "n", "source_type": "text", "content": "x", "config": {config}}}'
            )
            response = post_json(alpha, "/v1/sources", body)
            assert (response.status_code, response.json()) == (400, too_deep), depth
        nested_object = '{"a":' * 5_000 + "1" + "}" * 5_000
        response = post_json(alpha, f"/v1/sources/{alpha.text_source.pk}", f'{{"config": {nested_object}}}', "PATCH")
        assert (response.status_code, response.json()) == (400, too_deep)
        # A million elements where a few are expected: refused by the schema, not by exhaustion.
        million = "[" + ",".join(["{}"] * 1_000_000) + "]"
        response = post_json(
            alpha, "/v1/sources/batch", f'{{"bot_profile_id": "{bot}", "name": "n", "children": {million}}}'
        )
        assert response.status_code == 422
        assert response.json()["detail"] == "children: Ensure this field has no more than 1000 elements."
        numbers = "[" + ",".join(["0"] * 1_000_000) + "]"
        body = f'{{"bot_profile_id": "{bot}", "name": {numbers}, "source_type": "text", "content": "x"}}'
        response = post_json(alpha, "/v1/sources", body)
        assert response.status_code == 422 and response.json()["detail"] == "name: Not a valid string."
        over_cap = '{"content": "' + "x" * django_settings.MAX_JSON_BODY_BYTES + '"}'
        response = post_json(alpha, "/v1/sources", over_cap)
        assert response.status_code == 413 and "too large" in response.json()["detail"]
    assert cost.seconds < 15, cost
    # Sixty-four levels is still fine (and refused by the schema for what it is).
    config = "[" * 63 + "]" * 63
    body = f'{{"bot_profile_id": "{bot}", "name": "n", "source_type": "text", "content": "x", "config": {config}}}'
    response = post_json(alpha, "/v1/sources", body)
    assert response.status_code == 422 and response.json()["detail"] == "config: Must be an object."
