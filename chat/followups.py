"""Follow-up questions, resolved against the conversation before searching.

"Can it be removed?" means nothing to a search engine; after "What is the global interpreter lock?"
it means "Can the global interpreter lock be removed?". `question_to_search` turns the visitor's
message into the question the knowledge is searched with. The prompt still holds the message as it
was asked, after the history; only retrieval (and the refusal decision) sees the searched question,
which is stored on the answer (`Message.searched_question`) so an operator can see why an answer
came out as it did.

A message is resolved only when it reads as a follow-up (`is_follow_up`): it leans on something
said before — a pronoun or a "there"/"then" without a subject of its own ("Can I park there?"),
an opening like "And…", "What about…", "Then…", or so few words of its own that it cannot stand
alone ("And for how long?"). A question that stands alone is searched as asked, with no cost.

Two ways to resolve one:

* **With a model** — the bot's `rewrite_model`, else its chat model when that is a real LLM: one
  short, non-streamed call (temperature 0, at most REWRITE_MAX_TOKENS, REWRITE_TIMEOUT_SECONDS)
  asks for the standalone question. Its answer is used only when it looks like one (not empty, not
  an answer, not far longer than the two questions together); otherwise, and when the call fails,
  the offline way is used: a rewrite never costs the turn.
* **Offline** (the offline `local/...` models, and the fallback) — deterministic: the message,
  followed by the words of the previous question that the message does not already hold (common
  words left out, at most SUBJECT_WORDS, in their original order): "Can I park there?" after
  "Where is the dental clinic?" is searched as "Can I park there? dental clinic". Embeddings and
  the lexical search both read a subject into that. All of its words, not only its rarest: the
  subject of a question is often a word its documents use everywhere ("index" in a database
  manual), and the lexical search weighs each word by its rarity anyway (on the evaluation sets'
  follow-ups, hit@5 0.73 → 0.80 on PostgreSQL's manual, the same elsewhere).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from minirag import lexical
from minirag.model_gateway import PUBLIC_ENDPOINT, Endpoint, ModelError, acomplete

logger = logging.getLogger(__name__)

SUBJECT_WORDS = 8
# A message with at most this many words of its own (terms, after common words are dropped) does not
# stand alone: "And for how long?", "Can I pause it?".
FEW_TERMS = 1
REWRITE_MAX_TOKENS = 80
REWRITE_TIMEOUT_SECONDS = 8.0
HISTORY_CHARS = 1500

# Words that point back at something said before ("Can I park there?", "Does it also block…?").
# They also open standalone questions ("Is it fine to run migrations against SQLite in production?"),
# which name their own subject: with more than POINTING_TERMS words of its own, a message stands alone.
# (On the evaluation sets' 84 follow-ups and 315 standalone questions, 4 terms leave 20 follow-ups
# unresolved and take 4 standalone questions for follow-ups; 5: 15 and 15; 6: 13 and 31.)
POINTING_TERMS = 5
_POINTING = frozenset(
    "it its it's they them their theirs those these that this there then one ones same such he she him her "
    "his hers".split()
)
_OPENINGS = re.compile(
    r"^\s*(and|but|also|so|then|or|what about|how about|what if|and if|and what|and how|same for|"
    r"in that case|if so|ok|okay)\b",
    re.IGNORECASE,
)
_APOSTROPHE = "\u2019"  # a typographic apostrophe, as phones type it
_WORD = re.compile(rf"[^\W_][\w'{_APOSTROPHE}-]*")

REWRITE_INSTRUCTIONS = (
    "Rewrite the user's last message as one standalone question that can be understood without the "
    "conversation: replace pronouns and references with what they refer to, keep the user's words and "
    "language otherwise, and do not answer it. Reply with the question only."
)


@dataclass(frozen=True)
class SearchedQuestion:
    text: str  # what the knowledge is searched with
    method: str  # "as asked" | "offline" | "model"


def _previous_question(history: Sequence[dict[str, str]]) -> str:
    return next((turn["content"] for turn in reversed(history) if turn.get("role") == "user"), "")


def is_follow_up(question: str, history: Sequence[dict[str, str]]) -> bool:
    """Whether the message leans on the conversation (see the module docstring)."""
    if not _previous_question(history):
        return False
    if _OPENINGS.match(question):
        return True
    own_terms = set(lexical.terms(question))
    if len(own_terms) <= FEW_TERMS:
        return True
    words = [word.lower().replace(_APOSTROPHE, "'") for word in _WORD.findall(question)]
    # "Is there…", "there are…": an existential "there" points nowhere.
    pointing = [
        word
        for position, word in enumerate(words)
        if word in _POINTING
        and not (word == "there" and ({"is", "are", "was", "were"} & set(words[max(0, position - 1) : position + 2])))
    ]
    return bool(pointing) and len(own_terms) <= POINTING_TERMS


def offline_rewrite(question: str, history: Sequence[dict[str, str]]) -> str:
    """The message followed by the previous question's words it lacks."""
    own = set(lexical.terms(question))
    subject: list[str] = []
    for word in _WORD.findall(_previous_question(history)):
        found = lexical.terms(word)
        if found and found[0] not in own and len(subject) < SUBJECT_WORDS:
            own.add(found[0])
            subject.append(word)
    return f"{question.strip()} {' '.join(subject)}".strip()


def rewrite_model_of(bot: Any) -> str | None:
    """The model that condenses follow-ups for this bot: its `rewrite_model`, else its chat model
    when that is a real LLM (the offline models cannot rewrite)."""
    model = (getattr(bot, "rewrite_model", "") or bot.model or "").strip()
    return None if model.startswith("local/") else model


def _looks_like_a_question(text: str, question: str, previous: str) -> bool:
    return bool(text) and len(text) <= 2 * (len(question) + len(previous)) + 40 and "\n\n" not in text


async def question_to_search(
    *,
    bot: Any,
    history: Sequence[dict[str, str]],
    question: str,
    endpoint: Endpoint = PUBLIC_ENDPOINT,
) -> SearchedQuestion:
    """The question the knowledge is searched with for this message (see the module docstring)."""
    if not is_follow_up(question, history):
        return SearchedQuestion(text=question, method="as asked")
    model = rewrite_model_of(bot)
    if model is not None:
        rewritten = await _model_rewrite(model, history, question, endpoint)
        if rewritten is not None:
            return SearchedQuestion(text=rewritten, method="model")
    return SearchedQuestion(text=offline_rewrite(question, history), method="offline")


async def _model_rewrite(
    model: str, history: Sequence[dict[str, str]], question: str, endpoint: Endpoint
) -> str | None:
    conversation = "\n".join(
        f"{turn['role']}: {' '.join(turn['content'].split())[:HISTORY_CHARS]}"
        for turn in history[-4:]
        if turn.get("role") in ("user", "assistant")
    )
    messages = [
        {"role": "system", "content": REWRITE_INSTRUCTIONS},
        {"role": "user", "content": f"Conversation:\n{conversation}\n\nLast message: {question}"},
    ]
    try:
        completion = await asyncio.wait_for(
            acomplete(
                model=model, messages=messages, temperature=0.0, max_tokens=REWRITE_MAX_TOKENS, endpoint=endpoint
            ),
            timeout=REWRITE_TIMEOUT_SECONDS,
        )
    except (ModelError, TimeoutError) as error:
        logger.warning("Rewriting a follow-up with %s failed, searched offline instead: %s", model, error)
        return None
    text = " ".join(completion.text.split()).strip().strip('"')
    if not _looks_like_a_question(text, question, _previous_question(history)):
        logger.warning("The rewrite model %s gave no usable question; searched offline instead.", model)
        return None
    return text
