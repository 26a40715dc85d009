"""Render one PDF page to a grayscale PGM image for OCR, in a child process of its own.

Run as ``python -I render_pdf_page.py PDF PAGE OUT DPI MAX_PIXELS MEMORY_BYTES`` by
``sources.extraction.ocr`` — never imported by the application. PDFium is a large C++ library
decoding hostile input (a 2 MB PDF can declare an image that decodes to gigabytes), so it runs
here, under an address-space limit set before it is even loaded, with a time limit enforced by
the parent: a decompression bomb or a PDFium crash costs this process, not the worker.
The script needs only the standard library and pypdfium2 (no Django: it starts in ~0.1 s).

Exit codes: 0 rendered; 2 the page could not be rendered (damaged, or PDFium refused it);
64 bad arguments.
"""

from __future__ import annotations

import math
import resource
import sys

POINTS_PER_INCH = 72


def _limit_resources(memory_bytes: int, output_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    # The one file it writes is the page image: nothing can fill the disk.
    resource.setrlimit(resource.RLIMIT_FSIZE, (output_bytes, output_bytes))


def _scale(width_pt: float, height_pt: float, dpi: int, max_pixels: int) -> float:
    """``dpi`` as a scale factor, lowered so that the page has at most ``max_pixels`` pixels
    (a poster-sized page is read at a lower resolution rather than refused)."""
    scale = dpi / POINTS_PER_INCH
    if width_pt * height_pt * scale * scale > max_pixels:
        scale = math.sqrt(max_pixels / (width_pt * height_pt))
    return scale


def render(pdf_path: str, page_index: int, out_path: str, dpi: int, max_pixels: int) -> int:
    import pypdfium2 as pdfium  # after the limits: PDFium's own allocations count

    try:
        document = pdfium.PdfDocument(pdf_path)
        page = document[page_index]
        width_pt, height_pt = page.get_size()
        if not (width_pt > 0 and height_pt > 0):
            return 2
        bitmap = page.render(scale=_scale(width_pt, height_pt, dpi, max_pixels), grayscale=True)
    except (pdfium.PdfiumError, IndexError, ValueError, MemoryError):
        return 2
    width, height, stride = bitmap.width, bitmap.height, bitmap.stride
    rows = memoryview(bitmap.buffer)
    # PGM (P5): a header and the gray bytes, which Tesseract (Leptonica) reads directly.
    with open(out_path, "wb") as out:
        out.write(b"P5\n%d %d\n255\n" % (width, height))
        if stride == width:
            out.write(rows[: width * height])
        else:
            for row in range(height):
                out.write(rows[row * stride : row * stride + width])
    return 0


def main(argv: list[str]) -> int:
    try:
        pdf_path, page, out_path, dpi, max_pixels, memory_bytes = argv
        page_index, dpi_value, pixel_cap, memory = int(page), int(dpi), int(max_pixels), int(memory_bytes)
    except ValueError:
        return 64
    _limit_resources(memory, pixel_cap + 64 * 1024)
    return render(pdf_path, page_index, out_path, dpi_value, pixel_cap)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
