"""The offline completion model ``local/extractive``: a grounded answer made of sentences copied from the context.

Method. The chat orchestrator's prompt carries a numbered context block (:mod:`minirag.prompt_format`) in its system
message; the question is the last ``user`` message. The model

1. parses the context items (system messages first; if none has a block, every message);
2. splits each item into sentences (:func:`split_sentences`: sentence punctuation, list items, headings glued to what
   they head, hard-wrapped lines re-joined, the mid-sentence fragment a chunk's overlap starts with left out);
3. embeds the question, every item and every sentence in **one** call to the offline embedder (all-MiniLM-L6-v2,
   unit vectors, so a dot product is a cosine) and scores each sentence as
   ``relevance = 0.7 · cos(question, sentence) + 0.3 · cos(question, item)`` — the item term gives a sentence the
   context it lost when cut out ("They are refunded within 5 days." inside a chunk about returns);
4. ranks by ``relevance + boost``, the boost being +0.05 for ``MANDATORY`` items (binding rules win ties and near-ties)
   and +0.02 for ``GUIDELINE`` ones; ties fall to the lower item number, then the earlier sentence;
5. answers with the best sentence plus up to two more that are relevant in their own right (relevance ≥ the threshold
   and ranking score within 0.10 of the best), skipping near-duplicates (cosine ≥ 0.90 or the same words), within
   about 600 characters. Sentences are grouped by item (best item first) and keep their original order inside an
   item; each is followed by its citation ``[n]``, so only items actually quoted are cited.

Threshold (``RELEVANCE_THRESHOLD = 0.35``, on the blended relevance above). Measured on a small shop FAQ (the test
fixtures and ~25 hand-written questions): sentences that answer the question score 0.46-0.80, even when paraphrased
("Can I send something back?" → the 30-day return sentence, 0.46); questions on other topics score 0.05-0.26 (capital
of France, CEO, password reset, gift cards); in between sit same-domain questions the documents do not answer ("What
payment methods do you accept?" → "Refunds are issued to the original payment method…", 0.32; "How do I track my
order?" → "Orders over $50 ship free.", 0.33). 0.35 puts those on the honest side while keeping a margin of 0.1 below
the weakest real answer. Below it the model does not pretend: "The documents I have don't answer that directly; the
closest is: … [n]". With no context at all it says it has no documents (:data:`NO_CONTEXT_ANSWER`) — grounded or
silent, it never invents text.

Limits, by design: it copies, it does not reason, paraphrase, translate, compute or combine facts across sentences;
it answers the last user message only (a follow-up like "and on Sundays?" is scored on its own words); its sense of
relevance is MiniLM's (lexical-semantic similarity, English-centred, blind to negation); instructions in the system
prompt other than the context are ignored. Scoring covers at most :data:`MAX_CANDIDATES` sentences, the first in
context order (the orchestrator puts the binding and the best chunks first), which bounds the cost of a huge prompt
(~2 s on two cores); the usual 5 chunks give ~20-40 sentences, ~0.1-0.25 s per answer on two cores once warm.

Tokens. Usage counts word pieces of the embedder's own tokenizer (the model has no other vocabulary): prompt tokens are
those of all message contents joined by newlines, completion tokens those of the answer, special tokens excluded. The
embedder truncates each text at 256 pieces, so long text is counted in pieces of at most 250 characters cut at
whitespace — exact for ordinary text because BERT's tokenizer splits on whitespace anyway (a word piece never spans
whitespace), approximate only inside runs of 250+ characters without any.

This module does not import LiteLLM (the provider in :mod:`minirag.local_models.provider` adapts it), so it can be
tested on its own; the embedder loads (~0.4 s) with the first answer.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from minirag.prompt_format import CONTEXT_CLOSE, CONTEXT_OPEN, ContextItem, parse_context

__all__ = [
    "CLOSEST_PREFIX",
    "LOCAL_COMPLETION_MODEL",
    "MAX_CANDIDATES",
    "NO_CONTEXT_ANSWER",
    "NO_QUESTION_ANSWER",
    "RELEVANCE_THRESHOLD",
    "AnswerKind",
    "ExtractiveAnswer",
    "ExtractiveConfig",
    "ExtractiveModel",
    "count_text_tokens",
    "find_context",
    "find_question",
    "get_extractive_model",
    "message_text",
    "split_sentences",
    "stream_pieces",
]

#: The LiteLLM model string of this model (provider ``local``, model ``extractive``).
LOCAL_COMPLETION_MODEL = "local/extractive"

#: Answer when the prompt carries no context item with any text.
NO_CONTEXT_ANSWER = "I can only answer from the documents I have been given, and none were provided."
#: Answer when there is context but no (non-empty) user message to answer.
NO_QUESTION_ANSWER = "Please ask a question, and I will answer from the documents I have been given."
#: Opening of the answer when even the best sentence is below the relevance threshold.
CLOSEST_PREFIX = "The documents I have don't answer that directly; the closest is: "

#: Minimum relevance (see the module docstring) for a sentence to count as answering the question.
RELEVANCE_THRESHOLD = 0.35
#: Sentences scored per answer at most (the first ones in context order); bounds the cost of a huge prompt.
MAX_CANDIDATES = 200

AnswerKind = Literal["answer", "closest", "no_context", "no_question"]


class Embedder(Protocol):
    """What the model needs from an embedder (:class:`~minirag.local_models.embedder.MiniLMEmbedder` fits)."""

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...


@dataclass(frozen=True)
class ExtractiveConfig:
    """Tuning knobs; the defaults are the documented behaviour of ``local/extractive``."""

    relevance_threshold: float = RELEVANCE_THRESHOLD
    #: Weight of the sentence's own cosine in its relevance; the rest goes to its item's cosine.
    sentence_weight: float = 0.7
    #: Ranking bonus per authority label: binding rules first, guidelines a little ahead of plain text.
    label_boosts: Mapping[str, float] = field(default_factory=lambda: {"MANDATORY": 0.05, "GUIDELINE": 0.02})
    max_sentences: int = 3
    max_chars: int = 600
    #: A further sentence must rank within this much of the best one (keeps answers focused).
    follow_margin: float = 0.10
    #: Sentences at least this similar to one already chosen are dropped as near-duplicates.
    duplicate_similarity: float = 0.90
    #: Sentences with fewer word tokens are not answers (headings, "Yes.", stray labels) unless nothing else exists.
    min_words: int = 3
    max_candidates: int = MAX_CANDIDATES


@dataclass(frozen=True)
class ExtractiveAnswer:
    """One answer. ``citations`` are the item numbers cited in ``text``, in order of first appearance;
    ``best_relevance`` is the top sentence's relevance (``None`` without candidates); ``finish_reason`` is
    ``"length"`` when ``max_tokens`` cut the text, else ``"stop"``."""

    text: str
    kind: AnswerKind
    citations: tuple[int, ...]
    best_relevance: float | None
    prompt_tokens: int
    completion_tokens: int
    finish_reason: Literal["stop", "length"] = "stop"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


# --- messages ---------------------------------------------------------------------------------------------------------

_SYSTEM_ROLES = frozenset({"system", "developer"})


def _field(message: Any, name: str) -> Any:
    # LiteLLM passes the caller's dicts through, but pydantic Message objects are accepted too.
    if isinstance(message, Mapping):
        return message.get(name)
    return getattr(message, name, None)


def message_text(message: Any) -> str:
    """The text of one chat message: its string content, or its ``text`` parts joined by newlines (images and other
    parts are ignored); ``""`` for no content."""
    content = _field(message, "content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping):  # a single part given bare
        content = [content]
    if isinstance(content, Iterable):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif _field(part, "type") in (None, "text") and isinstance(text := _field(part, "text"), str):
                parts.append(text)
        return "\n".join(parts)
    return str(content)


def find_context(messages: Sequence[Any]) -> list[ContextItem]:
    """Context items of the prompt: the blocks in system (or developer) messages; when those hold none, the blocks in
    any message. Exact repeats (same number and text) are kept once; items without text are dropped."""
    system = [message_text(m) for m in messages if _field(m, "role") in _SYSTEM_ROLES]
    items = [item for text in system for item in parse_context(text)]
    if not items:
        items = [item for m in messages for item in parse_context(message_text(m))]
    seen: set[tuple[int, str]] = set()
    unique: list[ContextItem] = []
    for item in items:
        key = (item.number, item.text)
        if item.text.strip() and key not in seen:
            seen.add(key)
            unique.append(item)
    return unique


_CONTEXT_BLOCK = re.compile(f"{re.escape(CONTEXT_OPEN)}.*?{re.escape(CONTEXT_CLOSE)}", re.DOTALL)


def find_question(messages: Sequence[Any]) -> str:
    """The last ``user`` message's text, stripped, without any context block it carries (``""`` if none)."""
    for message in reversed(messages):
        if _field(message, "role") == "user":
            return " ".join(_CONTEXT_BLOCK.sub(" ", message_text(message)).split())
    return ""


# --- sentences --------------------------------------------------------------------------------------------------------

# Quotes and brackets that may close a sentence after its terminator ('He said "Stop." Then ...'), as in chunking.py.
_CLOSERS = "\"')\\]\u00bb\u201d\u2019\u300d\u300f\u3011\u3015\uff09"
_CJK_TERMINATORS = "\u3002\uff01\uff1f"
# A candidate sentence end: terminator(s), closers, then whitespace; CJK terminators need no space after them.
_SENTENCE_GAP = re.compile(rf"[.!?…]+[{_CLOSERS}]*\s+|[{_CJK_TERMINATORS}]+[{_CLOSERS}]*\s*")
_ENDS_SENTENCE = re.compile(rf"(?:[.!?…]+|[{_CJK_TERMINATORS}]+)[{_CLOSERS}]*$")
# A period after these does not end a sentence ("e.g. Berlin", "Dr. Smith"); compared lower-cased, without the dot.
_ABBREVIATIONS = frozenset(
    {"e.g", "i.e", "eg", "ie", "cf", "vs", "mr", "mrs", "ms", "dr", "prof", "st", "approx", "incl", "fig", "no", "nr"}
)
_INITIALS = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]|[A-Za-z]")  # "U.S" (before the final dot), "J"
# List markers: ASCII ones, bullet, middle dot, triangular bullet, small squares/circles, en and em dash; "1." "2)".
_BULLET_MARKS = "-*+\u2022\u00b7\u2023\u25aa\u25e6\u2013\u2014"
_BULLET = re.compile(rf"^(?:[{re.escape(_BULLET_MARKS)}]|\d{{1,3}}[.)])\s+")
_HEADING = re.compile(r"^#{1,6}\s+")
_WORD = re.compile(r"\w+")
_FRAGMENT_STARTS = "([{,;:)]}\u2013\u2014-"
_HEADING_MAX_WORDS = 8
_LIST_MAX_CHARS = 400


@dataclass
class _Unit:
    text: str
    kind: Literal["text", "bullet", "heading"]


_FENCE = re.compile(r"^(```|~~~)")
_TABLE_ROW = re.compile(r"^\|.*\|$")
_MARKUP = [
    (re.compile(r"!?\[([^\]]+)\]\([^)]*\)"), r"\1"),  # [text](url) and images → text
    (re.compile(r"(\*\*|__)(.+?)\1"), r"\2"),  # **bold**, __bold__
    (re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])"), r"\1"),  # *emphasis*
    (re.compile(r"`([^`]+)`"), r"\1"),  # `code`
]


def plain_text(line: str) -> str:
    """A line of Markdown as the words a reader sees: links, emphasis and code marks removed."""
    for pattern, replacement in _MARKUP:
        line = pattern.sub(replacement, line)
    return line


def _lines_to_units(text: str) -> list[_Unit]:
    """Logical units of a text: paragraphs' lines re-joined where a line merely wraps (it continues in lower case after
    a line without a sentence end), list items and markdown headings on their own. Markdown code blocks and table rows
    are left out (an extractive answer quotes prose; a hosted model still sees them in the context), and inline markup
    is removed from what is kept."""
    units: list[_Unit] = []
    current: _Unit | None = None
    in_code = False
    for raw in text.splitlines():
        line = raw.strip()
        if _FENCE.match(line):
            in_code = not in_code
            current = None
            continue
        if in_code or _TABLE_ROW.match(line):
            current = None
            continue
        line = plain_text(line)
        if not line:
            current = None
            continue
        if bullet := _BULLET.match(line):
            current = _Unit(line[bullet.end() :].strip(), "bullet")
            units.append(current)
        elif heading := _HEADING.match(line):
            units.append(_Unit(line[heading.end() :].strip(), "heading"))
            current = None
        elif current is not None and line[0].islower() and not _ENDS_SENTENCE.search(current.text):
            # A hard-wrapped line (PDF text layers): the sentence goes on.
            current.text = f"{current.text} {line}"
        else:
            current = _Unit(line, "text")
            units.append(current)
    return [unit for unit in units if unit.text]


def _split_unit(text: str) -> list[str]:
    """Sentences of one line of prose, on terminators followed by whitespace and a non-lower-case character, except
    after abbreviations and initials."""
    sentences: list[str] = []
    start = 0
    for gap in _SENTENCE_GAP.finditer(text):
        end = gap.end()
        if end >= len(text):
            break
        if gap.group()[0] not in _CJK_TERMINATORS:
            if text[end].islower():
                continue
            before = text[start : gap.start()].rsplit(maxsplit=1)
            word = before[-1] if before else ""
            if word.lower() in _ABBREVIATIONS or _INITIALS.fullmatch(word):
                continue
        sentences.append(text[start:end].strip())
        start = end
    if tail := text[start:].strip():
        sentences.append(tail)
    return sentences


def _is_lead(unit: _Unit) -> bool:
    """A heading, a line introducing a list ("Opening hours:"), or a short line with no sentence end."""
    return unit.kind == "heading" or unit.text.endswith(":") or _is_list_line(unit)


def _is_list_line(unit: _Unit) -> bool:
    return unit.kind == "text" and not _ENDS_SENTENCE.search(unit.text) and len(unit.text.split()) <= _HEADING_MAX_WORDS


def _join_lead(lead: str, rest: str) -> str:
    return f"{lead} {rest}" if lead.endswith(":") else f"{lead}: {rest}"


def split_sentences(text: str) -> list[str]:
    """Split one context item into answer-sized sentences, in order.

    Prose splits at sentence ends (``. ! ? …`` plus closing quotes, followed by whitespace and a character that is not
    lower case; CJK full stops need no space), not after common abbreviations or initials. Wrapped lines are re-joined.
    A line ending with ``:``, a heading or a short unpunctuated line, followed by short list items (bullets, or short
    lines without a sentence end) becomes one sentence ("We ship to: France; Spain; Italy.", "Opening hours: Mon-Fri
    9-17; Sat 10-14."); longer lists stay separate sentences. A heading or a short unpunctuated line is glued to the
    line after it when that line is no full sentence on its own ("Opening hours: Mon-Fri 9-17"). Every returned
    sentence is stripped and non-empty; nothing is reworded, the only additions are those joins (``": "``, ``"; "``).
    """
    return [display for display, _ in _sentences(text)]


def _sentences(text: str) -> list[tuple[str, str]]:
    """(sentence as shown, sentence as scored) pairs of :func:`split_sentences`: a heading glued in front of a full
    sentence is left out of what is shown ("Refunds: You can return …" reads oddly) but kept in what is scored,
    because it says what the sentence is about."""
    units = _lines_to_units(text)
    sentences: list[tuple[str, str]] = []
    i = 0
    while i < len(units):
        unit = units[i]
        following = units[i + 1] if i + 1 < len(units) else None
        if unit.kind != "bullet" and following is not None and _is_lead(unit):
            j = i + 1
            # The list: bullets, or short lines without a sentence end ("Mon-Fri 9-17" under "Opening hours").
            while j < len(units) and (units[j].kind == "bullet" or _is_list_line(units[j])):
                j += 1
            items = [u.text.rstrip(".;,") for u in units[i + 1 : j]]
            if items and sum(len(item) + 2 for item in items) <= _LIST_MAX_CHARS:
                joined = _join_lead(unit.text, "; ".join(items)) + "."
                sentences.append((joined, joined))
                i = j
                continue
            if not items and following.kind != "heading":
                first, *rest = _split_unit(following.text)
                headed = _join_lead(unit.text, first)
                sentences.append((first if _ENDS_SENTENCE.search(first) else headed, headed))
                sentences.extend((s, s) for s in rest)
                i += 2
                continue
        sentences.extend((s, s) for s in _split_unit(unit.text))
        i += 1
    return [(shown, scored) for shown, scored in sentences if shown]


def _finished(sentence: str) -> str:
    """The sentence with a full stop if it has no sentence end (list items, headed lines)."""
    if _ENDS_SENTENCE.search(sentence):
        return sentence
    return sentence.rstrip(",;: ") + "."


def _truncate_chars(text: str, limit: int) -> str:
    """``text`` cut at the last word boundary within ``limit`` characters, with an ellipsis, if it is longer."""
    if len(text) <= limit:
        return text
    cut = text[: max(1, limit - 1)]
    if " " in cut:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:") + "…"


# --- streaming and tokens ---------------------------------------------------------------------------------------------

_STREAM_PIECE = re.compile(r"\S+\s*")


def stream_pieces(text: str) -> list[str]:
    """``text`` as stream deltas: each word with the whitespace that follows it. They concatenate to ``text`` (which
    the model never starts with whitespace)."""
    pieces = _STREAM_PIECE.findall(text)
    if pieces and (lead := text[: len(text) - len("".join(pieces))]):
        pieces[0] = lead + pieces[0]
    return pieces


_TOKEN_PIECE_CHARS = 250  # < 256 word pieces per piece whatever the text: a word piece covers at least one character


def _token_pieces(text: str) -> list[str]:
    """``text`` re-cut into pieces of at most 250 characters at whitespace (words longer than that are sliced)."""
    pieces: list[str] = []
    current = ""
    for word in text.split():
        while len(word) > _TOKEN_PIECE_CHARS:
            if current:
                pieces.append(current)
                current = ""
            pieces.append(word[:_TOKEN_PIECE_CHARS])
            word = word[_TOKEN_PIECE_CHARS:]
        if current and len(current) + 1 + len(word) > _TOKEN_PIECE_CHARS:
            pieces.append(current)
            current = ""
        current = f"{current} {word}" if current else word
    if current:
        pieces.append(current)
    return pieces


def count_text_tokens(embedder: Embedder, text: str) -> int:
    """Word pieces in ``text`` without the [CLS]/[SEP] the embedder adds to each text, uncapped (see module docs)."""
    pieces = _token_pieces(text)
    return sum(count - 2 for count in embedder.count_tokens(pieces)) if pieces else 0


# --- the model --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    item_index: int  # position of the item in the context (not its number, which need not be unique)
    position: int  # order of the sentence in its item
    number: int
    text: str
    vector_row: int
    relevance: float
    score: float  # relevance + authority boost: the ranking key


def _normalised_words(text: str) -> tuple[str, ...]:
    return tuple(word.lower() for word in _WORD.findall(text))


class ExtractiveModel:
    """The ``local/extractive`` model: :meth:`answer` turns chat messages into a grounded, cited answer.

    Stateless apart from the embedder (resolved through ``embedder_factory`` on each answer, so a forked worker gets
    its own), hence safe to share between threads. Deterministic: the same messages and options give the same answer.
    """

    def __init__(
        self, embedder_factory: Callable[[], Embedder] | None = None, config: ExtractiveConfig | None = None
    ) -> None:
        """``embedder_factory`` defaults to :func:`~minirag.local_models.embedder.get_local_embedder`."""
        self._embedder_factory = embedder_factory
        self.config = config or ExtractiveConfig()

    def _embedder(self) -> Embedder:
        if self._embedder_factory is None:
            from minirag.local_models.embedder import get_local_embedder

            return get_local_embedder()
        return self._embedder_factory()

    def answer(self, messages: Sequence[Any], *, max_tokens: int | None = None) -> ExtractiveAnswer:
        """Answer the last user message from the context in ``messages`` (OpenAI-style chat messages).

        ``max_tokens`` (if a positive int) cuts the answer at a word boundary so that it has at most that many tokens
        (always keeping its first word), with ``finish_reason="length"``. Never raises for odd input: missing context
        or question give the fixed sentences :data:`NO_CONTEXT_ANSWER` / :data:`NO_QUESTION_ANSWER`.
        """
        embedder = self._embedder()
        items = find_context(messages)
        question = find_question(messages)
        cited: tuple[int, ...] = ()
        if not items:
            text, kind, best = NO_CONTEXT_ANSWER, "no_context", None
        elif not question:
            text, kind, best = NO_QUESTION_ANSWER, "no_question", None
        else:
            text, kind, best, cited = self._compose(embedder, items, question)
        text, completion_tokens, finished = _limit_tokens(embedder, text, max_tokens)
        if not finished:  # a citation cut off by max_tokens is no longer cited
            cited = tuple(number for number in cited if f"[{number}]" in text)
        prompt_tokens = count_text_tokens(embedder, "\n".join(message_text(m) for m in messages))
        return ExtractiveAnswer(
            text=text,
            kind=kind,
            citations=cited,
            best_relevance=best,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            finish_reason="stop" if finished else "length",
        )

    def _compose(
        self, embedder: Embedder, items: list[ContextItem], question: str
    ) -> tuple[str, AnswerKind, float | None, tuple[int, ...]]:
        config = self.config
        sentences: list[tuple[int, int, str, str]] = []  # (item index, position, shown text, scored text)
        fallback: list[tuple[int, int, str, str]] = []  # too short or a leading fragment: used only if nothing else
        for item_index, item in enumerate(items):
            item_sentences = _sentences(item.text)
            last = len(item_sentences) - 1
            for position, (shown, scored) in enumerate(item_sentences):
                short = len(_WORD.findall(scored)) < config.min_words
                # A chunk after the first starts with up to 64 characters of overlap cut at a word, so a first sentence
                # starting in lower case (or with punctuation) is the tail of a sentence that began in the previous
                # chunk; and a chunk cut at its size limit ends with the head of a sentence that goes on in the next.
                leading = position == 0 and (shown[0].islower() or shown[0] in _FRAGMENT_STARTS)
                trailing = position == last > 0 and not _ENDS_SENTENCE.search(shown)
                fragment = leading or trailing
                (fallback if short or fragment else sentences).append((item_index, position, shown, scored))
        candidates = (sentences or fallback)[: config.max_candidates]
        if not candidates:
            return NO_CONTEXT_ANSWER, "no_context", None, ()

        # Only items with a candidate are embedded (the candidate cap also bounds this).
        used = list(dict.fromkeys(item_index for item_index, *_ in candidates))
        item_texts = [f"{items[i].title}\n{items[i].text}" if items[i].title else items[i].text for i in used]
        vectors = np.asarray(embedder.embed([question, *item_texts, *(scored for *_, scored in candidates)]))
        question_vector = vectors[0]
        item_cos = dict(zip(used, (vectors[1 : 1 + len(used)] @ question_vector).tolist(), strict=True))
        first_row = 1 + len(used)
        sentence_cos = vectors[first_row:] @ question_vector

        scored: list[_Candidate] = []
        for offset, (item_index, position, text, _) in enumerate(candidates):
            relevance = (
                config.sentence_weight * float(sentence_cos[offset])
                + (1 - config.sentence_weight) * item_cos[item_index]
            )
            # Rounding makes ties exact, so they are broken by the documented order, not by float noise.
            relevance = round(relevance, 6)
            boost = config.label_boosts.get(items[item_index].label or "", 0.0)
            scored.append(
                _Candidate(
                    item_index=item_index,
                    position=position,
                    number=items[item_index].number,
                    text=text,
                    vector_row=first_row + offset,
                    relevance=relevance,
                    score=round(relevance + boost, 6),
                )
            )
        ranked = sorted(scored, key=lambda c: (-c.score, c.number, c.item_index, c.position))
        best = ranked[0]

        if best.relevance < config.relevance_threshold:
            citation = f" [{best.number}]"
            budget = config.max_chars - len(CLOSEST_PREFIX) - len(citation)
            text = CLOSEST_PREFIX + _truncate_chars(_finished(best.text), budget) + citation
            return text, "closest", best.relevance, (best.number,)

        chosen = [best]
        length = len(_finished(best.text)) + len(f" [{best.number}]")
        if length > config.max_chars:  # one very long sentence: shortened, alone
            citation = f" [{best.number}]"
            text = _truncate_chars(best.text, config.max_chars - len(citation)) + citation
            return text, "answer", best.relevance, (best.number,)
        for candidate in ranked[1:]:
            if len(chosen) >= config.max_sentences or candidate.score < best.score - config.follow_margin:
                break
            if candidate.relevance < config.relevance_threshold:
                continue
            extra = 1 + len(_finished(candidate.text)) + len(f" [{candidate.number}]")
            if length + extra > config.max_chars or self._duplicates(vectors, candidate, chosen):
                continue
            chosen.append(candidate)
            length += extra

        # Items in the order of their best sentence; inside an item, the document's order.
        item_rank = {}
        for candidate in chosen:
            item_rank.setdefault(candidate.item_index, len(item_rank))
        chosen.sort(key=lambda c: (item_rank[c.item_index], c.position))
        text = " ".join(f"{_finished(c.text)} [{c.number}]" for c in chosen)
        return text, "answer", best.relevance, tuple(dict.fromkeys(c.number for c in chosen))

    def _duplicates(self, vectors: np.ndarray, candidate: _Candidate, chosen: list[_Candidate]) -> bool:
        words = _normalised_words(candidate.text)
        for other in chosen:
            other_words = _normalised_words(other.text)
            if words == other_words or float(vectors[candidate.vector_row] @ vectors[other.vector_row]) >= (
                self.config.duplicate_similarity
            ):
                return True
            # One sentence contained in the other (the overlap between chunks repeats text verbatim).
            shorter, longer = sorted((" ".join(words), " ".join(other_words)), key=len)
            if shorter and f" {shorter} " in f" {longer} ":
                return True
        return False


def _limit_tokens(embedder: Embedder, text: str, max_tokens: int | None) -> tuple[str, int, bool]:
    """(text, its token count, whether it is whole): ``text`` cut after the last word that keeps the count within
    ``max_tokens``, at least one word. Per-word counts add up because the tokenizer splits at whitespace anyway."""
    words = stream_pieces(text)
    counts = [count - 2 for count in embedder.count_tokens([word.strip() for word in words])] if words else []
    total = sum(counts)
    if max_tokens is None or max_tokens <= 0 or total <= max_tokens:
        return text, total, True
    kept, used = 1, counts[0]
    while kept < len(words) and used + counts[kept] <= max_tokens:
        used += counts[kept]
        kept += 1
    return "".join(words[:kept]).rstrip(), used, False


_instance: ExtractiveModel | None = None
_instance_lock = threading.Lock()


def get_extractive_model() -> ExtractiveModel:
    """The process-wide :class:`ExtractiveModel` (its embedder is the process-wide offline embedder)."""
    global _instance
    with _instance_lock:
        if _instance is None:
            _instance = ExtractiveModel()
        return _instance
