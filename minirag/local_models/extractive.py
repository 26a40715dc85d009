"""The offline completion model ``local/extractive``: a grounded answer made of sentences copied from the context.

Method. The chat orchestrator's prompt carries a numbered context block (:mod:`minirag.prompt_format`) in its system
message; the question is the last ``user`` message. The model

1. parses the context items (system messages first; if none has a block, every message);
2. stitches consecutive chunks back together: an item whose text starts with the end of another item of the same source
   (the chunker's overlap) continues it, so a sentence or a procedure cut by a chunk boundary is whole again
   (:func:`_stitch`); a sentence spanning two items cites both, ``[4][5]``;
3. reads each text as Markdown or plain text (:func:`_lines_to_units`): hard-wrapped lines are re-joined (also across
   the blank lines text sources double every line break with), list items, numbered steps, headings and table rows
   stand alone, and code is recognised — fenced blocks (including one a chunk starts inside), shell, SQL, Python and
   markup lines, JSON and other data, lines that are mostly identifiers and symbols;
4. splits that into sentences and sorts them (:func:`_sentences`): *prose*; *code*; *structure* — headings and
   title-like lines, table rows, link lists, pointers ("See Key rotation for the whole procedure."), bare paths and
   routes; *broken* — an inline code span cut in two. A prose sentence may answer when it starts like a sentence (not
   the lower-case or punctuation tail a chunk's overlap starts with), ends like one (not the head a chunk's size limit
   cut off), has three words or more, is not a short line announcing a list (ending with ":"), and does not merely
   restate the question (:func:`_restates`: a question itself, or for a wh-question nothing but its words). Code is
   quoted only when the question asks for code (an example, the command, how to run or write something:
   ``_ASKS_CODE``); structure never (at most as the "closest" below when the context holds nothing else);
5. embeds the question, every item and every candidate in **one** call to the offline embedder (all-MiniLM-L6-v2, unit
   vectors, so a dot product is a cosine) and scores each candidate as
   ``relevance = 0.7 · cos(question, sentence) + 0.3 · cos(question, item)`` (the best of its items) — the item term
   gives a sentence the context it lost when cut out ("They are refunded within 5 days." inside a chunk about returns);
6. ranks the candidates with a relevance at or above the threshold first, by ``relevance + boost + 0.15 · overlap``:
   the boost is +0.05 for ``MANDATORY`` items (binding rules win ties and near-ties) and +0.02 for ``GUIDELINE`` ones,
   +0.1 for the step of a procedure when the question asks how, -0.05 for code; the overlap is the share of the
   question's words (crudely stemmed, stop words left out) found in the sentence, each weighted by its rarity among
   the candidates, so the sentence naming the rare thing asked about ("robots.txt") gets ahead. Ties fall to the lower
   item number, then the earlier sentence;
7. answers. When the best sentence is a step of a numbered list (or, for a how-question, of a bulleted list under a
   lead line ending with ":"), the answer is that whole procedure in order, one step per line with its citation, after
   the line introducing it, within 900 characters (:meth:`ExtractiveModel._procedure`). Otherwise it is the best
   sentence plus up to two more that are relevant in their own right (relevance ≥ the threshold) and either rank
   within 0.10 of the best or directly precede or follow a chosen sentence (the rest of its passage: "Hence, such
   indexes can only handle simple equality comparisons.") with a relevance within 0.2 of the best, those preferred;
   near-duplicates (cosine ≥ 0.90 or the same words) are skipped, all within about 600 characters; a how-question
   whose chosen sentences include a step gets the best sentence and then that procedure. Sentences are grouped by
   segment (best first) and keep their order inside it; each is followed by its citation ``[n]``, so only items
   actually quoted are cited.

Threshold (``RELEVANCE_THRESHOLD = 0.35``, on the blended relevance above). Measured on a small shop FAQ (the test
fixtures and ~25 hand-written questions): sentences that answer the question score 0.46-0.80, even when paraphrased
("Can I send something back?" → the 30-day return sentence, 0.46); questions on other topics score 0.05-0.26 (capital
of France, CEO, password reset, gift cards); in between sit same-domain questions the documents do not answer ("What
payment methods do you accept?" → "Refunds are issued to the original payment method…", 0.32; "How do I track my
order?" → "Orders over $50 ship free.", 0.33). 0.35 puts those on the honest side while keeping a margin of 0.1 below
the weakest real answer. Below it the model does not pretend: "The documents I have don't answer that directly; the
closest is: … [n]", the closest sentence chosen by relevance alone (shared words say little about a question the
documents do not cover), as it is when the context holds nothing but code (not asked for) and structure. With no
context at all it says it has no documents (:data:`NO_CONTEXT_ANSWER`) — grounded or silent, it never invents text.

Limits, by design: it copies, it does not reason, paraphrase, translate, compute or combine facts across sentences;
it answers the last user message only (a follow-up like "and on Sundays?" is scored on its own words); its sense of
relevance is MiniLM's (lexical-semantic similarity, English-centred, blind to negation) plus plain word overlap;
telling code from prose and a question asking for code are heuristics (patterns, the share of plain words), tuned on
Markdown and HTML documentation; instructions in the system prompt other than the context are ignored. Scoring covers
at most :data:`MAX_CANDIDATES` sentences, the first in context order (the orchestrator puts the binding and the best
chunks first), which bounds the cost of a huge prompt (~2 s on two cores); the usual 5 chunks give ~20-40 sentences,
~0.1-0.2 s per answer on two cores once warm (median 0.12 s, p95 0.2 s over the evaluation's prompts on a quiet
machine), no slower than before code and structure were set apart: they are no longer embedded, which pays for the
stitching, parsing and word overlap.

Tokens. Usage counts word pieces of the embedder's own tokenizer (the model has no other vocabulary): prompt tokens are
those of all message contents joined by newlines, completion tokens those of the answer, special tokens excluded. The
embedder truncates each text at 256 pieces, so long text is counted in pieces of at most 250 characters cut at
whitespace — exact for ordinary text because BERT's tokenizer splits on whitespace anyway (a word piece never spans
whitespace), approximate only inside runs of 250+ characters without any.

This module does not import LiteLLM (the provider in :mod:`minirag.local_models.provider` adapts it), so it can be
tested on its own; the embedder loads (~0.4 s) with the first answer.
"""

from __future__ import annotations

import math
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
    #: A numbered procedure is answered whole, one step per line, within this many characters.
    max_procedure_chars: int = 900
    #: A further sentence must rank within this much of the best one (keeps answers focused).
    follow_margin: float = 0.10
    #: Ranking weight of the question's (rarity-weighted) words found in a sentence; added to the ranking score only,
    #: not to the relevance that the threshold reads.
    word_weight: float = 0.15
    #: A sentence right before or after a chosen one (the rest of its passage) may join within this much relevance of
    #: the best, wider than the follow margin: gold answers are mostly two consecutive sentences.
    neighbour_margin: float = 0.2
    #: ... and is preferred to other sentences by this much.
    neighbour_bonus: float = 0.1
    #: Ranking bonus of a step of a procedure (a numbered list, or bullets under "To do X:") when the question asks how.
    procedure_bonus: float = 0.1
    #: Ranking malus of a code line (quoted only when the question asks for code): prose explaining it comes first.
    code_penalty: float = 0.05
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

# Quotes and brackets that may close a sentence after its terminator ('He said "Stop." Then ...'), as in chunking.py,
# plus Markdown's emphasis and code marks ("**Beat.** Exactly one": sentences are cut in the text as written).
_CLOSERS = "\"')\\]\u00bb\u201d\u2019\u300d\u300f\u3011\u3015\uff09*_`"
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
_BULLET = re.compile(rf"^(?:[{re.escape(_BULLET_MARKS)}]|(?P<number>\d{{1,3}})[.)])\s+")
_HEADING = re.compile(r"^#{1,6}\s+")
_WORD = re.compile(r"\w+")
_HEADING_MAX_WORDS = 8
_LIST_MAX_CHARS = 400
#: A list is folded into its lead ("We ship to: France; Spain.") only when every item is this short.
_LIST_ITEM_MAX_WORDS = 10
# What a line may start with when it goes on with the sentence of the line before (a hard wrap).
_CONTINUATION_STARTS = "`([{,;:)]}\u2013\u2014"
# Code a sentence may start with: a snake_case or dotted name, a call, camelCase ("pg_dump", "send()", "iPhone").
_IDENTIFIER = re.compile(r"[^\W\d][\w.]*(?:_\w|\(\)|\.\w|[a-z][A-Z])")

_FENCE = re.compile(r"^(```|~~~)")
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


# --- what is not prose: code, commands, markup, tables, link lists, paths --------------------------------------------

# Code as typed: a shell or REPL prompt, a relative executable, Python, JavaScript, markup, an SQL statement, or an
# assignment ("blog.pk = None"); prose never starts like that.
_CODE_START = re.compile(
    r"^(?:[$%]\s|>>>|#!|\.{1,2}/\S|~/|\.venv/|(?:import|from)\s+[\w.]+(?:\s+import\b|$)|(?:async\s+)?def\s+\w+\s*\(|"
    r"class\s+\w+\s*[(:]|(?:const|let|var)\s+\w+\s*=|function\s*\w*\s*\(|</?[a-zA-Z][\w-]*[\s>/]|"
    r"[\w.\[\]'\"]+\s*[-+*/|&]?=(?!=)\s*\S|"
    r"(?:SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|DROP|GRANT|REVOKE|EXPLAIN|WITH)\b.*[;(]$)"
)
# A command people type, by its program. Program names also open sentences about them ("pg_dump dumps only a single
# database"; "make sure ..."), so the line counts as a command only with options, shell signs, or hardly any words.
_PROGRAM = re.compile(
    r"^(?:sudo\s+)?(?:curl|wget|pip3?|pipx|docker(?:-compose)?|kubectl|helm|git|npm|npx|yarn|pnpm|uv|poetry|"
    r"python[23]?(?:\.\d+)?|node|psql|pg_\w+|createdb|dropdb|initdb|apt(?:-get)?|dnf|yum|brew|ls|chmod|chown|mkdir|"
    r"systemctl|journalctl|uvicorn|gunicorn|celery|django-admin|openssl|redis-cli|ssh|scp|rsync|tar|sed|awk|grep|make|"
    r"cd|cat|echo|export|cp|mv|rm|manage\.py|[\w-]+\.(?:py|sh))\b"
)
_COMMAND_SIGNS = re.compile(r"\s-{1,2}\w|[/$=|<>&;\\]|^\S+\s+\S+$|^\S+$")
_CODE_SPAN = re.compile(r"`[^`]*`")
# JSON or other data written out: a quoted key, a brace next to a quote, a line that opens or closes a block, a call
# with keyword arguments.
_DATA = re.compile(
    r"\"[^\"\s]*\"\s*:\s|[{\[]\s*[\"']|[\"']\s*[}\]]|^[\s}\])]+[,;]?$|\{$|=>|:=|\)\s*\{|\w\([^()\s]*\w=[^()]*\)"
)
_ROUTE_BRACES = re.compile(r"/\{\w+\}")
_LINK = re.compile(r"!?\[[^\]]*\]\([^)]*\)|<?https?://\S+|\bwww\.\S+")
# "See [Key rotation](#key-rotation) for the whole procedure.": a pointer elsewhere, not an answer.
_POINTER = re.compile(
    r"^(?:see|more (?:in|on|about)|details (?:in|on)|refer to|for (?:more|details|further))\b", re.IGNORECASE
)
_POINTER_MAX_WORDS = 12
_HTTP_METHOD = re.compile(r"^(?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS)\s+")
_FILE_NAME = re.compile(r"\w\.[a-z]{1,5}$")
# A word as prose has it (letters, maybe an inner apostrophe or hyphen), once surrounding punctuation is stripped.
_PROSE_WORD = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*")
_TOKEN_PUNCTUATION = "*_`()[]{}\"'.,;:!?\u201c\u201d\u2018\u2019\u00ab\u00bb"
#: Below this share of prose words (with at least 4 tokens), a "sentence" is code or data.
_MIN_PROSE_SHARE = 0.45


def _prose_share(raw: str) -> float:
    """Share of a text's whitespace-separated tokens that are words (not identifiers, numbers, symbols or ALL-CAPS)."""
    tokens = raw.split()
    if not tokens:
        return 0.0
    words = 0
    for token in tokens:
        core = token.strip(_TOKEN_PUNCTUATION)
        if _PROSE_WORD.fullmatch(core) and not (len(core) > 1 and core.isupper()):
            words += 1
    return words / len(tokens)


def _is_command(line: str) -> bool:
    """A shell, SQL, Python or markup line as typed (not a sentence about one: that starts with a capital or `code`)."""
    if _CODE_START.match(line):
        return True
    if not _PROGRAM.match(line):
        return False
    return bool(_COMMAND_SIGNS.search(line)) or _prose_share(line) < _MIN_PROSE_SHARE


def _is_data(raw: str) -> bool:
    """JSON, code or other data outside inline code (see :data:`_DATA`), or a line of symbols without any letter."""
    outside = _ROUTE_BRACES.sub("", _CODE_SPAN.sub(" x ", raw)).strip()
    if not any(char.isalnum() for char in outside):
        # "────", "---", "}}", a table's lone "|"; a lone "—" or "…" is only punctuation, not data.
        return len(outside) >= 3 or any(char in "|{}[]<>=/\\" for char in outside)
    return bool(_DATA.search(outside))


def _strong_code_line(line: str) -> bool:
    """A line that is code wherever it stands (so it is never taken for the wrap of the sentence before it)."""
    return _is_command(line) or _is_data(line)


def _is_code(raw: str) -> bool:
    """A sentence (as written) that is code, a command or data rather than prose."""
    if _strong_code_line(raw):
        return True
    return len(raw.split()) >= 4 and _prose_share(raw) < _MIN_PROSE_SHARE


def _is_table_row(line: str) -> bool:
    # "| a | b |", and the cut-off rows a chunk may start or end with ("b | c |", "| a | b", "c |").
    return (line.count("|") >= 2 and (line.startswith("|") or line.endswith("|"))) or line.endswith(" |")


def _is_link_list(raw: str) -> bool:
    """Mostly links or bare URLs ("[Docs](docs.md) · [API](api.md)"), or a short pointer elsewhere ("See X for Y.")."""
    shown = plain_text(raw).strip()
    if _POINTER.match(shown) and len(shown.split()) <= _POINTER_MAX_WORDS:
        return True
    if not _LINK.search(raw):
        return False
    return len(_PROSE_WORD.findall(_LINK.sub(" ", raw))) < 3


def _is_path(shown: str) -> bool:
    """Nothing but a path, file name or route ("docs/chat.md", "POST /v1/chat")."""
    bare = _HTTP_METHOD.sub("", shown.strip().rstrip(".:;"))
    return bool(bare) and " " not in bare and ("/" in bare or bool(_FILE_NAME.search(bare)))


def _clean_start(shown: str, raw: str) -> bool:
    """Whether a sentence visibly starts a sentence: a capital, a digit, a quote or bracket before one, or code (a
    sentence may open with `refresh_schedule`, send() or pg_dump); not a lower-case word or punctuation cut out of a
    longer one."""
    if raw.startswith("`") and raw.find("`", 1) > 0:
        return True
    text = shown.lstrip("\"'\u201c\u2018\u00ab(")
    first = text[:1]
    return first.isdigit() or (first.isalpha() and not first.islower()) or bool(_IDENTIFIER.match(text))


# --- units and sentences ----------------------------------------------------------------------------------------------

UnitKind = Literal["text", "bullet", "step", "heading", "code", "table"]
SentenceKind = Literal["prose", "code", "structure", "broken"]


@dataclass
class _Unit:
    """One logical line of an item: a paragraph's lines re-joined, a list item, a heading, a code or table line."""

    raw: str  # as written (Markdown marks kept): what code and markup detection reads
    kind: UnitKind
    # (offset in ``raw``, offset in the item's text) of each source line joined into the unit, to map sentences back.
    lines: list[tuple[int, int]]
    number: int | None = None  # a numbered step's number
    text: str = ""  # ``raw`` as a reader sees it, filled in once the unit is complete

    def extend(self, line: str, offset: int) -> None:
        self.lines.append((len(self.raw) + 1, offset))
        self.raw = f"{self.raw} {line}"

    def offset(self, position: int) -> int:
        """The offset in the item's text of ``raw[position]``."""
        for raw_offset, text_offset in reversed(self.lines):
            if raw_offset <= position:
                return text_offset + position - raw_offset
        return self.lines[0][1]


@dataclass(frozen=True)
class _Sentence:
    """A sentence of an item (or of consecutive items stitched together), or one code, table or heading line."""

    shown: str  # as quoted: inline markup removed (code as written)
    scored: str  # as embedded: may carry the heading or list lead it sits under
    kind: SentenceKind
    start: int  # offsets in the item's (or stitched segment's) text
    end: int
    unit: int  # index of its unit
    clean_start: bool = True  # starts like a sentence (see :func:`_clean_start`)
    group: int | None = None  # the list (numbered steps, or bullets under a lead) its unit belongs to
    numbered: bool = False
    number: int | None = None  # its step's number


def _starts_inside_code(lines: list[str]) -> bool:
    """Whether the text starts inside a fenced code block (a chunk cut out of the middle of one): its first fence is a
    bare one, there is an odd number of them, and nothing follows that fence or the lines before it read more like
    code (and less like prose) than those after it. Heading-like lines count for neither: a shell comment looks like
    one, and a chunk may start with its section's heading whatever follows."""
    stripped = [line.strip() for line in lines]
    fences = [index for index, line in enumerate(stripped) if _FENCE.match(line)]
    if len(fences) % 2 == 0 or stripped[fences[0]] not in ("```", "~~~"):
        return False
    before = [line for line in stripped[: fences[0]] if line and not _HEADING.match(line)]
    after = [line for line in stripped[fences[0] + 1 : fences[1] if len(fences) > 1 else None] if line]

    def codelike(block: list[str]) -> float:
        code = sum(_is_code(line) for line in block)
        prose = sum(
            len(line.split()) >= 6 and bool(_ENDS_SENTENCE.search(line)) and not _is_code(line) for line in block
        )
        return (code - prose) / len(block) if block else 0.0

    if not after:  # a bare fence closing the text: a block would not open with nothing in it
        return bool(before)
    return bool(before) and codelike(before) > codelike([line for line in after if not _HEADING.match(line)])


def _continues(unit: _Unit, line: str, after_blank: bool, indent: int) -> bool:
    """Whether ``line`` goes on with ``unit`` (a hard-wrapped paragraph or list item) rather than starting anew.

    A line starting in lower case or with inline code or punctuation continues a unit that has no sentence end yet,
    even across a blank line (text sources arrive with every line break doubled). A line starting with a capital does
    so only right below a long line or inside a list item (Markdown's own rule for wrapped paragraphs); after a short
    line it is what that line heads ("Opening hours" / "Mon-Fri 9-17")."""
    if unit.kind not in ("text", "bullet", "step") or _ENDS_SENTENCE.search(unit.raw):
        return False
    continuation = line[0].islower() or line[0] in _CONTINUATION_STARTS
    if unit.kind == "text" and len(unit.raw.split()) <= _HEADING_MAX_WORDS and _IDENTIFIER.match(line):
        # A title over a paragraph that opens with code ("Calling a management command" / "execute() should not").
        return False
    if unit.raw.endswith(":"):  # a lead: what follows is its list or code, unless the sentence or list item goes on
        return line[0].islower() or (unit.kind != "text" and (continuation or (indent > 0 and not after_blank)))
    if continuation:
        return True
    if after_blank:
        return False
    return (indent > 0 and unit.kind != "text") or len(unit.raw.split()) > _HEADING_MAX_WORDS


def _lines_to_units(text: str) -> list[_Unit]:
    """Logical units of a text: wrapped lines re-joined (:func:`_continues`), list items, headings, table rows and code
    lines (fenced blocks, including one the text starts inside, and command or data lines) each on their own."""
    lines: list[str] = []
    offsets: list[int] = []
    position = 0
    for line in text.splitlines(keepends=True):
        lines.append(line.rstrip("\r\n"))
        offsets.append(position)
        position += len(line)
    in_code = _starts_inside_code(lines)
    units: list[_Unit] = []
    current: _Unit | None = None  # the unit the next line may continue
    after_blank = False
    for line, line_offset in zip(lines, offsets, strict=True):
        stripped = line.strip()
        if not stripped:
            after_blank = True
            continue
        start = line_offset + len(line) - len(line.lstrip())
        indent = len(line.expandtabs(4)) - len(line.expandtabs(4).lstrip())
        if _FENCE.match(stripped):
            in_code, current = not in_code, None
        elif in_code:
            units.append(_Unit(stripped, "code", [(0, start)]))
            current = None
        elif _is_table_row(stripped):
            units.append(_Unit(stripped, "table", [(0, start)]))
            current = None
        elif heading := _HEADING.match(stripped):
            units.append(_Unit(stripped[heading.end() :], "heading", [(0, start + heading.end())]))
            current = None
        elif bullet := _BULLET.match(stripped):
            number = bullet.group("number")
            current = _Unit(
                stripped[bullet.end() :],
                "step" if number else "bullet",
                [(0, start + bullet.end())],
                int(number) if number else None,
            )
            units.append(current)
        elif _strong_code_line(stripped):
            units.append(_Unit(stripped, "code", [(0, start)]))
            current = None
        elif current is not None and _continues(current, stripped, after_blank, indent):
            current.extend(stripped, start)
        else:
            current = _Unit(stripped, "text", [(0, start)])
            units.append(current)
        after_blank = False
    for unit in units:
        if unit.kind == "code":
            unit.text = unit.raw
        elif unit.kind == "table":  # cells as a reader lists them; a separator row ("|---|---|") has none
            cells = (plain_text(cell).strip() for cell in unit.raw.strip("|").split("|"))
            unit.text = "; ".join(cell for cell in cells if any(char.isalnum() for char in cell))
        else:
            unit.text = plain_text(unit.raw).strip()
    return [unit for unit in units if unit.text]


def _split_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of one unit: cut at terminators followed by whitespace and a character that is not
    lower case, except after abbreviations and initials; CJK terminators need no space."""
    spans: list[tuple[int, int]] = []
    start = 0
    for gap in _SENTENCE_GAP.finditer(text):
        end = gap.end()
        if end >= len(text):
            break
        if gap.group()[0] not in _CJK_TERMINATORS:
            if text[end].islower():
                continue
            before = text[start : gap.start()].rsplit(maxsplit=1)
            word = before[-1].lstrip("*_`(\"'") if before else ""
            if word.lower() in _ABBREVIATIONS or _INITIALS.fullmatch(word):
                continue
        spans.append((start, start + len(text[start:end].rstrip())))
        start = end
    if text[start:].strip():
        spans.append((start, len(text.rstrip())))
    return spans


def _is_lead(unit: _Unit) -> bool:
    """A heading, a line introducing a list ("Opening hours:"), or a short line with no sentence end."""
    return unit.kind == "heading" or (unit.kind == "text" and unit.text.endswith(":")) or _is_list_line(unit)


def _is_list_line(unit: _Unit) -> bool:
    """A short line without a sentence end: a list item written without a marker, a title or a label."""
    return (
        unit.kind == "text"
        and not _ENDS_SENTENCE.search(unit.text)
        and not unit.text.endswith(":")
        and len(unit.text.split()) <= _HEADING_MAX_WORDS
    )


def _join_lead(lead: str, rest: str) -> str:
    return f"{lead} {rest}" if lead.endswith(":") else f"{lead}: {rest}"


def _lists(units: list[_Unit]) -> dict[int, tuple[int, bool]]:
    """Unit index → (list id, numbered) for the items of each list: numbered steps that count on (1, 2, 3 ..., with
    anything between them, such as code or a step's second paragraph, a new "1." or a heading ending the list), and
    bullets that follow a lead line ending with ":" (a bulleted procedure, if the question asks how)."""
    found: dict[int, tuple[int, bool]] = {}
    list_id = -1
    last_step: int | None = None
    for index, unit in enumerate(units):
        if unit.kind == "step":
            if last_step is None or unit.number != last_step + 1:
                list_id += 1
            found[index] = (list_id, True)
            last_step = unit.number
        elif unit.kind == "heading":
            last_step = None
        elif unit.kind == "bullet" and index > 0:
            previous = index - 1
            if previous in found and not found[previous][1]:
                found[index] = found[previous]
            elif units[previous].kind == "text" and units[previous].text.endswith(":"):
                list_id += 1
                found[index] = (list_id, False)
    return found


def _closes_unopened(raw: str) -> bool:
    """Whether a parenthesis closes before any opened: the sentence began before the text does ("`UPDATE` when a minute
    has passed; one wins) for 6,171 requests." at the start of a chunk)."""
    depth = 0
    for char in raw:
        depth += (char == "(") - (char == ")")
        if depth < 0:
            return True
    return False


def _kind_of(raw: str, shown: str, unit: _Unit) -> SentenceKind:
    """What a sentence of a prose unit is: code or data, structure (a title, link list, pointer or bare path), broken
    (an inline code span or a parenthesis cut in two), or prose."""
    if unit.kind == "heading":
        return "structure"
    if raw.count("`") % 2 or _closes_unopened(raw):
        return "broken"
    if _is_code(raw):
        return "code"
    if _is_link_list(raw) or _is_path(shown):
        return "structure"
    if unit.kind == "text" and _is_list_line(unit):  # a title or label on its own ("Two commands", "API token: x")
        return "structure"
    return "prose"


def _sentences(text: str) -> list[_Sentence]:
    """Every sentence of one item (or stitched segment), in order, with what it is (see :func:`split_sentences`)."""
    units = _lines_to_units(text)
    lists = _lists(units)
    sentences: list[_Sentence] = []

    def add(
        index: int,
        lead: str | None = None,
        headed_first: bool = False,
        skip_last: bool = False,
        heading_lead: bool = False,
    ) -> None:
        unit = units[index]
        group, numbered = lists.get(index, (None, False))
        if unit.kind in ("code", "table"):
            kind: SentenceKind = "code" if unit.kind == "code" else "structure"
            start = unit.lines[0][1]
            shown = unit.raw if unit.kind == "code" else unit.text
            end = start + len(unit.raw)
            sentences.append(_Sentence(shown, shown, kind, start, end, index, True, group, numbered, unit.number))
            return
        spans = _split_spans(unit.raw)
        for position, (start, end) in enumerate(spans[:-1] if skip_last else spans):
            raw = unit.raw[start:end]
            shown = plain_text(raw).strip()
            if not shown:
                continue
            scored = shown
            if lead is not None and (position == 0 or not headed_first):
                scored = _join_lead(lead, shown)
                # "Opening hours: Mon-Fri 9-17" reads as a whole, "Mon-Fri 9-17" does not; a Markdown heading is a title
                # and stays out of what is quoted, as does a label over a line that leads a list ("To reset it:").
                if headed_first and not heading_lead and not _ENDS_SENTENCE.search(shown) and not shown.endswith(":"):
                    shown = scored
            sentences.append(
                _Sentence(
                    shown,
                    scored,
                    _kind_of(raw, shown, unit),
                    unit.offset(start),
                    unit.offset(end - 1) + 1,
                    index,
                    _clean_start(shown, raw),
                    group,
                    numbered,
                    unit.number,
                )
            )

    i = 0
    while i < len(units):
        unit = units[i]
        following = units[i + 1] if i + 1 < len(units) else None
        if unit.kind in ("text", "heading") and following is not None and _is_lead(unit):
            # The lead is a heading, or the last sentence of a paragraph; its earlier sentences stand on their own.
            lead_start = 0 if unit.kind == "heading" else _split_spans(unit.raw)[-1][0]
            lead = plain_text(unit.raw[lead_start:]).strip()
            earlier = unit.kind != "heading" and lead_start > 0
            # A heading that is a question (a FAQ entry, a curated answer: "## Can I bring my dog?") is answered by what
            # follows it, which is scored with it and quoted without it.
            answers_heading = unit.kind == "heading" and lead.endswith("?")
            j = i + 1
            # The list: bullets, or short lines without a sentence end ("Mon-Fri 9-17" under "Opening hours").
            while j < len(units) and (units[j].kind == "bullet" or _is_list_line(units[j])):
                j += 1
            items = units[i + 1 : j]
            texts = [u.text.rstrip(".;,") for u in items]
            short = all(len(text.split()) <= _LIST_ITEM_MAX_WORDS for text in texts) and not any(
                _is_code(u.raw) for u in items
            )
            if items and short and sum(len(t) + 2 for t in texts) <= _LIST_MAX_CHARS:
                if earlier:
                    add(i, skip_last=True)
                joined = _join_lead(lead, "; ".join(texts)) + "."
                # A label reads as part of its list ("Opening hours: Mon-Fri 9-17; Sat 10-14."), a question does not.
                shown = "; ".join(texts) + "." if answers_heading else joined
                start, end = unit.offset(lead_start), items[-1].offset(len(items[-1].raw) - 1) + 1
                clean = _clean_start(lead, unit.raw[lead_start:])
                group, numbered = lists.get(i + 1, (None, False))
                # A list of links ("Docs: Chat; Widget.") or of file names is still no answer.
                links = any(_is_link_list(u.raw) or _is_path(u.text) for u in items)
                kind: SentenceKind = "structure" if links else "prose"
                sentences.append(_Sentence(shown, joined, kind, start, end, i, clean, group, numbered))
                i = j
                continue
            if items:  # a long list: its items stand alone, each scored with the lead that says what it is about
                add(i)
                for k in range(i + 1, j):
                    add(k, lead=lead)
                i = j
                continue
            # A heading (also a long "Chat > How a turn works" path) or a short line is scored with (not quoted in) the
            # paragraph or list item it heads: its first sentence — or, under a question, every sentence, since each of
            # them answers it: scored alone, the rest of the answer would rank a whole question below its first sentence
            # ("Yes.") and be left out.
            if following.kind in ("text", "bullet", "step") and (
                unit.kind == "heading" or len(lead.split()) <= _HEADING_MAX_WORDS
            ):
                if earlier:
                    add(i, skip_last=True)
                add(i + 1, lead=lead, headed_first=not answers_heading, heading_lead=unit.kind == "heading")
                i += 2
                continue
        add(i)
        i += 1
    return sentences


def split_sentences(text: str) -> list[str]:
    """Split one context item into answer-sized prose sentences, in order.

    Prose splits at sentence ends (``. ! ? …`` plus closing quotes or Markdown marks, followed by whitespace and a
    character that is not lower case; CJK full stops need no space), not after common abbreviations or initials.
    Wrapped lines are re-joined, also across the blank lines text sources double every line break with. A line ending
    with ``:``, a heading or a short unpunctuated line, followed by short list items (bullets, or short lines without a
    sentence end) becomes one sentence ("We ship to: France; Spain; Italy.", "Opening hours: Mon-Fri 9-17; Sat 10-14.");
    longer lists stay separate sentences. A heading or a short unpunctuated line is glued to the line after it when
    that line is no full sentence on its own ("Opening hours: Mon-Fri 9-17"). A heading that is a question never is:
    what follows it is its answer ("## When are you open?" / "Mon-Fri 9-17" gives "Mon-Fri 9-17."). Inline markup is
    removed; nothing is reworded, the only additions are those joins (``": "``, ``"; "``). Left out: code (fenced
    blocks, command, SQL and data lines, token soups), table rows, headings and titles, link lists and bare paths.
    """
    return [sentence.shown for sentence in _sentences(text) if sentence.kind == "prose"]


def _finished(sentence: str) -> str:
    """The sentence with a full stop if it has no sentence end (list items, headed lines)."""
    if _ENDS_SENTENCE.search(sentence):
        return sentence
    sentence = sentence.rstrip(",;: ")
    return sentence if _ENDS_SENTENCE.search(sentence) else sentence + "."


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


# --- the question -----------------------------------------------------------------------------------------------------

# A question that asks for code itself (an example, the command, a query, how to run or write something): then code,
# command and data lines may be quoted. Mentioning a command or SQL is not asking for one ("What does the rotate_keys
# command do?", "Are querysets safe against SQL injection?").
_ASKS_CODE = re.compile(
    r"\b(?:code (?:example|sample|snippet)s?|examples?|snippets?|syntax|curl|one-liner|command[- ]line)\b|"
    r"\b(?:which|what) (?:command|query|statement|sql|code)\b|"
    r"\b(?:show|give) me\b.*\b(?:code|command|query|sql)\b|\bfrom the (?:shell|terminal)\b|"
    r"\bhow (?:do|can|would|should) (?:i|we|you) (?:run|call|invoke|execute|type|write)\b|"
    r"\bhow to (?:run|call|invoke|execute|type|write)\b|\bin (?:sql|python|bash|json|javascript)\b",
    re.IGNORECASE,
)
# A question about how to do something: a bulleted list under "To do X:" is then its procedure.
_ASKS_HOW = re.compile(
    r"\bhow (?:do|can|should|would|to)\b|\bsteps?\b|\bprocedure\b|\bset ?up\b|\binstall\b", re.IGNORECASE
)
# A question after new information (not a yes/no one): a sentence repeating its words without more does not answer.
_WH_QUESTION = re.compile(r"\b(?:what|what's|how|why|when|where|which|who|whom|whose)\b", re.IGNORECASE)
_STOPWORDS = frozenset(
    "a an the is are was were be been being am do does did done i you he she we they it its this that these those of "
    "to in on for with at by from and or but not no can could will would shall should may might must how what whats "
    "when where which who whom whose why my your our their me us them if so than then there here as about into "
    "get got has have had s t".split()
)
#: A sentence adding at most this many content words that the question lacks only restates a wh-question.
_RESTATING_NEW_WORDS = 1
#: ... when it also carries at least this share of the question's content words.
_RESTATING_COVERAGE = 0.8


def _stem(word: str) -> str:
    """A crude English stem, the same on both sides of a comparison: "deleted", "deletes" and "delete" all give
    "delet"; "crawler", "crawls" and "crawled" give "crawl"; "tokens" gives "token"."""
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 4 and word.endswith("es") and word[-3] in "sxz":
        word = word[:-2]
    elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    for suffix in ("ing", "ed", "er"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:-1] if len(word) > 3 and word.endswith("e") else word


def _content_words(text: str) -> set[str]:
    return {_stem(word) for word in _normalised_words(text) if word not in _STOPWORDS}


def _word_overlap(question: str, texts: list[str]) -> list[float]:
    """For each text, the share of the question's content words it contains, each word weighted by how rare it is
    among ``texts`` (inverse document frequency): a sentence naming the rare thing asked about ("robots.txt") scores
    high, one sharing only words every sentence has scores low. 0 when the question has no content word."""
    asked = _content_words(question)
    said = [_content_words(text) & asked for text in texts]
    count = len(texts)
    weight = {word: math.log(1 + count / (1 + sum(word in words for words in said))) for word in asked}
    total = sum(weight.values())
    return [sum(weight[word] for word in words) / total if total else 0.0 for words in said]


def _restates(sentence: str, question: str) -> bool:
    """Whether a sentence only restates the question instead of answering it: a question itself (a FAQ heading, the
    question quoted in an example), or, for a wh-question, the question's words with at most one more."""
    if sentence.rstrip(_CLOSERS + " ").endswith("?"):
        return True
    asked = _content_words(question)
    if not asked or not _WH_QUESTION.search(question):
        return False  # "We ship to Germany." does answer "Do you ship to Germany?"
    said = _content_words(sentence)
    coverage = len(asked & said) / len(asked)
    return len(said - asked) <= _RESTATING_NEW_WORDS and coverage >= _RESTATING_COVERAGE


# --- segments: consecutive chunks stitched back together --------------------------------------------------------------

#: Shortest repeated text taken as the overlap of two consecutive chunks (the chunker repeats up to 64 characters).
_MIN_OVERLAP = 16
_MAX_OVERLAP = 256


@dataclass(frozen=True)
class _Segment:
    """The text of one or more context items that follow each other in the same document, their overlap kept once."""

    text: str
    items: tuple[int, ...]  # item indexes, in text order
    spans: tuple[tuple[int, int], ...]  # (start, end) of each item's text inside ``text``

    def cited(self, start: int, end: int) -> tuple[int, ...]:
        """Indexes of the items a passage ``text[start:end]`` comes from: the first item holding its start, and the
        following ones up to the one holding its end."""
        first = next((k for k, (low, high) in enumerate(self.spans) if low <= start < high), len(self.spans) - 1)
        last = first
        while end > self.spans[last][1] and last + 1 < len(self.spans):
            last += 1
        return self.items[first : last + 1]


def _overlap(before: str, after: str) -> int:
    """Length of the longest end of ``before`` that ``after`` starts with (0 if under :data:`_MIN_OVERLAP`); ``after``
    must go on beyond it."""
    if len(after) <= _MIN_OVERLAP:
        return 0
    tail = before[-_MAX_OVERLAP:]
    probe = after[:_MIN_OVERLAP]
    position = tail.find(probe)
    while position >= 0:
        length = len(tail) - position
        if length < len(after) and after.startswith(tail[position:]):
            return length
        position = tail.find(probe, position + 1)
    return 0


_LEADING_HEADING = re.compile(r"[ \t]*#{1,6}[ \t][^\n]*\n")


def _body_start(text: str) -> int:
    """Where a chunk's own text starts: after the heading line ("## Chat > Streaming") a chunker may put first."""
    heading = _LEADING_HEADING.match(text)
    return heading.end() if heading else 0


def _stitch(items: list[ContextItem]) -> list[_Segment]:
    """Items as segments, in context order: an item whose text starts (after a heading line, if any) with the end of
    another item's text from the same source (and authority label) is the next chunk of that document, so the two are
    read as one text, the repeated heading and overlap once. A sentence or a numbered procedure that a chunk boundary
    cut in two is whole again, and still cites the items it comes from."""
    following: dict[int, tuple[int, int]] = {}  # item index → (next item index, overlap length)
    preceding: dict[int, tuple[int, int]] = {}
    for a, first in enumerate(items):
        for b, second in enumerate(items):
            if a == b or (first.source_name, first.label) != (second.source_name, second.label):
                continue
            length = _overlap(first.text, second.text[_body_start(second.text) :])
            # Each chunk has one successor and one predecessor: the longest overlap wins (ties: context order).
            if length and length > following.get(a, (0, 0))[1] and length > preceding.get(b, (0, 0))[1]:
                if a in following:
                    preceding.pop(following[a][0], None)
                if b in preceding:
                    following.pop(preceding[b][0], None)
                following[a] = (b, length)
                preceding[b] = (a, length)
    segments: list[_Segment] = []
    placed: set[int] = set()
    for start in range(len(items)):
        if start in placed:
            continue
        head, walked = start, {start}  # back to the first chunk of the chain (never round a cycle)
        while head in preceding and preceding[head][0] not in placed and preceding[head][0] not in walked:
            head = preceding[head][0]
            walked.add(head)
        text, chain, spans = items[head].text, [head], [(0, len(items[head].text))]
        placed.add(head)
        while head in following and following[head][0] not in placed:
            head, length = following[head]
            body = items[head].text[_body_start(items[head].text) :]
            spans.append((len(text) - length, len(text) - length + len(body)))
            text += body[length:]
            chain.append(head)
            placed.add(head)
        segments.append(_Segment(text, tuple(chain), tuple(spans)))
    return sorted(segments, key=lambda segment: min(segment.items))


# --- the model --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    segment: int  # index of its segment
    position: int  # order of the sentence in its segment
    numbers: tuple[int, ...]  # numbers of the items it comes from: its citation
    sentence: _Sentence
    vector_row: int
    relevance: float
    boost: float  # the authority label's
    score: float  # relevance + authority boost + word overlap and procedure bonuses: the ranking key

    @property
    def text(self) -> str:
        return self.sentence.shown


def _normalised_words(text: str) -> tuple[str, ...]:
    return tuple(word.lower() for word in _WORD.findall(text))


def _adjacent(one: _Candidate, other: _Candidate) -> bool:
    """Whether two sentences follow each other in the text (nothing, not even a code line, between them)."""
    return one.segment == other.segment and abs(one.position - other.position) == 1


def _citation(numbers: Iterable[int]) -> str:
    return "".join(f"[{number}]" for number in numbers)


def _quoted(sentence: _Sentence) -> str:
    """A sentence as the answer quotes it: prose with a sentence end, code as inline code."""
    if sentence.kind != "code":
        return _finished(sentence.shown)
    return sentence.shown if "`" in sentence.shown else f"`{sentence.shown}`"


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
        asks_code = bool(_ASKS_CODE.search(question))
        asks_how = bool(_ASKS_HOW.search(question))
        segments = _stitch(items)
        segment_sentences = [_sentences(segment.text) for segment in segments]
        answers: list[tuple[int, int]] = []  # (segment, position): sentences that may answer
        fallback: list[tuple[int, int]] = []  # prose too short, cut or only restating the question: if nothing else
        # Structure (tables, headings, link lists) and code the question did not ask for: never an answer, at most the
        # "closest" when the context holds nothing else.
        last_resort: list[tuple[int, int]] = []
        for segment_index, sentences in enumerate(segment_sentences):
            last = len(sentences) - 1
            for position, sentence in enumerate(sentences):
                if sentence.kind == "structure" or (sentence.kind == "code" and not asks_code):
                    last_resort.append((segment_index, position))
                    continue
                short = sentence.kind == "prose" and len(_WORD.findall(sentence.scored)) < config.min_words
                # A chunk after the first starts with up to 64 characters of overlap cut at a word, so a sentence that
                # does not start like one is the tail of a sentence that began in the previous chunk; and a chunk cut
                # at its size limit ends with the head of a sentence that goes on in the next.
                # (A clause ending with ":" is whole, though: "DELETE … removes their vectors:" says what it says.)
                trailing = (
                    position == last > 0
                    and sentence.kind != "code"
                    and not _ENDS_SENTENCE.search(sentence.shown)
                    and not (sentence.shown.endswith(":") and len(sentence.shown.split()) > _HEADING_MAX_WORDS)
                )
                # A short sentence ending with ":" only announces a list or code that is not quoted with it ("A new
                # table that belongs to a customer:"); a step may, its procedure being quoted whole.
                announcing = (
                    sentence.shown.endswith(":")
                    and sentence.group is None
                    and len(sentence.shown.split()) <= _HEADING_MAX_WORDS
                )
                whole = sentence.clean_start and not trailing and not announcing
                if (
                    sentence.kind in ("prose", "code")
                    and whole
                    and not short
                    and not _restates(sentence.shown, question)
                ):
                    answers.append((segment_index, position))
                else:
                    fallback.append((segment_index, position))
        candidates = (answers or fallback or last_resort)[: config.max_candidates]
        if not candidates:
            return NO_CONTEXT_ANSWER, "no_context", None, ()

        cited_items = {
            (s, p): segments[s].cited(segment_sentences[s][p].start, segment_sentences[s][p].end) for s, p in candidates
        }
        # Only items with a candidate are embedded (the candidate cap also bounds this).
        used = list(dict.fromkeys(index for key in candidates for index in cited_items[key]))
        item_texts = [f"{items[i].title}\n{items[i].text}" if items[i].title else items[i].text for i in used]
        scored_texts = [segment_sentences[s][p].scored for s, p in candidates]
        vectors = np.asarray(embedder.embed([question, *item_texts, *scored_texts]))
        question_vector = vectors[0]
        item_cos = dict(zip(used, (vectors[1 : 1 + len(used)] @ question_vector).tolist(), strict=True))
        first_row = 1 + len(used)
        sentence_cos = vectors[first_row:] @ question_vector
        overlap = _word_overlap(question, scored_texts)

        scored: list[_Candidate] = []
        for offset, (segment_index, position) in enumerate(candidates):
            from_items = cited_items[(segment_index, position)]
            relevance = config.sentence_weight * float(sentence_cos[offset]) + (1 - config.sentence_weight) * max(
                item_cos[i] for i in from_items
            )
            # Rounding makes ties exact, so they are broken by the documented order, not by float noise.
            relevance = round(relevance, 6)
            boost = max(config.label_boosts.get(items[i].label or "", 0.0) for i in from_items)
            sentence = segment_sentences[segment_index][position]
            step_bonus = config.procedure_bonus if asks_how and sentence.group is not None else 0.0
            if sentence.kind == "code":  # asked for, code still comes after prose that says as much
                step_bonus -= config.code_penalty
            scored.append(
                _Candidate(
                    segment=segment_index,
                    position=position,
                    numbers=tuple(dict.fromkeys(items[i].number for i in from_items)),
                    sentence=segment_sentences[segment_index][position],
                    vector_row=first_row + offset,
                    relevance=relevance,
                    boost=boost,
                    score=round(relevance + boost + config.word_weight * overlap[offset] + step_bonus, 6),
                )
            )
        # Sentences relevant enough to answer come first; the word overlap only reorders those (it must not let a
        # sentence the threshold rejects push out one it accepts).
        ranked = sorted(
            scored,
            key=lambda c: (c.relevance < config.relevance_threshold, -c.score, c.numbers[0], c.segment, c.position),
        )
        best = ranked[0]

        if best.relevance < config.relevance_threshold or (not answers and not fallback):
            # Nothing answers: the closest sentence by relevance alone (shared words say little about a question the
            # documents do not cover), plainly labelled as such.
            best = min(scored, key=lambda c: (-(c.relevance + c.boost), c.numbers[0], c.segment, c.position))
            citation = f" {_citation(best.numbers)}"
            budget = config.max_chars - len(CLOSEST_PREFIX) - len(citation)
            text = CLOSEST_PREFIX + _truncate_chars(_quoted(best.sentence), budget) + citation
            return text, "closest", best.relevance, best.numbers

        if best.sentence.group is not None and (best.sentence.numbered or asks_how):
            procedure = self._procedure(segments[best.segment], segment_sentences[best.segment], best, asks_code, items)
            if procedure is not None:
                text, numbers = procedure
                return text, "answer", best.relevance, numbers

        chosen = [best]
        length = len(_quoted(best.sentence)) + len(f" {_citation(best.numbers)}")
        if length > config.max_chars:  # one very long sentence: shortened, alone
            citation = f" {_citation(best.numbers)}"
            text = _truncate_chars(_quoted(best.sentence), config.max_chars - len(citation)) + citation
            return text, "answer", best.relevance, best.numbers
        # Further sentences, best first: those ranking within the follow margin of the best, and (with a wider margin)
        # those right before or after a chosen sentence in its paragraph, which carry on what it says ("Hence, such
        # indexes can only handle simple equality comparisons."); those go first, by a bonus, as the best passage.
        while len(chosen) < config.max_sentences:
            eligible: list[tuple[float, int, _Candidate]] = []
            for rank, candidate in enumerate(ranked[1:]):
                if candidate in chosen or candidate.relevance < config.relevance_threshold:
                    continue
                adjacent = candidate.relevance >= best.relevance - config.neighbour_margin and any(
                    _adjacent(candidate, other) for other in chosen
                )
                if not adjacent and candidate.score < best.score - config.follow_margin:
                    continue
                extra = 1 + len(_quoted(candidate.sentence)) + len(f" {_citation(candidate.numbers)}")
                if length + extra <= config.max_chars and not self._duplicates(vectors, candidate, chosen):
                    eligible.append((candidate.score + (config.neighbour_bonus if adjacent else 0.0), -rank, candidate))
            if not eligible:
                break
            *_, candidate = max(eligible, key=lambda entry: entry[:2])
            chosen.append(candidate)
            length += 1 + len(_quoted(candidate.sentence)) + len(f" {_citation(candidate.numbers)}")

        # A how-question whose answer includes a step of a procedure gets that procedure whole, after the best sentence
        # (which says what the procedure is for, "Encryption keys (...) newest first: the first encrypts ...").
        step = next((c for c in chosen[1:] if c.sentence.group is not None) if asks_how else iter(()), None)
        if step is not None:
            procedure = self._procedure(segments[step.segment], segment_sentences[step.segment], step, asks_code, items)
            if procedure is not None:
                text, numbers = procedure
                if best.sentence.group != step.sentence.group or best.segment != step.segment:
                    text = f"{_quoted(best.sentence)} {_citation(best.numbers)}\n{text}"
                    numbers = tuple(dict.fromkeys((*best.numbers, *numbers)))
                return text, "answer", best.relevance, numbers

        # Segments in the order of their best sentence; inside a segment, the document's order.
        segment_rank: dict[int, int] = {}
        for candidate in chosen:
            segment_rank.setdefault(candidate.segment, len(segment_rank))
        chosen.sort(key=lambda c: (segment_rank[c.segment], c.position))
        text = " ".join(f"{_quoted(c.sentence)} {_citation(c.numbers)}" for c in chosen)
        return text, "answer", best.relevance, tuple(dict.fromkeys(n for c in chosen for n in c.numbers))

    def _procedure(
        self,
        segment: _Segment,
        sentences: list[_Sentence],
        best: _Candidate,
        asks_code: bool,
        items: list[ContextItem],
    ) -> tuple[str, tuple[int, ...]] | None:
        """The list the best sentence is a step of, whole and in order, one cited step per line (with the line that
        introduces it, if any), within :attr:`ExtractiveConfig.max_procedure_chars`; ``None`` if fewer than two of its
        steps are in the context."""
        group = best.sentence.group
        last = len(sentences) - 1
        steps: dict[int, list[_Sentence]] = {}  # unit → its quotable sentences
        for position, sentence in enumerate(sentences):
            if sentence.group != group:
                continue
            quotable = sentence.kind == "prose" or (sentence.kind == "code" and asks_code)
            cut = not sentence.clean_start or (position == last and not _ENDS_SENTENCE.search(sentence.shown))
            steps.setdefault(sentence.unit, [])
            if quotable and not cut:
                steps[sentence.unit].append(sentence)
        lines: list[tuple[str, tuple[int, ...]]] = []
        best_line = 0
        for unit, unit_sentences in steps.items():
            if not unit_sentences:
                continue
            if unit == best.sentence.unit:
                best_line = len(lines)
            marker = f"{unit_sentences[0].number}." if best.sentence.numbered else "-"
            body = " ".join(_quoted(s) for s in unit_sentences)
            cited = segment.cited(unit_sentences[0].start, unit_sentences[-1].end)
            lines.append((f"{marker} {body}", tuple(dict.fromkeys(items[i].number for i in cited))))
        if len(lines) < 2:
            return None
        # The line introducing the list ("Re-encrypt what is stored:"), when it is a sentence of its own.
        first_unit = min(steps)
        intro = [s for s in sentences if s.unit == first_unit - 1]
        if intro and intro[-1].kind == "prose" and intro[-1].clean_start and intro[-1].shown.endswith(":"):
            cited = segment.cited(intro[-1].start, intro[-1].end)
            lines.insert(0, (intro[-1].shown, tuple(dict.fromkeys(items[i].number for i in cited))))
            best_line += 1
        rendered = [f"{line} {_citation(numbers)}" for line, numbers in lines]
        # Within the length cap: from the start when the best step fits that way, else from the best step on.
        start = (
            0
            if sum(len(line) + 1 for line in rendered[: best_line + 1]) <= self.config.max_procedure_chars
            else best_line
        )
        kept: list[int] = []
        length = 0
        for index in range(start, len(rendered)):
            if kept and length + len(rendered[index]) + 1 > self.config.max_procedure_chars:
                break
            kept.append(index)
            length += len(rendered[index]) + 1
        text = "\n".join(rendered[index] for index in kept)
        if len(text) > self.config.max_procedure_chars:  # a single step longer than the cap
            citation = f" {_citation(lines[kept[0]][1])}"
            text = _truncate_chars(lines[kept[0]][0], self.config.max_procedure_chars - len(citation)) + citation
        return text, tuple(dict.fromkeys(n for index in kept for n in lines[index][1]))

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
