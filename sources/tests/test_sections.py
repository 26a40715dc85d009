"""Documents are cut at their headings and every chunk carries its heading trail
(sources/sections.py), and HTML extraction keeps the headings and fences the code that make that
possible (sources/extraction/web.py)."""

from __future__ import annotations

import uuid

from sources.extraction.web import extract_html
from sources.ingestion import plan_chunks
from sources.loaders import LoadedDocument
from sources.sections import MAX_TRAIL_CHARS, Section, sections

GUIDE = """# Operations

Run one web process per core.

## Rotating keys

Generate a key and put it first.

```bash
# not a heading: a comment inside code
python manage.py rotate_keys
```

### Checking

Run it twice; the second run does nothing.

## Backups
### Daily

Back up PostgreSQL every night.
"""


def test_a_document_is_cut_at_its_headings_with_their_trail() -> None:
    found = sections(GUIDE)
    assert [(section.trail, section.level) for section in found] == [
        ("Operations", 1),
        ("Operations > Rotating keys", 2),
        ("Operations > Rotating keys > Checking", 3),
        ("Operations > Backups > Daily", 3),  # "Backups" has no body of its own: it lives on in the trail
    ]
    assert "# not a heading" in found[1].body and found[1].body.startswith("Generate a key")
    assert found[2].header == "### Operations > Rotating keys > Checking"


def test_text_without_headings_is_one_section_and_long_trails_keep_the_nearest_headings() -> None:
    assert sections("Plain text.\n\nTwo paragraphs.") == [Section("", 0, "Plain text.\n\nTwo paragraphs.")]
    deep = "\n".join(f"{'#' * level} Heading number {level} " + "x" * 40 for level in range(1, 7)) + "\nBody."
    (section,) = sections(deep)
    assert len(section.trail) <= MAX_TRAIL_CHARS and section.trail.endswith("Heading number 6 " + "x" * 40)


def test_every_chunk_starts_with_its_trail_and_stays_within_the_size() -> None:
    body = " ".join(f"Sentence number {n} says something about keys." for n in range(40))
    document = LoadedDocument(text=f"# Guide\n\nIntro.\n\n## Keys\n\n{body}", title="Guide")
    chunks = [chunk.content for chunk in plan_chunks(uuid.uuid4(), [document], size=300, overlap=40)]
    assert chunks[0] == "# Guide\nIntro."
    assert len(chunks) > 3 and all(chunk.startswith("## Guide > Keys\n") for chunk in chunks[1:])
    assert all(len(chunk) <= 300 for chunk in chunks)
    # Text without headings is chunked exactly as before.
    plain = LoadedDocument(text=body, title="Plain")
    assert not any(chunk.content.startswith("#") for chunk in plan_chunks(uuid.uuid4(), [plain], size=300, overlap=40))


def test_html_headings_become_heading_lines_and_code_is_fenced() -> None:
    page = b"""<html><head><title>Cache</title></head><body><main>
    <h1>Django's cache framework<a class="headerlink" href="#top">\xc2\xb6</a></h1>
    <p>A dynamic website has a problem: each time a user requests a page, the server makes all sorts of
    calculations to create the page. That is expensive, so caching saves the result.</p>
    <h2>Memcached<a class="headerlink" href="#memcached">\xc2\xb6</a></h2>
    <p>Memcached is an entirely memory-based cache server, originally developed to handle high loads at
    LiveJournal.com, and it is used by sites such as Facebook and Wikipedia to reduce database access.</p>
    <pre><code># cache key for the sidebar
CACHES = {"default": {}}</code></pre>
    </main></body></html>"""
    text = extract_html(page).text
    assert "# Django's cache framework\n" in text and "## Memcached\n" in text
    assert "\u00b6" not in text
    assert "```\n# cache key for the sidebar\nCACHES" in text
    assert [section.trail for section in sections(text)] == [
        "Django's cache framework",
        "Django's cache framework > Memcached",
    ]
