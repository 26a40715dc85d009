"""Extraction from real files built inside the tests (fpdf2, python-docx, zipfile): no binary
fixtures in the repository, no database."""

from __future__ import annotations

import codecs
import io
import time
import zipfile

import docx
import pytest
from django.test import override_settings
from fpdf import FPDF
from hypothesis import given, settings
from hypothesis import strategies as st

from sources import extraction
from sources.extraction import (
    SUPPORTED_EXTENSIONS,
    ExtractedDocument,
    ExtractionError,
    UnsupportedFileTypeError,
    decode_text,
    detect_file_type,
    extract_csv,
    extract_docx,
    extract_file,
    extract_html,
    extract_pdf,
)
from sources.normalize import normalize_text

# --- builders -----------------------------------------------------------------------------------


def make_pdf(pages: list[str], *, title: str | None = None, user_password: str | None = None) -> bytes:
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    if title:
        pdf.set_title(title)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 8, text)
        else:
            pdf.rect(20, 20, 100, 60, style="F")  # a page with graphics only, like a scan
    if user_password is not None:
        pdf.set_encryption(owner_password="owner-secret", user_password=user_password)
    return bytes(pdf.output())


def make_docx(*, title: str = "") -> bytes:
    document = docx.Document()
    if title:
        document.core_properties.title = title
    document.add_heading("Getting started", level=1)
    document.add_paragraph("Plug the device in and wait for the green light.")
    document.add_paragraph("Check the cable.", style="List Bullet")
    document.add_paragraph("Check the outlet.", style="List Bullet")
    document.add_heading("Specifications", level=2)
    table = document.add_table(rows=3, cols=2)
    for row, (name, value) in enumerate([("Model", "Weight"), ("W-100", "1.2 kg"), ("W-200", "2.5 kg")]):
        table.cell(row, 0).text = name
        table.cell(row, 1).text = value
    document.add_paragraph("Keep the receipt for the warranty.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


_CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="xml" ContentType="application/xml"/>'
    b'<Override PartName="/word/document.xml" ContentType="%s"/></Types>'
)
_WORD_MAIN = b"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"


def make_zip(parts: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in parts.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def make_zip_bomb(uncompressed_mb: int = 20) -> bytes:
    """A .docx-shaped ZIP whose document.xml is megabytes of one repeated run (~1000:1)."""
    body = b"<w:t>a</w:t>" * (uncompressed_mb * 1024 * 1024 // 12)
    return make_zip({"[Content_Types].xml": _CONTENT_TYPES % _WORD_MAIN, "word/document.xml": body})


ARTICLE_PAGE = """<!DOCTYPE html>
<html lang="en-GB"><head><meta charset="utf-8"><title>Descaling guide | Kettle Co</title>
<meta property="og:title" content="How to descale your kettle">
<script>var tracking = "SCRIPT-MARKER";</script><style>.x{content:"STYLE-MARKER"}</style></head>
<body>
<header><a href="/">Kettle Co home</a>
  <nav><ul><li><a href="/shop">Shop all kettles</a></li><li><a href="/support">Support centre</a></li>
  <li><a href="/about">About our company</a></li></ul></nav></header>
<div class="cookie-banner" id="cookie-consent">We use cookies. Accept all cookies to continue.</div>
<main><article>
  <h1>How to descale your kettle</h1>
  <p>Limescale builds up quickly in hard-water areas, and a descaled kettle boils faster and uses
  less energy. Descale it every four weeks, or as soon as you see white flakes in the water.</p>
  <h2>What you need</h2>
  <ul><li>White vinegar or citric acid</li><li>Fresh water</li><li>A soft cloth</li></ul>
  <p>Fill the kettle halfway with equal parts of vinegar and water, bring it to the boil and leave
  it to soak for one hour. Empty it, rinse it three times and boil fresh water once before use.</p>
  <table><tr><th>Water hardness</th><th>Descale every</th></tr>
  <tr><td>Soft</td><td>8 weeks</td></tr><tr><td>Hard</td><td>2 weeks</td></tr></table>
</article></main>
<footer><p>Copyright Kettle Co Ltd.</p><a href="/privacy">Privacy policy</a>
<a href="/terms">Terms of service</a></footer>
</body></html>"""


# --- decode_text --------------------------------------------------------------------------------

WESTERN = (
    "Caf\u00e9 cr\u00e8me br\u00fbl\u00e9e \u2013 \u201cd\u00e9j\u00e0 vu\u201d for \u20ac5, na\u00efve fa\u00e7ade."
)
GERMAN = "Der B\u00e4r l\u00e4uft \u00fcber die Stra\u00dfe. Gr\u00f6\u00dfe und \u00dcberma\u00df sind sch\u00f6n."
JAPANESE = (
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3067\u3059\u3002"
    + "\u3053\u308c\u306f\u30c6\u30b9\u30c8\u3067\u3059\u3002"
)
RUSSIAN = "\u041f\u0440\u0438\u0432\u0435\u0442, \u043a\u0430\u043a \u0434\u0435\u043b\u0430? " + (
    "\u042d\u0442\u043e \u0442\u0435\u0441\u0442."
)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(WESTERN.encode("cp1252"), WESTERN, id="cp1252"),
        pytest.param(GERMAN.encode("latin-1"), GERMAN, id="latin-1"),
        pytest.param((JAPANESE * 4).encode("shift_jis"), JAPANESE * 4, id="shift-jis"),
        pytest.param((RUSSIAN * 4).encode("cp1251"), RUSSIAN * 4, id="cp1251"),
        pytest.param(codecs.BOM_UTF8 + WESTERN.encode(), WESTERN, id="utf-8-bom"),
        pytest.param(WESTERN.encode("utf-16"), WESTERN, id="utf-16-bom"),
        pytest.param(codecs.BOM_UTF16_BE + WESTERN.encode("utf-16-be"), WESTERN, id="utf-16-be-bom"),
        pytest.param(WESTERN.encode("utf-32"), WESTERN, id="utf-32-bom"),
        pytest.param(JAPANESE.encode(), JAPANESE, id="utf-8"),
    ],
)
def test_decode_text(data: bytes, expected: str) -> None:
    assert decode_text(data) == expected


def test_decode_text_declared_charset() -> None:
    data = WESTERN.encode("cp1252")
    assert decode_text(data, "windows-1252") == WESTERN
    assert decode_text(data, '"ISO-8859-1"') == WESTERN  # read as windows-1252, as browsers do
    assert decode_text(RUSSIAN.encode("koi8-r"), "koi8-r") == RUSSIAN
    # Bogus or dangerous labels are ignored; a BOM beats the declared charset.
    assert decode_text(b"plain", "no-such-charset") == "plain"
    assert decode_text(b"plain", "rot13") == "plain"
    assert decode_text(b"caf\\xe9", "unicode_escape") == "caf\\xe9"
    assert decode_text(codecs.BOM_UTF8 + "\u00e9".encode(), "cp1252") == "\u00e9"
    # A declared charset that does not decode the bytes is not trusted.
    assert decode_text("\u00e9t\u00e9".encode(), "ascii") == "\u00e9t\u00e9"


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=3000),
    st.one_of(st.none(), st.sampled_from(["utf-8", "latin-1", "shift_jis", "utf-16", "bogus", "zlib", ""])),
)
def test_decode_text_never_raises(data: bytes, charset: str | None) -> None:
    assert isinstance(decode_text(data, charset), str)


# --- detect_file_type ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "data", "kind"),
    [
        ("notes.txt", b"Some notes.\n", "text"),
        ("NOTES.TXT", b"Some notes.\n", "text"),
        ("folder/sub\\readme.md", b"# Readme\n", "markdown"),
        ("people.csv", b"a,b\n1,2\n", "csv"),
        ("page.html", b"<html><body>x</body></html>", "html"),
        ("page.htm", b"<p>x</p>", "html"),
        ("utf16.txt", "UTF-16 text with a BOM".encode("utf-16"), "text"),
        ("legacy.txt", WESTERN.encode("cp1252"), "text"),
        ("report.pdf", b"  \n%PDF-1.7\n...", "pdf"),
        ("empty.txt", b"", "text"),
    ],
)
def test_detect_file_type(filename: str, data: bytes, kind: str) -> None:
    assert detect_file_type(data, filename) == kind


def test_detect_docx() -> None:
    assert detect_file_type(make_docx(), "handbook.docx") == "docx"


@pytest.mark.parametrize(
    ("filename", "data", "looks_like"),
    [
        pytest.param("report.txt", make_pdf(["Hello"]), "a PDF document", id="pdf-renamed-txt"),
        pytest.param("report.pdf", b"Just some text, not a PDF.", "plain text", id="text-renamed-pdf"),
        pytest.param("setup.pdf", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00", "a Windows executable", id="exe-renamed-pdf"),
        pytest.param("noise.txt", bytes(range(256)) * 8, "binary data", id="garbage-txt"),
        pytest.param("noise.csv", bytes(range(1, 256)) * 8, "binary data", id="garbage-without-nul"),
        pytest.param("handbook.txt", make_docx(), "a Word document (.docx)", id="docx-renamed-txt"),
        pytest.param("sheet.docx", make_zip({"xl/workbook.xml": b"<x/>"}), "an Excel workbook", id="xlsx-as-docx"),
        pytest.param("archive.docx", make_zip({"a.txt": b"x"}), "a ZIP archive", id="zip-as-docx"),
        pytest.param("text.docx", b"plain words", "plain text", id="text-as-docx"),
        pytest.param(
            "macro.docx",
            make_zip(
                {
                    "[Content_Types].xml": _CONTENT_TYPES % b"application/vnd.ms-word.document.macroEnabled.main+xml",
                    "word/document.xml": b"<w:document/>",
                }
            ),
            "macro-enabled",
            id="docm-renamed-docx",
        ),
        pytest.param("old.md", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500), "legacy Microsoft Office", id="doc"),
        pytest.param("image.html", b"\x89PNG\r\n\x1a\n" + bytes(100), "a PNG image", id="png-as-html"),
        pytest.param("empty.pdf", b"", "an empty file", id="empty-pdf"),
    ],
)
def test_detect_mismatch(filename: str, data: bytes, looks_like: str) -> None:
    with pytest.raises(UnsupportedFileTypeError) as caught:
        detect_file_type(data, filename)
    message = caught.value.message
    assert "Unsupported file type" in message
    assert "does not match its extension" in message
    assert looks_like in message
    assert all(extension in message for extension in SUPPORTED_EXTENSIONS)


@pytest.mark.parametrize(("filename", "fragment"), [("tool.exe", ".exe"), ("Makefile", "no file extension"), ("", "")])
def test_detect_unknown_extension(filename: str, fragment: str) -> None:
    with pytest.raises(UnsupportedFileTypeError) as caught:
        detect_file_type(b"content", filename)
    assert caught.value.message.startswith("Unsupported file type")
    assert fragment in caught.value.message
    assert ", ".join(SUPPORTED_EXTENSIONS) in caught.value.message
    assert isinstance(caught.value, ExtractionError)


# --- extract_file: text kinds -------------------------------------------------------------------


def _assert_clean(document: ExtractedDocument) -> None:
    assert document.text
    assert document.text == normalize_text(document.text)


def test_text_file() -> None:
    document = extract_file("  Hello\u00a0world \r\n\r\n\r\n\r\nSecond\tparagraph  ".encode(), "hello.txt")
    assert document == ExtractedDocument(text="Hello world\n\nSecond paragraph", title="", mime_type="text/plain")


def test_non_utf8_text_files() -> None:
    assert extract_file(WESTERN.encode("cp1252"), "menu.txt").text == WESTERN
    assert extract_file((JAPANESE * 3).encode("shift_jis"), "jp.txt").text == JAPANESE * 3
    assert extract_file(("# Titre\n\n" + WESTERN).encode("utf-16"), "fr.md").title == "Titre"


def test_markdown_title() -> None:
    source = "Intro line\n\n```bash\n# not a title\n```\n\n## Real title ##\n\nBody\n\n# Later"
    document = extract_file(source.encode(), "doc.md")
    assert document.title == "Real title"
    assert document.mime_type == "text/markdown"
    assert extract_file(b"Setext title\n============\n\nBody", "s.md").title == "Setext title"
    assert extract_file(b"No heading here.", "plain.md").title == ""


def test_empty_and_whitespace_only_files() -> None:
    with pytest.raises(ExtractionError, match="empty"):
        extract_file(b"", "empty.txt")
    with pytest.raises(ExtractionError, match="No text could be extracted from the text file"):
        extract_file(b" \n\t\n\xef\xbb\xbf", "blank.txt")


def test_size_limit() -> None:
    with override_settings(UPLOAD_MAX_BYTES=100):
        with pytest.raises(ExtractionError, match="too large"):
            extract_file(b"x" * 101, "big.txt")
        with pytest.raises(ExtractionError, match="too large"):
            extract_html("<p>" + "x" * 200 + "</p>")
        assert extract_file(b"x" * 100, "ok.txt").text == "x" * 100


# --- PDF ----------------------------------------------------------------------------------------


def test_pdf_two_pages_with_title() -> None:
    data = make_pdf(
        ["First page: the warranty lasts two years.", "Second page: returns are free within 30 days."],
        title="Customer Terms",
    )
    document = extract_file(data, "terms.pdf")
    _assert_clean(document)
    assert document.title == "Customer Terms"
    assert document.mime_type == "application/pdf"
    assert document.metadata["pages"] == 2
    first, second = document.text.split("\n\n")
    assert "warranty lasts two years" in first
    assert "returns are free" in second


def test_pdf_encrypted_with_a_password() -> None:
    data = make_pdf(["Top secret."], user_password="hunter2")
    with pytest.raises(ExtractionError) as caught:
        extract_file(data, "secret.pdf")
    assert caught.value.message.startswith("The PDF is encrypted")


def test_pdf_encrypted_with_empty_user_password_is_read() -> None:
    data = make_pdf(["Only printing is restricted."], user_password="")
    assert extract_pdf(data).text == "Only printing is restricted."


def test_pdf_corrupt() -> None:
    with pytest.raises(ExtractionError, match="damaged"):
        extract_pdf(b"%PDF-1.7\n" + bytes(range(256)) * 40)
    with pytest.raises(ExtractionError, match="damaged"):
        extract_file(b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer <<>>\n%%EOF", "x.pdf")
    with pytest.raises(ExtractionError, match="not a PDF"):
        extract_pdf(b"<html>not a pdf</html>")


def test_pdf_without_text_layer() -> None:
    with pytest.raises(ExtractionError) as caught:
        extract_pdf(make_pdf(["", ""]))
    assert "no text layer" in caught.value.message
    assert "OCR" in caught.value.message


def test_pdf_partly_scanned() -> None:
    document = extract_pdf(make_pdf(["Typed page.", ""]))
    assert document.text == "Typed page."
    assert document.metadata == {"pages": 2, "pages_without_text": 1}


def test_pdf_page_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extraction.pdf, "MAX_PDF_PAGES", 2)
    assert extract_pdf(make_pdf(["one", "two"])).metadata["pages"] == 2
    with pytest.raises(ExtractionError, match="3 pages; at most 2"):
        extract_pdf(make_pdf(["one", "two", "three"]))


# --- DOCX ---------------------------------------------------------------------------------------


def test_docx() -> None:
    document = extract_file(make_docx(title="Device Handbook"), "handbook.docx")
    _assert_clean(document)
    assert document.title == "Device Handbook"
    assert document.mime_type == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    assert document.text == (
        "Getting started\n\n"
        "Plug the device in and wait for the green light.\n\n"
        "Check the cable.\nCheck the outlet.\n\n"
        "Specifications\n\n"
        "Model | Weight\nW-100 | 1.2 kg\nW-200 | 2.5 kg\n\n"
        "Keep the receipt for the warranty."
    )


def test_docx_without_title() -> None:
    assert extract_docx(make_docx()).title == ""


def test_docx_zip_bomb_ratio() -> None:
    data = make_zip_bomb(20)
    assert len(data) < 200_000  # 20 MB announced, a few KB stored
    assert detect_file_type(data, "bomb.docx") == "docx"  # shaped like a .docx ...
    with pytest.raises(ExtractionError, match="expands more than 200 times when uncompressed"):
        extract_file(data, "bomb.docx")  # ... and refused before anything is inflated


def test_docx_zip_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    data = make_docx()
    monkeypatch.setattr(extraction.word, "MAX_DOCX_UNCOMPRESSED_BYTES", 1000)
    with pytest.raises(ExtractionError, match="expands to more than 1,000 bytes when uncompressed"):
        extract_docx(data)
    monkeypatch.undo()
    monkeypatch.setattr(extraction.word, "MAX_DOCX_ENTRIES", 3)
    with pytest.raises(ExtractionError, match="parts; at most 3 are supported"):
        extract_docx(data)


def test_docx_damaged() -> None:
    data = make_docx()
    with pytest.raises(ExtractionError, match="damaged"):
        extract_docx(data[: len(data) // 2])
    broken = make_zip({"[Content_Types].xml": _CONTENT_TYPES % _WORD_MAIN, "word/document.xml": b"<not xml"})
    with pytest.raises(ExtractionError, match="damaged"):
        extract_file(broken, "broken.docx")


# --- HTML ---------------------------------------------------------------------------------------


def test_html_main_content_without_boilerplate() -> None:
    document = extract_html(ARTICLE_PAGE.encode(), url="https://kettle.example/guides/descale")
    _assert_clean(document)
    text = document.text
    assert document.title == "How to descale your kettle"
    assert document.mime_type == "text/html"
    assert document.metadata == {"language": "en-GB", "extractor": "main-content"}
    # The article, with its structure: headings and paragraphs as blocks, list items, table rows.
    assert "Limescale builds up quickly in hard-water areas" in text
    assert "What you need\n\n- White vinegar or citric acid\n- Fresh water\n- A soft cloth" in text
    assert "Water hardness | Descale every\nSoft | 8 weeks\nHard | 2 weeks" in text
    assert "boil fresh water once before use." in text
    # Navigation, footer, cookie banner, scripts and styles are gone.
    for boilerplate in (
        "Shop all kettles",
        "Support centre",
        "About our company",
        "Privacy policy",
        "Terms of service",
        "Copyright Kettle Co",
        "Accept all cookies",
        "SCRIPT-MARKER",
        "STYLE-MARKER",
    ):
        assert boilerplate not in text


def test_html_sentences_are_not_cut_by_the_pages_own_line_breaks() -> None:
    """Documentation generators wrap paragraphs in their HTML source and put words of code inside
    sentences; a browser shows one flowing sentence, and so must the extracted text. Code blocks
    keep their lines. (Found by `make eval` on the PostgreSQL manual: sentences arrived cut into
    lines at every source line break and around every inline <code>.)"""
    paragraph = (
        "<p>\n   <code class='command'>CREATE INDEX</code> constructs an index on the specified column(s)\n"
        "   of the specified relation, which can be a table or a materialized view.\n  </p>"
    )
    filler = "".join(f"<p>Indexes are primarily used to enhance database performance, note {n}.</p>" for n in range(8))
    code = "<pre>CREATE INDEX title_idx\n    ON films (title);</pre>"
    page = f"<html><body><article><h1>CREATE INDEX</h1>{paragraph}{filler}{code}</article></body></html>"
    text = extract_html(page.encode()).text
    assert (
        "CREATE INDEX constructs an index on the specified column(s) of the specified relation, which can be a "
        "table or a materialized view." in text
    )
    assert "CREATE INDEX title_idx\nON films (title);" in text  # normalised indentation, lines kept


def test_html_tiny_page_uses_the_basic_extraction() -> None:
    page = (
        b"<html><head><title> Contact </title><script>alert('x')</script></head><body>"
        b"<nav><a href='/'>Home</a></nav><p>Call us on <b>555-0100</b>.</p><div>Open 9-5.</div>"
        b"<footer>Footer text</footer></body></html>"
    )
    document = extract_file(page, "contact.html")
    assert document.text == "Call us on 555-0100.\n\nOpen 9-5."
    assert document.title == "Contact"
    assert document.metadata == {"extractor": "basic"}


def test_html_charsets() -> None:
    page = f"<html><head><meta charset='windows-1252'><title>T</title></head><body><p>{WESTERN}</p></body></html>"
    assert extract_html(page.encode("cp1252")).text == WESTERN
    page = f"<html><head><title>T</title></head><body><p>{WESTERN}</p></body></html>"
    assert extract_html(page.encode("cp1252"), charset="iso-8859-1").text == WESTERN
    assert extract_html(page.encode("utf-16")).text == WESTERN
    xhtml = f'<?xml version="1.0" encoding="UTF-8"?><html><body><p>{WESTERN}</p></body></html>'
    assert extract_html(xhtml).text == WESTERN


def test_html_title_fallbacks() -> None:
    assert extract_html("<html><body><h1>Heading title</h1><p>Body</p></body></html>").title == "Heading title"
    assert extract_html("<html><body><p>Body</p></body></html>").title == ""


def test_html_without_text() -> None:
    for page in ("", "   ", "<html><body><script>x()</script><nav>Menu</nav></body></html>"):
        with pytest.raises(ExtractionError, match="No text could be extracted from the web page"):
            extract_html(page)


def test_html_markup_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    # Millions of tags are refused before parsing, quickly and without building a tree.
    started = time.perf_counter()
    with pytest.raises(ExtractionError, match="too much markup"):
        extract_html(b"<html><body>" + b"<div>" * 1_000_000 + b"text</body></html>")
    with pytest.raises(ExtractionError, match="too much markup"):
        extract_html("<html><body>" + "<p>x</p>" * 600_000 + "</body></html>")
    assert time.perf_counter() - started < 5
    # Pages too big for the main-content extractor still get their text, boilerplate included.
    monkeypatch.setattr(extraction.web, "MAX_MAIN_CONTENT_ELEMENTS", 10)
    document = extract_html(ARTICLE_PAGE)
    assert document.metadata["extractor"] == "basic"
    assert "Limescale builds up quickly" in document.text
    assert "Shop all kettles" not in document.text  # <nav> is still dropped
    assert "SCRIPT-MARKER" not in document.text


def test_html_deep_nesting() -> None:
    nested = "<html><body>" + "<div><span>" * 100 + "deep text" + "</span></div>" * 100 + "</body></html>"
    assert extract_html(nested).text == "deep text"
    # libxml2 stops at depth 256 and drops the rest: a clean error, no RecursionError, no hang.
    started = time.perf_counter()
    too_deep = "<html><body>" + "<div><span>" * 20_000 + "deep text" + "</span></div>" * 20_000 + "</body></html>"
    with pytest.raises(ExtractionError, match="No text could be extracted"):
        extract_html(too_deep)
    assert time.perf_counter() - started < 5


# --- CSV ----------------------------------------------------------------------------------------


def test_csv_comma_with_header() -> None:
    data = b'name,city,age\nAlice,Paris,30\n\n,,\nBob,,41\n"Smith, Jr.","New\nYork",52\n'
    document = extract_file(data, "people.csv")
    assert document.text == (
        "name: Alice; city: Paris; age: 30\nname: Bob; age: 41\nname: Smith, Jr.; city: New York; age: 52"
    )
    assert document.metadata == {"rows": 3, "columns": ["name", "city", "age"], "delimiter": ","}
    assert document.mime_type == "text/csv"
    assert document.title == ""


def test_csv_semicolon_and_decimal_commas() -> None:
    data = "Produit;Prix;Stock\nCr\u00e8me;1,50;12\nP\u00e2te;2,00;3\n".encode("cp1252")
    document = extract_csv(data)
    assert document.text == "Produit: Cr\u00e8me; Prix: 1,50; Stock: 12\nProduit: P\u00e2te; Prix: 2,00; Stock: 3"
    assert document.metadata["delimiter"] == ";"


def test_csv_pandas_index_column() -> None:
    document = extract_csv(b",name,score\n0,Ann,7\n1,Bo,9\n")
    assert document.text == "Column 1: 0; name: Ann; score: 7\nColumn 1: 1; name: Bo; score: 9"
    assert document.metadata["columns"] == ["Column 1", "name", "score"]


def test_csv_tab_separated() -> None:
    document = extract_csv(b"id\tlabel\n1\tfirst\n2\tsecond\n")
    assert document.text == "id: 1; label: first\nid: 2; label: second"


def test_csv_without_header_and_ragged_rows() -> None:
    assert extract_csv(b"1,2,3\n4,5,6\n").text == "1 | 2 | 3\n4 | 5 | 6"
    document = extract_csv(b"a,b\n1,2,extra\n3\n")
    assert document.text == "a: 1; b: 2; Column 3: extra\na: 3"


def test_csv_row_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extraction.tabular, "MAX_CSV_ROWS", 2)
    assert extract_csv(b"h\n1\n2\n").metadata["rows"] == 2
    with pytest.raises(ExtractionError, match="more than 2 rows"):
        extract_csv(b"h\n1\n2\n3\n")


def test_csv_sniffing_is_fast_on_quote_heavy_input() -> None:
    started = time.perf_counter()
    extract_csv(b'"\n' * 200_000 + b"a,b\n")
    assert time.perf_counter() - started < 5


def test_csv_empty() -> None:
    with pytest.raises(ExtractionError, match="No text could be extracted from the CSV file"):
        extract_csv(b"\n,,\n , \n")
