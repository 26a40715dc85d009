"""The refusal decision: does a retrieved chunk hold enough evidence to answer from?

One raw cosine is not enough evidence either way. A short or mixed chunk ("The reading room opens
at 07:40 on weekdays. Membership costs…") is about several things, so its embedding sits between
them and scores about 0.3 against a question on any one of them, although it holds the answer; an
off-topic question in the same language and register as the documents ("How do I set up
PgBouncer?" asked of a PostgreSQL manual) can score as high. What separates them is whether the
chunk holds the question's *distinctive words*: the lexical coverage (minirag/lexical.py `match`),
the share of the question's term weight found in the chunk, each term weighed by its IDF over the
bot's own chunks — so a word in every chunk ("PostgreSQL" in a PostgreSQL manual, the product's
name in its docs) proves nothing, and a word in none of them ("PgBouncer") counts most against.

A chunk passes when its meaning alone is close enough, or when meaning and words agree:

    dense >= threshold + MEANING_MARGIN
    or (dense >= threshold - WORDS_ALLOWANCE and coverage >= COVERAGE_NEEDED)

where `dense` is the cosine similarity of the chunk to the question (the `score` the API reports)
and `threshold` is the bot's `similarity_threshold`: raising it makes both ways stricter by the
same amount, 0 lets every retrieved chunk through, 1 refuses everything. The turn is refused when
no chunk passes. The constants were calibrated with `python -m evaluation calibrate` on the
evaluation sets (docs/quality.md, "The refusal decision"), at the default threshold of 0.30.
"""

from __future__ import annotations

from dataclasses import dataclass

MEANING_MARGIN = 0.09
WORDS_ALLOWANCE = 0.11
COVERAGE_NEEDED = 0.25


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str


def assess(*, dense: float, coverage: float, threshold: float) -> Verdict:
    """Whether one chunk is evidence for the question, and why (for operators: the retrieval test)."""
    if threshold >= 1.0:
        return Verdict(False, "the bot's similarity threshold is 1: nothing passes")
    if threshold <= 0.0:
        return Verdict(True, "the bot's similarity threshold is 0: every retrieved chunk passes")
    meaning_alone = threshold + MEANING_MARGIN
    if dense >= meaning_alone:
        return Verdict(True, f"its meaning is close to the question's (similarity {dense:.2f} >= {meaning_alone:.2f})")
    words_floor = threshold - WORDS_ALLOWANCE
    if dense >= words_floor and coverage >= COVERAGE_NEEDED:
        return Verdict(
            True,
            f"it holds the question's distinctive words (coverage {coverage:.2f} >= {COVERAGE_NEEDED:.2f}) "
            f"and its meaning is related (similarity {dense:.2f} >= {words_floor:.2f})",
        )
    if dense < words_floor:
        return Verdict(
            False, f"its meaning is too far from the question's (similarity {dense:.2f} < {words_floor:.2f})"
        )
    return Verdict(
        False,
        f"it lacks the question's distinctive words (coverage {coverage:.2f} < {COVERAGE_NEEDED:.2f}) and its "
        f"meaning alone is not close enough (similarity {dense:.2f} < {meaning_alone:.2f})",
    )
