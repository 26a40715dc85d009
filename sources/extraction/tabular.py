"""CSV to text: one line per row, each value labelled with its column ("Header: value; ...")."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from typing import Any

from sources.extraction.base import ExtractedDocument, ExtractionError, check_size, finish
from sources.extraction.text import decode_text

# 200k rows is far beyond what a knowledge-base CSV needs and bounds the run (rendering costs
# ~2 us per cell); a 10 MB file with more rows is mostly tiny rows, better split by the tenant.
MAX_CSV_ROWS = 200_000

_DELIMITERS = (",", ";", "\t", "|")
# The dialect is guessed from the first rows only. csv.Sniffer is not used: its regexes are
# super-linear on quote-heavy input (2.6 s on 8 KB of lines holding a single quote).
_SNIFF_CHARS = 64 * 1024
_SNIFF_ROWS = 50
_NUMBER = re.compile(r"^[-+]?[$€£]?\s*\d[\d.,\s]*%?$")


class _Dialect(csv.Dialect):
    delimiter = ","
    quotechar = '"'
    doublequote = True
    skipinitialspace = True  # 'a, "b, c"' is two fields, not three
    lineterminator = "\n"
    quoting = csv.QUOTE_MINIMAL
    strict = False


def _dialect_for(delimiter: str) -> type[csv.Dialect]:
    return type("_Sniffed", (_Dialect,), {"delimiter": delimiter})


def _sample_rows(text: str, delimiter: str) -> list[list[str]]:
    sample = text[:_SNIFF_CHARS]
    if len(text) > _SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    rows = []
    try:
        for row in csv.reader(io.StringIO(sample), _dialect_for(delimiter)):
            if any(cell.strip() for cell in row):
                rows.append(row)
                if len(rows) >= _SNIFF_ROWS:
                    break
    except csv.Error:
        return []
    return rows


def _sniff_delimiter(text: str) -> str:
    """The delimiter that splits the first rows into the most consistent number (> 1) of fields."""
    best, best_score = ",", (0.0, 0)
    for delimiter in _DELIMITERS:
        rows = _sample_rows(text, delimiter)
        if not rows:
            continue
        width, count = Counter(len(row) for row in rows).most_common(1)[0]
        if width < 2:
            continue
        score = (count / len(rows), width)
        if score > best_score:  # ties keep the earlier (more common) delimiter
            best, best_score = delimiter, score
    return best


def _looks_like_header(first: list[str], following: list[list[str]]) -> bool:
    """Header heuristic: the first row holds distinct, short, non-numeric labels; one empty cell
    is allowed (the index column pandas writes). Ambiguous cases (all-text tables) count as a
    header: real-world CSVs nearly always have one.
    """
    cells = [cell.strip() for cell in first]
    labels = [cell for cell in cells if cell]
    if not following or not labels or len(labels) < len(cells) - 1:
        return False
    return len(set(labels)) == len(labels) and not any(len(label) > 100 or _NUMBER.match(label) for label in labels)


def _clean(cell: str) -> str:
    return " ".join(cell.split())


def extract_csv(data: bytes) -> ExtractedDocument:
    """A CSV file as one line per data row: ``Header1: value1; Header2: value2`` (empty values
    are left out), or ``value1 | value2`` when the file has no header row.

    The delimiter (comma, semicolon, tab or pipe) and the presence of a header are guessed from
    the first rows. Blank rows are skipped. Metadata: ``rows`` (data rows), ``columns`` (header
    names, [] without a header), ``delimiter``. Raises ``ExtractionError`` beyond ``MAX_CSV_ROWS``
    rows, for malformed CSV, an input over the upload limit, or a file without values.
    """
    check_size(len(data), "CSV file")
    text = decode_text(data)
    delimiter = _sniff_delimiter(text)
    sample = _sample_rows(text, delimiter)
    has_header = bool(sample) and _looks_like_header(sample[0], sample[1:])
    header: list[str] = []
    lines: list[str] = []
    reader = csv.reader(io.StringIO(text), _dialect_for(delimiter))
    try:
        for row in reader:
            values = [_clean(cell) for cell in row]
            if not any(values):
                continue
            if has_header and not header:
                header = [value or f"Column {index}" for index, value in enumerate(values, start=1)]
                continue
            if len(lines) >= MAX_CSV_ROWS:
                raise ExtractionError(f"The CSV file has more than {MAX_CSV_ROWS:,} rows; split it into smaller files.")
            if header:
                labels = header + [f"Column {index}" for index in range(len(header) + 1, len(values) + 1)]
                lines.append(
                    "; ".join(f"{label}: {value}" for label, value in zip(labels, values, strict=False) if value)
                )
            else:
                lines.append(" | ".join(value for value in values if value))
    except csv.Error as exc:
        raise ExtractionError(f"The CSV file could not be parsed (line {reader.line_num}): {exc}.") from None
    metadata: dict[str, Any] = {"rows": len(lines), "columns": header, "delimiter": delimiter}
    return finish("\n".join(lines), title="", kind="csv", metadata=metadata)
