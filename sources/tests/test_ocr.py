"""OCR of scanned PDFs and images with the real Tesseract (scripts/ensure_system_packages.sh installs
it for `make test`): pictures of text drawn in the tests with Pillow, read back word for word; the
work budget, the pixel limits and OCR's absence, each as the tenant sees it. OCR is fuzzy, so the
assertions are on words Tesseract reads reliably at these sizes."""

from __future__ import annotations

import io
import re
import struct
import time
import zlib
from pathlib import Path
from typing import Any

import docx
import numpy
import pytest
from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont, ImageStat

from sources.extraction import (
    NO_TEXT_FOUND,
    ExtractionError,
    NoTextError,
    OcrUnavailableError,
    UnsupportedFileTypeError,
    detect_file_type,
    extract_file,
    extract_pdf,
)
from sources.extraction import ocr as ocr_module

ROOT = Path(__file__).resolve().parents[2]
# Pillow's built-in TrueType font (Pillow >= 10.1): ASCII only, no system font needed.
FONT = ImageFont.load_default(size=40)
# Accents need a real font; `scripts/ensure_system_packages.sh test-fonts` installs it.
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def text_image(*lines: str, font: Any = FONT, width: int = 1400, mode: str = "L") -> Image.Image:
    """Black text on white, 40-pixel letters: a page scanned at about 300 DPI, cropped."""
    image = Image.new(mode, (width, 80 + 70 * len(lines)), "white")
    draw = ImageDraw.Draw(image)
    for number, line in enumerate(lines):
        draw.text((40, 40 + 70 * number), line, font=font, fill="black")
    return image


def encoded(image: Image.Image, image_format: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def words(text: str) -> set[str]:
    return set(re.findall(r"[\w:]+", text.lower()))


class Progress:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, done: int, total: int) -> None:
        self.calls.append((done, total))


def dejavu(size: int = 40) -> Any:
    if not DEJAVU.exists():
        pytest.fail(f"{DEJAVU} is missing: run scripts/ensure_system_packages.sh test-fonts")
    return ImageFont.truetype(str(DEJAVU), size)


# --- Images ---------------------------------------------------------------------------------------


def test_a_png_is_read_with_ocr() -> None:
    progress = Progress()
    data = encoded(text_image("The reading room opens at 07:40"), "PNG")
    document = extract_file(data, "notice.png", on_ocr_progress=progress)
    assert {"reading", "room", "opens", "07:40"} <= words(document.text)
    assert document.mime_type == "image/png"
    assert document.metadata["ocr_pages"] == 1 and document.metadata["ocr_languages"] == "eng+deu+fra"
    assert (document.metadata["width"], document.metadata["height"]) == (1400, 150)
    assert progress.calls == [(0, 1), (1, 1)]


def test_a_jpeg_photo_and_an_upright_exif_orientation() -> None:
    # A phone stores the picture sideways and says so in EXIF: it is turned upright before OCR.
    sideways = text_image("Parcels leave the depot every Tuesday").convert("RGB").rotate(90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    document = extract_file(encoded(sideways, "JPEG", quality=90, exif=exif), "photo.jpeg")
    assert {"parcels", "depot", "tuesday"} <= words(document.text)
    assert document.mime_type == "image/jpeg"


def test_a_multi_page_tiff_is_read_page_by_page() -> None:
    first, second = text_image("First page about lanterns"), text_image("Second page about harbours")
    progress = Progress()
    document = extract_file(
        encoded(first, "TIFF", save_all=True, append_images=[second], compression="tiff_lzw"),
        "fax.tif",
        on_ocr_progress=progress,
    )
    first_text, second_text = document.text.split("\n\n")
    assert "lanterns" in first_text.lower() and "harbours" in second_text.lower()
    assert document.metadata["pages"] == 2 and document.mime_type == "image/tiff"
    assert progress.calls == [(0, 2), (1, 2), (2, 2)]


def test_sixteen_bit_and_transparent_images_are_not_read_as_blank() -> None:
    # A plain conversion clips 16-bit gray to white, and shows transparent pixels' black.
    gray = text_image("Invoices are paid within thirty days")
    sixteen_bit = Image.fromarray(numpy.asarray(gray, dtype=numpy.uint16) * 257)
    assert sixteen_bit.mode == "I;16"
    ink_only = Image.new("RGBA", gray.size, (0, 0, 0, 0))
    ink_only.putalpha(gray.point(lambda value: 255 - value))
    for image in (sixteen_bit, ink_only):
        assert {"invoices", "paid", "thirty", "days"} <= words(extract_file(encoded(image, "PNG"), "x.png").text)


def test_languages_follow_the_setting(settings: Any) -> None:
    german = encoded(text_image("Größere Straßenkarten gibt es im Erdgeschoß", font=dejavu(), width=1600), "PNG")
    assert {"größere", "straßenkarten", "erdgeschoß"} <= words(extract_file(german, "karte.png").text)
    settings.OCR_LANGUAGES = "eng"  # English data reads the umlauts and the ß as other letters
    assert "straßenkarten" not in words(extract_file(german, "karte.png").text)

    settings.OCR_LANGUAGES = "fra"
    french = encoded(text_image("Le garçon décide où aller après le dîner", font=dejavu(), width=1600), "PNG")
    document = extract_file(french, "menu.png")
    assert {"garçon", "décide", "où", "après"} <= words(document.text)
    assert document.metadata["ocr_languages"] == "fra"


def test_a_blank_image_has_no_text() -> None:
    with pytest.raises(NoTextError) as caught:
        extract_file(encoded(Image.new("L", (1200, 900), "white"), "PNG"), "blank.png")
    assert NO_TEXT_FOUND in caught.value.message
    assert "OCR (eng+deu+fra) read the image and found no text" in caught.value.message


def png_declaring(width: int, height: int) -> bytes:
    """A real 1x1 PNG whose header claims another size: decoding it would cost that many pixels."""
    data = bytearray(encoded(Image.new("L", (1, 1), "white"), "PNG"))
    header = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = header
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + header))
    return bytes(data)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow's, before ours refuses
@pytest.mark.parametrize(("width", "height"), [(12_000, 10_000), (50_000, 50_000)])
def test_an_image_bomb_is_refused_unread(width: int, height: int) -> None:
    started = time.perf_counter()
    with pytest.raises(ExtractionError) as caught:
        extract_file(png_declaring(width, height), "bomb.png")
    assert "refused unread" in caught.value.message
    if width * height < 2 * Image.MAX_IMAGE_PIXELS:  # beyond that Pillow refuses at open, sizes unsaid
        assert f"The PNG image is {width:,} x {height:,} pixels" in caught.value.message
    assert time.perf_counter() - started < 2  # nothing was decoded


def test_a_damaged_image_is_a_readable_error() -> None:
    truncated = encoded(text_image("Cut short"), "PNG")[:300]
    with pytest.raises(ExtractionError, match="could not be read; it may be damaged"):
        extract_file(truncated, "cut.png")


# --- PDFs -----------------------------------------------------------------------------------------


def test_a_scanned_pdf_is_read_with_ocr() -> None:
    pages = [text_image("The archive closes on public holidays"), text_image("Readers must sign the register")]
    progress = Progress()
    data = encoded(pages[0], "PDF", resolution=300, save_all=True, append_images=pages[1:])
    document = extract_pdf(data, on_ocr_progress=progress)
    first, second = document.text.split("\n\n")
    assert {"archive", "closes", "holidays"} <= words(first) and {"readers", "register"} <= words(second)
    assert document.metadata == {"pages": 2, "ocr_pages": 2, "ocr_languages": "eng+deu+fra"}
    assert progress.calls[0] == (0, 2) and progress.calls[-1] == (2, 2)


def mixed_pdf() -> bytes:
    """Page 1 typed; page 2 a scan; page 3 a scan with a tiny text layer (a scanner's stamp)."""
    pdf = FPDF()
    pdf.set_auto_page_break(False)
    pdf.set_font("helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, "Typed page: the museum shop accepts cards and cash.")
    pdf.add_page()
    pdf.image(text_image("Scanned page: guided tours start at noon"), x=10, y=10, w=190)
    pdf.add_page()
    pdf.image(text_image("The ferry leaves from pier four"), x=10, y=10, w=190)
    pdf.set_y(280)
    pdf.cell(0, 8, "p. 3")
    return bytes(pdf.output())


def test_a_mixed_pdf_reads_only_its_pages_without_text() -> None:
    progress = Progress()
    document = extract_pdf(mixed_pdf(), on_ocr_progress=progress)
    typed, scanned = document.text.split("\n\n", 1)
    assert typed == "Typed page: the museum shop accepts cards and cash."  # the text layer, untouched
    # Page 3's stamp did not stop OCR; what OCR read replaced it (the stamp's text is on the image).
    assert scanned.index("noon") < scanned.index("ferry")
    assert {"guided", "tours", "noon", "ferry", "pier", "four"} <= words(scanned)
    assert document.metadata["ocr_pages"] == 2 and "pages_without_text" not in document.metadata
    assert progress.calls[0] == (0, 2)  # pages 2 and 3 only


def test_a_pdf_of_blank_scans_has_no_text() -> None:
    blank = Image.new("L", (1200, 1600), "white")
    with pytest.raises(NoTextError) as caught:
        extract_pdf(encoded(blank, "PDF", resolution=200))
    message = caught.value.message
    assert NO_TEXT_FOUND in message and "OCR (eng+deu+fra) found no text on its 1 scanned page" in message


def pdf_with_image(width: int, height: int, *, gray: int | None = None) -> bytes:
    """A one-page PDF drawing a width x height gray image over the whole page: all pixels of the
    ``gray`` level, or (None) a stream of a few bytes that only declares the size."""
    if gray is None:
        pixels = zlib.compress(b"\xff" * 16)
    else:
        packer, row = zlib.compressobj(1), bytes([gray]) * width
        pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /XObject << /Im0 5 0 R >> >>"
        b" /Contents 4 0 R >>",
        b"<< /Length 30 >>\nstream\nq 595 0 0 842 0 0 cm /Im0 Do Q\nendstream",
        b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 8"
        b" /Filter /FlateDecode /Length %d >>\nstream\n" % (width, height, len(pixels)) + pixels + b"\nendstream",
    ]
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    return out + b"trailer << /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)


def test_a_pdf_page_with_an_image_bomb_is_refused_before_rendering() -> None:
    started = time.perf_counter()
    with pytest.raises(ExtractionError) as caught:
        extract_pdf(pdf_with_image(60_000, 60_000))
    assert "Page 1 of the PDF holds an image of 60,000 x 60,000 pixels" in caught.value.message
    assert time.perf_counter() - started < 2


def test_the_page_renderer_runs_in_a_memory_limited_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A black 9,000 x 9,000 image (81 MB decoded, 80 KB compressed) fills the page. PDFium runs
    in a child process; given less memory than the image needs, the child leaves it out and the
    page comes back white, while this process never holds the image."""
    pdf = tmp_path / "black.pdf"
    pdf.write_bytes(pdf_with_image(9_000, 9_000, gray=0))

    def rendered_brightness() -> float:
        page = tmp_path / "page.pgm"
        assert ocr_module._render_page(pdf, 0, page, budget=ocr_module.OcrBudget("PDF", 1), pages_done=0)
        with Image.open(page) as image:
            assert image.width == 2480  # A4 at 300 DPI
            return ImageStat.Stat(image).mean[0]

    assert rendered_brightness() < 5  # decoded within the default limit: a black page
    monkeypatch.setattr(ocr_module, "RENDER_MEMORY_BYTES", 64 * 1024 * 1024)
    assert rendered_brightness() > 250


# --- The work budget ------------------------------------------------------------------------------


def test_more_pages_than_the_budget_are_refused_before_any_is_read(settings: Any) -> None:
    settings.OCR_MAX_PAGES = 1
    pages = [text_image("One"), text_image("Two")]
    progress = Progress()
    with pytest.raises(ExtractionError) as caught:
        extract_file(encoded(pages[0], "TIFF", save_all=True, append_images=pages[1:]), "two.tiff")
    assert "has more than 1 pages to read with OCR; at most 1 are read per document" in caught.value.message
    with pytest.raises(ExtractionError) as caught:
        extract_pdf(encoded(pages[0], "PDF", save_all=True, append_images=pages[1:]), on_ocr_progress=progress)
    assert "The PDF has 2 pages to read with OCR; at most 1" in caught.value.message
    assert progress.calls == []


def test_ocr_out_of_time_stops_and_says_how_far_it_got(settings: Any) -> None:
    settings.OCR_MAX_SECONDS = 3
    pages = [text_image("Chapter one"), text_image("Chapter two"), text_image("Chapter three")]

    def slow_reader(done: int, total: int) -> None:
        if done == 1:
            time.sleep(3.1)  # the first page is read; the budget is then spent

    with pytest.raises(ExtractionError) as caught:
        extract_pdf(encoded(pages[0], "PDF", save_all=True, append_images=pages[1:]), on_ocr_progress=slow_reader)
    assert caught.value.message.startswith("OCR stopped after 1 of 3 pages of the PDF: reading scans may take at most")
    assert "(MINIRAG_OCR_MAX_SECONDS)" in caught.value.message


def test_a_page_that_takes_too_long_is_killed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ocr_module, "MAX_SECONDS_PER_PAGE", 0.05)  # no page reads that fast
    with pytest.raises(ExtractionError) as caught:
        extract_file(encoded(text_image("Slow going"), "PNG"), "slow.png")
    assert caught.value.message.startswith("OCR gave up on page 1 of the PNG image: reading it took more than 0.05")


# --- Without OCR ----------------------------------------------------------------------------------


def test_without_tesseract_images_and_scans_fail_readably(settings: Any) -> None:
    settings.OCR_TESSERACT_CMD = "/nonexistent/tesseract"
    with pytest.raises(OcrUnavailableError) as caught:
        extract_file(encoded(text_image("Hello"), "PNG"), "hello.png")
    assert "OCR (Tesseract) is not installed on this server" in caught.value.message
    scan = encoded(text_image("Hello"), "PDF")
    with pytest.raises(NoTextError) as caught:
        extract_pdf(scan)
    assert NO_TEXT_FOUND in caught.value.message and "not installed" in caught.value.message
    # A PDF with typed pages keeps them; the scanned ones are counted as without text.
    document = extract_pdf(mixed_pdf())
    assert document.text.startswith("Typed page") and "noon" not in document.text
    assert document.metadata["pages_without_text"] == 1  # page 3 keeps its stamp
    assert "not installed" in document.metadata["ocr_unavailable"]


def test_ocr_turned_off_or_without_a_language(settings: Any) -> None:
    image = encoded(text_image("Hello"), "PNG")
    settings.OCR_ENABLED = False
    with pytest.raises(OcrUnavailableError, match="OCR is turned off on this server"):
        extract_file(image, "hello.png")
    settings.OCR_ENABLED = True
    settings.OCR_LANGUAGES = "eng+xyz"
    with pytest.raises(OcrUnavailableError, match="the OCR language data for xyz is not installed"):
        extract_file(image, "hello.png")


# --- Detection and the other formats --------------------------------------------------------------


def test_images_are_detected_by_their_content() -> None:
    png = encoded(text_image("x"), "PNG")
    assert detect_file_type(png, "scan.png") == "png"
    assert detect_file_type(png, "scan.jpg") == "png"  # the content decides among the images
    assert detect_file_type(encoded(text_image("x"), "JPEG"), "scan.JPEG") == "jpeg"
    assert detect_file_type(encoded(text_image("x"), "TIFF"), "scan.tif") == "tiff"
    for data, looks_like in (
        (b"just some text", "plain text"),
        (b"%PDF-1.7\n", "a PDF document"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "a WebP image"),
        (b"II+\x00\x08\x00\x00\x00", "a BigTIFF image"),
    ):
        with pytest.raises(UnsupportedFileTypeError) as caught:
            detect_file_type(data, "picture.png")
        assert f"it looks like {looks_like}" in caught.value.message
    with pytest.raises(UnsupportedFileTypeError, match=r"has a \.webp extension"):
        detect_file_type(b"RIFF\x10\x00\x00\x00WEBPVP8 ", "picture.webp")


def test_any_file_without_text_says_no_text_found() -> None:
    empty_word = io.BytesIO()
    docx.Document().save(empty_word)
    for data, name, kind in (
        (empty_word.getvalue(), "empty.docx", "Word document"),
        (b" \n\t ", "blank.txt", "text file"),
        (b",,\n , ,\n", "empty-cells.csv", "CSV file"),
        (b"<html><body><script>x()</script></body></html>", "page.html", "web page"),
    ):
        with pytest.raises(NoTextError) as caught:
            extract_file(data, name)
        assert caught.value.message.startswith(f"No text could be extracted from the {kind}: {NO_TEXT_FOUND}")


# --- Installation ---------------------------------------------------------------------------------


def test_the_image_installs_the_packages_the_tests_use() -> None:
    from minirag.tests.test_deployment import dockerfile_stages

    script = (ROOT / "scripts" / "ensure_system_packages.sh").read_text()
    ocr_packages = re.search(r"ocr\) echo \"([^\"]+)\"", script).group(1).split()
    assert ocr_packages == ["tesseract-ocr", "tesseract-ocr-eng", "tesseract-ocr-deu", "tesseract-ocr-fra"]
    runtime = dockerfile_stages()[-1]
    installs = " ".join(rest for instruction, rest in runtime["lines"] if instruction == "RUN")
    assert all(re.search(rf"\b{re.escape(package)}\b", installs) for package in ocr_packages)
    makefile = (ROOT / "Makefile").read_text()
    assert "scripts/ensure_system_packages.sh ocr" in makefile.split("\ntest:")[1].split("\n\n")[0]
