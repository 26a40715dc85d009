"""Lexical (sparse) vectors: the words of a text, for the keyword half of hybrid retrieval.

The dense embedding finds passages that *mean* what a question asks; it weighs a question's rare,
decisive word ("lift", "SHA-256", "VACUUM", "Tromsø") no more than its filler. The lexical vector
gives those words their weight: each chunk is stored with a sparse vector of its terms (BM25's
saturated term frequencies), and the question's vector carries each term's inverse document
frequency over the searching bot's own chunks (`TermStatistics`), so their dot product — what
Qdrant's sparse search computes — is the chunk's BM25 score. Computing the IDF here rather than
with Qdrant's IDF modifier keeps another tenant's documents out of a bot's weights by construction,
and costs the search nothing (the modifier recounts the corpus on every query in local mode).

Terms are the same for chunks and questions (`terms`): Unicode words, lowercased, folded to ASCII
where a letter has an obvious ASCII form (so "Tromso" finds "Tromsø"), common words of English,
German and French dropped, and the rest reduced to their Snowball (Porter 2) English stem, so
"indexes", "indexing" and "indexed" are one term. A term's index in the sparse vector is a stable
31-bit hash of it: no vocabulary to store, the same text always gives the same vector.
"""

from __future__ import annotations

import math
import re
import unicodedata
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

import snowballstemmer

# BM25's term-frequency saturation and length normalisation (the usual values). Chunks are cut to a
# bounded size, so a fixed average length stands in for the corpus' own: ~512 characters hold about
# 45 terms once common words are dropped.
BM25_K1 = 1.2
BM25_B = 0.75
AVERAGE_CHUNK_TERMS = 45.0

_WORD = re.compile(r"[^\W_]+")
# Letters NFKD does not take apart, written the way a keyboard without them would.
_FOLD = str.maketrans(
    {"ø": "o", "æ": "ae", "œ": "oe", "ß": "ss", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "\u0131": "i"}  # dotless i
)

STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are aren't as at be because been before being below
    between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each
    few for from further had hadn't has hasn't have haven't having he her here hers herself him himself his how
    i if in into is isn't it it's its itself just let's me more most mustn't my myself no nor not now of off on
    once only or other ought our ours ourselves out over own same shan't she should shouldn't so some such than
    that the their theirs them themselves then there these they this those through to too under until up very
    was wasn't we were weren't what when where which while who whom why will with won't would wouldn't you your
    yours yourself yourselves also may might must shall via per etc e g ie eg
    der die das den dem des ein eine einer eines einem einen und oder aber nicht ist sind war waren wird werden
    mit von zu zum zur auf für im in an am bei aus nach vor über unter durch als wie auch noch nur so dass es
    sie er wir ihr ich du man sich kann können muss soll wenn dann ob
    le la les un une des du de et ou mais ne pas est sont été être avec pour par sur dans en au aux ce cette ces
    il elle ils elles nous vous je tu on se qui que quoi dont où si plus
    """.split()
)


@lru_cache(maxsize=1)
def _stemmer() -> snowballstemmer.stemmer:
    return snowballstemmer.stemmer("english")


@lru_cache(maxsize=200_000)
def _term(word: str) -> str:
    """One lowercase word as it is indexed: folded, then stemmed ("" for a common word)."""
    folded = unicodedata.normalize("NFKD", word.translate(_FOLD))
    folded = "".join(char for char in folded if not unicodedata.combining(char))
    if word in STOPWORDS or folded in STOPWORDS:
        return ""
    return _stemmer().stemWord(folded)


def terms(text: str) -> list[str]:
    """The text's indexed terms, in order (repeats kept)."""
    found = (_term(word) for word in _WORD.findall(text.lower()))
    return [term for term in found if term]


def term_index(term: str) -> int:
    """A term's dimension in the sparse vector: stable across processes and versions."""
    return zlib.crc32(term.encode("utf-8")) & 0x7FFFFFFF


@dataclass(frozen=True)
class SparseVector:
    indices: list[int]
    values: list[float]

    def __bool__(self) -> bool:
        return bool(self.indices)


def _sparse(weights: dict[int, float]) -> SparseVector:
    ordered = sorted(weights.items())
    return SparseVector(indices=[index for index, _ in ordered], values=[value for _, value in ordered])


def document_vector(text: str) -> SparseVector:
    """A chunk's lexical vector: BM25's saturated, length-normalised term frequency per term (the IDF
    is Qdrant's, at query time)."""
    counts = Counter(terms(text))
    length = sum(counts.values())
    norm = BM25_K1 * (1 - BM25_B + BM25_B * length / AVERAGE_CHUNK_TERMS)
    weights: dict[int, float] = {}
    for term, count in counts.items():
        index = term_index(term)
        weights[index] = weights.get(index, 0.0) + count * (BM25_K1 + 1) / (count + norm)
    return _sparse(weights)


def query_vector(text: str, statistics: TermStatistics | None = None) -> SparseVector:
    """A question's lexical vector: each of its terms once, weighed by its IDF over the searching
    bot's chunks, so that the dot product with a chunk's vector is the chunk's BM25 score. Terms in
    none of the bot's chunks can match nothing and are left out. Without statistics every term
    weighs 1."""
    weights: dict[int, float] = {}
    for term in set(terms(text)):
        if statistics is None:
            weights[term_index(term)] = 1.0
        elif statistics.frequencies.get(term):
            weights[term_index(term)] = statistics.idf(term)
    return _sparse(weights)


def idf(document_frequency: int, documents: int) -> float:
    """BM25's inverse document frequency, as Qdrant's IDF modifier computes it: a word in every
    chunk weighs almost nothing, a word in none of them the most."""
    return math.log((documents - document_frequency + 0.5) / (document_frequency + 0.5) + 1)


@dataclass(frozen=True)
class TermStatistics:
    """How many of a bot's chunks hold each term: the corpus the lexical evidence is weighed on."""

    documents: int
    frequencies: Mapping[str, int]

    @classmethod
    def of(cls, texts: Iterable[str]) -> TermStatistics:
        frequencies: Counter[str] = Counter()
        documents = 0
        for text in texts:
            documents += 1
            frequencies.update(set(terms(text)))
        return cls(documents=documents, frequencies=dict(frequencies))

    def idf(self, term: str) -> float:
        return idf(self.frequencies.get(term, 0), self.documents)


@dataclass(frozen=True)
class LexicalMatch:
    """What a chunk holds of a question's words."""

    coverage: float  # the share of the question's term weight (IDF) found in the chunk, 0..1
    score: float  # BM25 of the chunk for the question (the lexical half's own score)
    # BM25 against the most any chunk could score for this question (every term, saturated): 0..1,
    # comparable across questions and with a cosine, unlike the raw score.
    share: float = 0.0


def match(question_terms: Iterable[str], chunk_text: str, statistics: TermStatistics) -> LexicalMatch:
    wanted = set(question_terms)
    if not wanted:
        return LexicalMatch(coverage=0.0, score=0.0)
    counts = Counter(terms(chunk_text))
    length = sum(counts.values())
    norm = BM25_K1 * (1 - BM25_B + BM25_B * length / AVERAGE_CHUNK_TERMS)
    weights = {term: statistics.idf(term) for term in wanted}
    found = [term for term in wanted if counts[term]]
    score = sum(weights[t] * counts[t] * (BM25_K1 + 1) / (counts[t] + norm) for t in found)
    total = sum(weights.values())
    if not total:
        return LexicalMatch(coverage=0.0, score=score)
    return LexicalMatch(
        coverage=sum(weights[t] for t in found) / total, score=score, share=min(1.0, score / ((BM25_K1 + 1) * total))
    )
