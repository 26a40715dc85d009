"""normalize_text: each rule of the contract, plus idempotence and safety as properties."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sources.normalize import normalize_text

# Characters the rules are about, mixed into generated text so that Hypothesis hits them often.
_SPECIAL = (
    " \t\n\r\v\f\x00\x07\x1b\x1c\x1f\x7f\x85\x9f\u00a0\u00ad\u1680\u2000\u2001\u2005\u200a\u200b\u200c\u200d"
    "\u2028\u2029\u202f\u205f\u2060\u3000\ufeff\u0301\u0308\u0327e\u00e9A\u212b\u2126"
)
texts = st.text(alphabet=st.one_of(st.sampled_from(_SPECIAL), st.characters()), max_size=200)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", ""),
        ("   \n\t \n  ", ""),
        ("plain text", "plain text"),
        # NFC: decomposed e + combining acute becomes the precomposed character.
        ("caf\u0065\u0301", "caf\u00e9"),
        ("A\u030a", "\u00c5"),
        # Line endings.
        ("one\r\ntwo\rthree\nfour", "one\ntwo\nthree\nfour"),
        ("a\u2028b\u2029c\x85d", "a\nb\n\nc\nd"),
        # Odd spaces become spaces and never glue words together.
        ("no\u00a0break", "no break"),
        ("en\u2002space em\u2003space thin\u2009space hair\u200aspace", "en space em space thin space hair space"),
        (
            "narrow\u202fnbsp math\u205fspace ideo\u3000space ogham\u1680mark",
            "narrow nbsp math space ideo space ogham mark",
        ),
        ("tab\tsep\fform\vvtab", "tab sep form vtab"),
        ("unit\x1fsep record\x1esep", "unit sep record sep"),
        # Invisible characters are removed.
        ("zero\u200bwidth", "zerowidth"),
        ("\ufeffbom at start and in\ufeffside", "bom at start and inside"),
        ("soft\u00adhyphen", "softhyphen"),
        ("word\u2060joiner", "wordjoiner"),
        ("nul\x00bell\x07esc\x1bdel\x7fc1\x9f", "nulbellescdelc1"),
        # ZWJ / ZWNJ are meaningful in some scripts and emoji: kept.
        ("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"),
        ("\U0001f469\u200d\U0001f4bb", "\U0001f469\u200d\U0001f4bb"),
        # Space runs, line edges, paragraph breaks.
        ("many     spaces", "many spaces"),
        ("  line one  \n   line two   ", "line one\nline two"),
        ("para one\n\n\n\n\npara two", "para one\n\npara two"),
        ("para one\n \n\t\n \u00a0 \npara two", "para one\n\npara two"),
        ("keep\n\ntwo", "keep\n\ntwo"),
        ("\n\n  surrounded  \n\n", "surrounded"),
        # A lone surrogate (from a lenient decoder) cannot be stored: removed.
        ("bad\udcffsurrogate", "badsurrogate"),
    ],
)
def test_rules(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


def test_removing_an_invisible_character_then_composing() -> None:
    # The soft hyphen separates the base letter from the combining mark; once it is removed the
    # pair must be composed, or a second pass would change the text.
    assert normalize_text("e\u00ad\u0301") == "\u00e9"


@settings(max_examples=400, deadline=None)
@given(texts)
def test_idempotent(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once


@settings(max_examples=300, deadline=None)
@given(texts)
def test_output_shape(text: str) -> None:
    out = normalize_text(text)
    assert out == out.strip()
    assert unicodedata.is_normalized("NFC", out)
    assert "  " not in out
    assert "\n\n\n" not in out
    assert " \n" not in out and "\n " not in out
    for char in out:
        # The only whitespace left is the space and the newline; no control characters at all.
        assert not char.isspace() or char in " \n"
        assert unicodedata.category(char) not in {"Cc", "Cs"} or char == "\n"
    out.encode("utf-8")  # storable anywhere


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="abcdefgh\u00e9\u4e2d", min_size=1, max_size=8), min_size=1, max_size=12), st.data())
def test_words_are_never_glued(words: list[str], data: st.DataObject) -> None:
    separators = st.text(alphabet=" \t\n\r\v\f\u00a0\u2003\u202f\u3000\u2028\u2029\x1f", min_size=1, max_size=4)
    text = words[0]
    for word in words[1:]:
        text += data.draw(separators) + word
    assert normalize_text(text).split() == [unicodedata.normalize("NFC", word) for word in words]
