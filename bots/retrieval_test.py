"""The retrieval test: what a bot would search, find and decide for one question, without a chat.

An operator asks a question (optionally after some preceding turns) and sees the question as it
would be searched (a follow-up resolved against the turns), every chunk the hybrid search
returned with its dense (cosine), lexical (BM25) and fused scores and the share of the question's
distinctive words it holds, which chunks pass the evidence test (chat/evidence.py) and why, the
external (`nyxcore`) results, and whether the turn would be refused and why.

It is the chat turn's own retrieval (chat/followups.py, chat/retrieval.py), run read-only: no chat,
message, usage event or unanswered question is written, no model answers, no webhook fires. It
embeds the question, so it is rate-limited per tenant (`MINIRAG_RETRIEVAL_TEST_RATE`, default 30
per minute), shared by the API route and the dashboard page.

Used by `POST /v1/bot-profiles/{id}/retrieval-test` and the dashboard's "Test retrieval" page.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from asgiref.sync import async_to_sync

from bots.models import BotProfile
from bots.throttles import count_operator_test
from chat.prompting import context_items
from chat.retrieval import Candidate, Retrieval, RetrievedChunk, retrieve
from chat.turns import KnowledgeUnavailableError, ModelFailedError, ModelUnavailableError
from minirag.errors import NotFoundError
from minirag.model_gateway import ModelError
from minirag.vectorstore import is_vector_store_outage, vector_store_error_message

logger = logging.getLogger(__name__)

INACTIVE_WARNING = "This bot is inactive: visitors cannot chat with it until it is activated."
EXTERNAL_REASON = "returned by the external search service (its results are not weighed here)"
SCORE_DIGITS = 4


def history_window(bot: BotProfile, history: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    """The turns a chat with this bot would hand on: its last `history_turns` exchanges."""
    keep = bot.history_turns * 2
    turns = [{"role": turn["role"], "content": turn["content"]} for turn in history]
    return turns[-keep:] if keep > 0 else []


def run_retrieval_test(
    *, tenant_id: uuid.UUID, bot: BotProfile, question: str, history: Sequence[dict[str, str]] = ()
) -> dict[str, Any]:
    """The report of one test (the shape of `RetrievalTestSerializer`). The caller has checked who
    may test this bot. Raises `TooManyTests` (429), `ModelUnavailableError` or
    `KnowledgeUnavailableError` (503), `ModelFailedError` (502): as a chat turn would, with the
    cause, since only the tenant's staff run tests."""
    if bot.tenant_id != tenant_id:  # a caller's bug; answered like any other tenant's id
        raise NotFoundError("Bot profile not found.")
    count_operator_test("retrieval_test", tenant_id)
    window = history_window(bot, history)
    try:
        retrieval = async_to_sync(retrieve)(tenant_id=tenant_id, bot=bot, question=question, history=window)
    except ModelError as error:  # the embedding model (or the follow-up resolver's) failed
        if error.transient:
            raise ModelUnavailableError(
                f"The model is unavailable right now; please try again. ({error.message})"
            ) from error
        raise ModelFailedError(f"The model could not be used. ({error.message})") from error
    except Exception as exc:
        if not is_vector_store_outage(exc):
            raise
        reason = vector_store_error_message(exc)
        logger.warning("Retrieval test of bot %s failed: %s", bot.pk, reason)
        raise KnowledgeUnavailableError(
            f"The knowledge base is unavailable right now; please try again. ({reason})"
        ) from exc
    warnings = list(retrieval.warnings)
    if not bot.is_active:
        warnings.insert(0, INACTIVE_WARNING)
    return {
        "question": question,
        "searched_question": retrieval.searched.text if retrieval.searched else question,
        "rewrite_method": retrieval.searched.method if retrieval.searched else "as asked",
        "history_used": len(window),
        "threshold": bot.similarity_threshold,
        "refused": not retrieval.chunks,
        "refusal_reason": retrieval.refusal_reason,
        "embed_ms": retrieval.embed_ms,
        "search_ms": retrieval.search_ms,
        "warnings": warnings,
        "chunks": report_chunks(retrieval),
    }


def _score(value: float | None) -> float | None:
    return None if value is None else round(value, SCORE_DIGITS)


def report_chunks(retrieval: Retrieval) -> list[dict[str, Any]]:
    """Every local chunk the hybrid search returned, in its order, then the external results that
    joined the context; each with the number it would carry in the prompt (`[n]`), if any."""
    in_prompt = retrieval.chunks[: len(context_items(retrieval.chunks))]
    positions = {(chunk.origin, chunk.chunk_id): number for number, chunk in enumerate(in_prompt, start=1)}
    rows = [_local_row(candidate, positions) for candidate in retrieval.candidates]
    rows += [_external_row(chunk, positions) for chunk in retrieval.chunks if chunk.origin != "local"]
    return rows


def _common(chunk: RetrievedChunk, positions: dict[tuple[str, str], int]) -> dict[str, Any]:
    return {
        "chunk_id": chunk.chunk_id,
        "source_id": chunk.source_id,
        "source_name": chunk.source_name,
        "title": chunk.title,
        "url": chunk.url,
        "content": chunk.content,
        "authority": chunk.authority,
        "origin": chunk.origin,
        "score": _score(chunk.score),
        "prompt_position": positions.get((chunk.origin, chunk.chunk_id)),
    }


def _local_row(candidate: Candidate, positions: dict[tuple[str, str], int]) -> dict[str, Any]:
    return {
        **_common(candidate.chunk, positions),
        "dense_score": _score(candidate.chunk.score),
        "lexical_score": _score(candidate.lexical),
        "fused_score": _score(candidate.fused),
        "coverage": _score(candidate.coverage),
        "passed": candidate.passed,
        "reason": candidate.reason,
    }


def _external_row(chunk: RetrievedChunk, positions: dict[tuple[str, str], int]) -> dict[str, Any]:
    return {
        **_common(chunk, positions),
        "dense_score": None,
        "lexical_score": None,
        "fused_score": None,
        "coverage": None,
        "passed": True,
        "reason": EXTERNAL_REASON,
    }
