"""chunk_text / chunk_spans: invariants as properties, boundary preferences as examples."""

from __future__ import annotations

import itertools
import time

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sources.chunking import ChunkSpan, chunk_spans, chunk_text
from sources.normalize import normalize_text

_CJK_AFTER = "\u3002\uff01\uff1f\u300d\u300f\u3011\u3015\uff09\"')]\u00bb\u201d\u2019"

# Text with structure: words of varied length (some longer than small sizes), sentence
# punctuation, line and paragraph breaks, odd whitespace, CJK runs without spaces.
_words = st.one_of(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12),
    st.text(alphabet="ABCxyz\u00e9\u00fc\u0301", min_size=1, max_size=40),
    st.sampled_from(["end.", "why?", "wow!", "wait\u2026", '"quoted."', "(aside.)", "e.g.", "3.14"]),
    st.sampled_from(["\u4eca\u65e5\u306f\u6674\u308c\u3002", "\u96e8\uff01", "\u4f55\uff1f\u300d", "\u6f22\u5b57"]),
)
_separators = st.sampled_from([" ", " ", " ", "  ", "\n", "\n\n", "\n\n\n", " \n ", "\t", "\u00a0", ""])


@st.composite
def structured_text(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.tuples(_words, _separators), max_size=120))
    lead = draw(st.sampled_from(["", " ", "\n\n"]))
    return lead + "".join(word + sep for word, sep in parts)


any_text = st.one_of(structured_text(), structured_text().map(normalize_text), st.text(max_size=300))


@st.composite
def size_and_overlap(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.one_of(st.integers(1, 12), st.integers(13, 120), st.just(512)))
    overlap = draw(st.integers(0, size - 1))
    return size, overlap


def _is_word_start(text: str, position: int) -> bool:
    if position == 0 or text[position - 1].isspace():
        return True
    # CJK sentences have no space after them; an overlap may start right after one.
    return text[position - 1] in _CJK_AFTER and text[position] not in _CJK_AFTER


def check_invariants(text: str, size: int, overlap: int, spans: list[ChunkSpan]) -> None:
    stripped_end = len(text.rstrip())
    if not text.strip():
        assert spans == []
        return
    assert spans
    assert spans[0].start == spans[0].body_start == len(text) - len(text.lstrip())
    assert spans[-1].end == stripped_end
    previous: ChunkSpan | None = None
    for span in spans:
        chunk = text[span.start : span.end]
        assert 0 <= span.start <= span.body_start < span.end <= len(text)
        assert len(chunk) <= size, "hard invariant: a chunk never exceeds size"
        assert chunk and chunk == chunk.strip()
        if previous is None:
            assert span.start == span.body_start
        else:
            # New content starts where the previous chunk ended, give or take whitespace.
            assert previous.end <= span.body_start
            assert not text[previous.end : span.body_start].strip()
            if span.start < span.body_start:
                # The overlap is a suffix of the previous chunk, at most `overlap` long, and
                # starts at a word boundary.
                assert previous.start <= span.start < previous.end
                assert previous.end - span.start <= overlap
                assert _is_word_start(text, span.start)
        previous = span


@settings(max_examples=600, deadline=None)
@given(any_text, size_and_overlap())
@example("", (10, 2))
@example("   \n\n  ", (10, 2))
@example("a", (1, 0))
@example("x" * 50, (7, 3))
@example("word " * 40, (12, 11))
@example("e\u0301" * 30, (5, 2))
def test_invariants(text: str, size_overlap: tuple[int, int]) -> None:
    size, overlap = size_overlap
    spans = chunk_spans(text, size=size, overlap=overlap)
    check_invariants(text, size, overlap, spans)
    assert chunk_text(text, size=size, overlap=overlap) == [text[s.start : s.end] for s in spans]


@settings(max_examples=300, deadline=None)
@given(structured_text().map(normalize_text), size_and_overlap())
def test_words_covered_in_order(text: str, size_overlap: tuple[int, int]) -> None:
    """Dropping each chunk's overlap and joining the rest gives back every word, in order."""
    size, overlap = size_overlap
    spans = chunk_spans(text, size=size, overlap=overlap)
    chunks = chunk_text(text, size=size, overlap=overlap)
    rebuilt = ""
    for index, (span, chunk) in enumerate(zip(spans, chunks, strict=True)):
        if index:
            # The separator the input had between the two pieces ("" when a word was cut).
            rebuilt += text[spans[index - 1].end : span.body_start]
        rebuilt += chunk[span.overlap_length :]
    assert rebuilt == text
    assert rebuilt.split() == text.split()


@settings(max_examples=200, deadline=None)
@given(any_text, size_and_overlap())
def test_deterministic(text: str, size_overlap: tuple[int, int]) -> None:
    size, overlap = size_overlap
    assert chunk_text(text, size=size, overlap=overlap) == chunk_text(text, size=size, overlap=overlap)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="abcdefghij", min_size=1, max_size=9), min_size=1, max_size=200))
def test_words_are_never_cut_when_they_fit(words: list[str]) -> None:
    text = " ".join(words)
    for chunk in chunk_text(text, size=20, overlap=8):
        assert set(chunk.split()) <= set(words)


def test_defaults() -> None:
    text = "A short document."
    assert chunk_text(text) == [text]
    assert chunk_text("") == []
    assert chunk_text(" \n\n ") == []


@pytest.mark.parametrize(
    ("size", "overlap"),
    [(0, 0), (-5, 0), (10, 10), (10, 11), (10, -1), (1.5, 0), (10, 2.0), (True, 0)],
)
def test_arguments_are_validated(size: object, overlap: object) -> None:
    with pytest.raises(ValueError, match=r"size|overlap"):
        chunk_text("some text", size=size, overlap=overlap)  # type: ignore[arg-type]


def test_paragraph_preferred_over_line() -> None:
    para1 = "First paragraph line one.\nFirst paragraph line two."
    para2 = "Second paragraph is here."
    text = f"{para1}\n\n{para2}"
    # Both paragraphs don't fit together; the cut is at the blank line, not at the line break.
    assert chunk_text(text, size=60, overlap=0) == [para1, para2]


def test_line_preferred_over_sentence() -> None:
    text = "One. Two. Three.\nFour. Five. Six. Seven."
    assert chunk_text(text, size=25, overlap=0) == ["One. Two. Three.", "Four. Five. Six. Seven."]


def test_sentence_preferred_over_word() -> None:
    text = "The cat sat on the mat. It was warm and happy there."
    assert chunk_text(text, size=40, overlap=0) == ["The cat sat on the mat.", "It was warm and happy there."]


def test_sentence_terminators() -> None:
    text = 'Really? Yes! Wait\u2026 "Done." Next one.'
    assert chunk_text(text, size=12, overlap=0) == ["Really? Yes!", "Wait\u2026", '"Done."', "Next one."]
    # No space after the period: not a sentence end ("3.14", "example.com").
    assert chunk_text("Pi is 3.14 and example.com is a site", size=16, overlap=0)[0] == "Pi is 3.14 and"


def test_cjk_sentences_split_without_spaces() -> None:
    sentences = [
        "\u4eca\u65e5\u306f\u6674\u308c\u3067\u3059\u3002",
        "\u660e\u65e5\u306f\u96e8\u3067\u3059\u3002",
        "\u305d\u3046\u3067\u3059\u304b\uff1f",
    ]
    assert chunk_text("".join(sentences), size=12, overlap=0) == sentences


def test_words_then_hard_split() -> None:
    assert chunk_text("alpha beta gamma delta", size=11, overlap=0) == ["alpha beta", "gamma delta"]
    assert chunk_text("abcdefghijklmnopqrstuvwxyz", size=10, overlap=3) == ["abcdefghij", "klmnopqrst", "uvwxyz"]
    # The rest of a cut word is packed with the following words.
    assert chunk_text("abcdefghijkl mn op", size=10, overlap=0) == ["abcdefghij", "kl mn op"]


def test_hard_split_keeps_combining_marks_with_their_letter() -> None:
    text = "e\u0301" * 10  # 20 code points, no spaces
    chunks = chunk_text(text, size=5, overlap=0)
    assert all(not chunk[0] == "\u0301" for chunk in chunks)
    assert "".join(chunks) == text


def test_overlap_starts_on_a_word_and_repeats_the_end_of_the_previous_chunk() -> None:
    text = "one two three four five six seven eight nine ten eleven twelve"
    chunks = chunk_text(text, size=24, overlap=10)
    assert chunks == [
        "one two three four five",
        "four five six seven",
        "six seven eight nine ten",
        "nine ten eleven twelve",
    ]
    for previous, chunk in itertools.pairwise(chunks):
        first_word = chunk.split()[0]
        assert previous.split()[-1] in chunk.split()
        assert first_word in previous.split()


def test_overlap_is_dropped_rather_than_splitting_a_paragraph_or_exceeding_size() -> None:
    para1 = "alpha beta gamma delta"
    para2 = "x" * 18 + " yy"  # 21 characters: fits alone in 24, not with any overlap
    spans = chunk_spans(f"{para1}\n\n{para2}", size=24, overlap=10)
    assert [s.overlap_length for s in spans] == [0, 0]
    assert chunk_text(f"{para1}\n\n{para2}", size=24, overlap=10) == [para1, para2]


def test_overlap_is_shortened_to_fit() -> None:
    text = "aaa bbb ccc ddd\n\neeeeeeeeeeeeeeeeee"  # second paragraph: 18 characters
    chunks = chunk_text(text, size=24, overlap=10)
    assert chunks == ["aaa bbb ccc ddd", "ddd\n\neeeeeeeeeeeeeeeeee"]


def test_no_overlap_inside_a_cut_word() -> None:
    spans = chunk_spans("x" * 100, size=10, overlap=5)
    assert all(span.overlap_length == 0 for span in spans)


def test_spans_point_into_the_text() -> None:
    text = "  Intro line.\n\nBody text that goes on for a while. And more.  "
    for span, chunk in zip(chunk_spans(text, size=20, overlap=5), chunk_text(text, size=20, overlap=5), strict=True):
        assert text[span.start : span.end] == chunk


def _speed(text: str) -> float:
    started = time.perf_counter()
    spans = chunk_spans(text)
    elapsed = time.perf_counter() - started
    assert spans[-1].end == len(text.rstrip())
    return elapsed


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(("Lorem ipsum dolor sit amet, consectetur. " * 12 + "\n\n") * 4000, id="paragraphs"),
        pytest.param("word " * 400_000, id="one-giant-line"),
        pytest.param("x" * 2_000_000, id="no-whitespace"),
        pytest.param("\u6f22\u5b57\u304b\u306a\u3002" * 400_000, id="cjk"),
    ],
)
def test_linear_time_on_large_inputs(text: str) -> None:
    # ~2 MB each; measured at 10-40 M chars/s, so 2 s leaves a wide margin for slow machines
    # while still catching anything quadratic (which would take minutes here).
    assert _speed(text) < 2.0
