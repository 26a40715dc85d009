"""Retrieval for a chat turn: the bot's own indexed chunks (Qdrant's hybrid search, filtered by
tenant and bot, inactive sources excluded) that hold evidence for the question (chat/evidence.py),
and its external `nyxcore` search sources, merged and ordered by authority, then relevance.

Every local chunk the search returned is kept as a `Candidate` with its scores and the verdict on
it, whether it passed or not: the retrieval test (`POST /v1/bot-profiles/{id}/retrieval-test`)
shows them to operators."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from asgiref.sync import sync_to_async
from django.conf import settings

from bots.models import BotProfile
from bots.services import bot_model_endpoint
from chat.admission import Ticket, run_cpu_bound, stepping_aside
from chat.evidence import assess
from chat.followups import SearchedQuestion, is_follow_up, question_to_search, rewrite_model_of
from minirag import lexical
from minirag.db import releasing_connection
from minirag.model_gateway import Endpoint, embed_texts, runs_in_process
from minirag.vectorstore import collection_name, get_vector_store
from sources import nyxcore
from sources.models import Source, SourceStatus, SourceType
from sources.selectors import bot_term_statistics
from sources.services import source_secrets
from tenants.tenancy import tenant_scope

logger = logging.getLogger(__name__)

# Lower ranks first: binding rules, then recommendations, then everything else. Local chunks of a
# source without an explicit authority come after an external service's informational results,
# as the v1 contract orders them.
AUTHORITY_RANK = {"mandatory": 0, "guideline": 1, "informational": 2}
LOCAL_PLAIN_RANK = 3

# How many of the hybrid search's best chunks are re-scored by `relevance` before the bot's top_k
# are kept. Reciprocal rank fusion is good at gathering candidates from both halves and poor at
# ordering them: it sees ranks only, so a chunk that is fourth in both lists beats one that is
# first by far in meaning and tenth in words.
RESCORED_CANDIDATES = 20


@dataclass(frozen=True)
class RetrievedChunk:
    chunk_id: str
    content: str
    score: float
    source_id: str | None
    source_name: str = ""
    title: str = ""
    url: str = ""
    authority: str | None = None  # mandatory | guideline | informational | None (plain local)
    origin: str = "local"  # local | nyxcore

    @property
    def rank(self) -> int:
        return AUTHORITY_RANK.get(self.authority or "", LOCAL_PLAIN_RANK)


@dataclass(frozen=True)
class Candidate:
    """A local chunk the hybrid search returned, with the evidence weighed on it."""

    chunk: RetrievedChunk  # chunk.score: the cosine similarity (dense)
    lexical: float  # BM25 of the chunk for the question, IDF over the bot's chunks
    coverage: float  # the share of the question's distinctive words the chunk holds (0..1)
    fused: float | None  # `relevance`, what the chunks are ordered by (None: dense-only search)
    passed: bool
    reason: str


@dataclass(frozen=True)
class Retrieval:
    chunks: list[RetrievedChunk]
    best_local_score: float | None = None
    search_ms: int = 0
    embed_ms: int = 0
    warnings: list[str] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    searched: SearchedQuestion | None = None  # the question as searched (chat/followups.py)

    @property
    def refusal_reason(self) -> str:
        """Why the turn is refused ("" when it is not)."""
        if self.chunks:
            return ""
        if not self.candidates:
            return "The bot's knowledge holds nothing to search yet." if not self.warnings else "Nothing was found."
        return f"No chunk holds enough evidence; the best one: {self.candidates[0].reason}."


@dataclass(frozen=True)
class _BotSearchPlan:
    tenant_id: uuid.UUID
    bot_profile_id: uuid.UUID
    embedding_model: str
    embedding_endpoint: Endpoint
    embeds_in_process: bool  # the offline embedder (CPU) rather than a provider on the network (I/O)
    rewrite_endpoint: Endpoint
    top_k: int
    similarity_threshold: float
    has_local_sources: bool
    inactive_source_ids: list[str]
    external: list[nyxcore.SearchTarget]
    term_statistics: lexical.TermStatistics | None


def _search_plan(tenant_id: uuid.UUID, bot: BotProfile) -> _BotSearchPlan:
    with tenant_scope(tenant_id):
        # All of the bot's sources in one read; deactivating a source removes its vectors, and
        # excluding inactive sources from the search as well covers the moment between the two
        # (usually an empty list: no condition at all).
        rows = list(
            Source.objects.filter(tenant_id=tenant_id, bot_profile=bot).values(
                "id",
                "source_type",
                "status",
                "config",
                "authority",
                "config_secrets_ciphertext",
                "name",
                "updated_at",
                "chunk_count",
                "is_active",
            )
        )
        sources = [row for row in rows if row["is_active"]]
        inactive = [str(row["id"]) for row in rows if not row["is_active"]]
        external = [
            nyxcore.SearchTarget(
                source_id=str(row["id"]),
                name=row["name"],
                base_url=row["config"]["base_url"],
                api_token=source_secrets(Source(config_secrets_ciphertext=row["config_secrets_ciphertext"])).get(
                    "api_token", ""
                ),
                limit=row["config"].get("limit", 10),
                authority=row["config"].get("authority"),
            )
            for row in sources
            if row["source_type"] == SourceType.NYXCORE and row["status"] == SourceStatus.READY
        ]
    local_sources = [row for row in sources if row["source_type"] != SourceType.NYXCORE]
    # The bot's sources as they stand: any ingestion, deletion or (de)activation changes this.
    version = hashlib.blake2b(
        repr(sorted((str(r["id"]), r["updated_at"].isoformat(), r["chunk_count"]) for r in local_sources)).encode(),
        digest_size=16,
    ).hexdigest()
    return _BotSearchPlan(
        tenant_id=tenant_id,
        bot_profile_id=bot.pk,
        embedding_model=bot.embedding_model,
        embedding_endpoint=bot_model_endpoint(bot, bot.embedding_model),
        embeds_in_process=runs_in_process(bot.embedding_model),
        rewrite_endpoint=bot_model_endpoint(bot, rewrite_model_of(bot) or bot.model),
        top_k=bot.top_k,
        similarity_threshold=bot.similarity_threshold,
        has_local_sources=bool(local_sources),
        inactive_source_ids=inactive,
        external=external,
        term_statistics=(
            bot_term_statistics(tenant_id=tenant_id, bot_profile_id=bot.pk, version=version) if local_sources else None
        ),
    )


@dataclass(frozen=True)
class _LocalResult:
    candidates: list[Candidate]
    embed_ms: int = 0
    search_ms: int = 0

    @property
    def chunks(self) -> list[RetrievedChunk]:
        return [candidate.chunk for candidate in self.candidates if candidate.passed]

    @property
    def best_score(self) -> float | None:
        return max((candidate.chunk.score for candidate in self.candidates), default=None)


def relevance(dense: float, lexical_share: float) -> float:
    """What local chunks are ordered by: the mean of the chunk's meaning (its cosine to the
    question) and its words (its BM25 as a share of the most any chunk could score), both 0..1.

    Measured on the evaluation sets (docs/quality.md), scores beat ranks: against reciprocal rank
    fusion of the same candidates, this order puts the gold passage first more often on every set
    (+0.03 to +0.08 recall@1), and in the top five as often or more. Equal weights, not a fitted
    mix: the best fitted weights differ from set to set and gain little over them."""
    return (dense + lexical_share) / 2


def _searches_locally(plan: _BotSearchPlan) -> bool:
    return plan.has_local_sources and plan.term_statistics is not None


class QuestionVectors:
    """The vectors of recently asked questions, least recently used out first.

    A widget's visitors ask the same few questions again and again ("opening hours?"), and the
    question's embedding is the largest CPU cost of a turn with the offline model (a network
    round trip with a hosted one). A vector depends only on the model, the endpoint and the exact
    text, so it is reused as is. Kept per tenant: whether another tenant asked a question lately
    must not show in how fast this one's answer starts."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._vectors: OrderedDict[tuple[object, ...], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(plan: _BotSearchPlan, question: str) -> tuple[object, ...]:
        endpoint = plan.embedding_endpoint
        return (
            plan.tenant_id,
            plan.embedding_model,
            endpoint.api_base,
            endpoint.api_version,
            endpoint.api_key,
            tuple(sorted(endpoint.headers.items())),
            question,
        )

    def get(self, key: tuple[object, ...]) -> np.ndarray | None:
        with self._lock:
            vector = self._vectors.get(key)
            if vector is not None:
                self._vectors.move_to_end(key)
            return vector

    def put(self, key: tuple[object, ...], vector: np.ndarray) -> None:
        if self.capacity <= 0:
            return
        vector.flags.writeable = False  # shared by every turn that asks the same
        with self._lock:
            self._vectors[key] = vector
            self._vectors.move_to_end(key)
            while len(self._vectors) > self.capacity:
                self._vectors.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._vectors.clear()


question_vectors = QuestionVectors(settings.QUESTION_VECTORS_CACHED)


def _embed_question(plan: _BotSearchPlan, question: str) -> tuple[np.ndarray, int]:
    """The question's vector, and the milliseconds it took."""
    began = time.perf_counter()
    plan.embedding_endpoint.ensure_usable()  # a withdrawn connection fails even for a known question
    key = QuestionVectors.key(plan, question)
    vector = question_vectors.get(key)
    if vector is None:
        vector = embed_texts([question], model=plan.embedding_model, endpoint=plan.embedding_endpoint).vectors[0]
        question_vectors.put(key, vector)
    return vector, round((time.perf_counter() - began) * 1000)


def _local_search(plan: _BotSearchPlan, question: str, embedded: tuple[np.ndarray, int] | None = None) -> _LocalResult:
    """The bot's own chunks for `question`: embedded here unless `embedded` (its vector and the
    milliseconds that took) is given, then searched and weighed."""
    if not _searches_locally(plan):
        return _LocalResult([])
    vector, embed_ms = embedded or _embed_question(plan, question)
    embedded_at = time.perf_counter()
    hits = get_vector_store().search(
        collection_name(plan.embedding_model),
        vector,
        tenant_id=plan.tenant_id,
        bot_profile_id=plan.bot_profile_id,
        lexical_query=lexical.query_vector(question, plan.term_statistics),
        exclude_source_ids=plan.inactive_source_ids,
        limit=max(plan.top_k, RESCORED_CANDIDATES),
    )
    search_ms = round((time.perf_counter() - embedded_at) * 1000)
    question_terms = lexical.terms(question)
    matches = [lexical.match(question_terms, str(hit.payload.get("content", "")), plan.term_statistics) for hit in hits]
    # (A dense-only search, where no word of the question is in the bot's chunks, has no lexical
    # half: it keeps its cosine order.) Ties keep the fusion's order: the sort is stable.
    scored = [
        (hit, found, relevance(hit.score, found.share) if hit.fused is not None else None)
        for hit, found in zip(hits, matches, strict=True)
    ]
    scored.sort(key=lambda item: -(item[0].score if item[2] is None else item[2]))
    candidates = []
    for hit, found, fused in scored[: plan.top_k]:
        chunk = RetrievedChunk(
            chunk_id=hit.id,
            content=str(hit.payload.get("content", "")),
            score=hit.score,
            source_id=hit.payload.get("source_id"),
            source_name=str(hit.payload.get("source_name", "")),
            title=str(hit.payload.get("title", "")),
            url=str(hit.payload.get("url", "")),
            authority=_local_authority(hit.payload.get("authority")),
        )
        verdict = assess(dense=hit.score, coverage=found.coverage, threshold=plan.similarity_threshold)
        candidates.append(
            Candidate(
                chunk=chunk,
                lexical=found.score,
                coverage=found.coverage,
                fused=fused,
                passed=verdict.passed,
                reason=verdict.reason,
            )
        )
    return _LocalResult(candidates, embed_ms, search_ms)


async def _search_own_chunks(plan: _BotSearchPlan, question: str, admission: Ticket | None) -> _LocalResult:
    """`_local_search` off the event loop, on the turns' own threads (chat/admission.py). An
    embedding model on the network is waited for outside the turn's slot (that is I/O, not CPU)."""
    if not _searches_locally(plan):
        return _LocalResult([])
    if plan.embeds_in_process:
        return await run_cpu_bound(_local_search, plan, question)
    async with stepping_aside(admission):
        embedded = await sync_to_async(_embed_question, thread_sensitive=False)(plan, question)
    return await run_cpu_bound(_local_search, plan, question, embedded)


def _local_authority(value: object) -> str | None:
    # A local source left at the default (informational) is a plain local chunk for ordering.
    return value if value in ("mandatory", "guideline") else None


def ordered(local: list[RetrievedChunk], external: list[RetrievedChunk]) -> list[RetrievedChunk]:
    """By authority first (mandatory, guideline, informational, then plain local chunks: the v1
    order), then by relevance. Local chunks keep the order the hybrid search gave them (it weighs
    words and meaning; their `score`, the cosine, is one half of that); external results are
    ranked by their own score; where both share an authority they are merged by score."""
    merged: list[RetrievedChunk] = []
    for rank in sorted({chunk.rank for chunk in (*local, *external)}):
        mine = [chunk for chunk in local if chunk.rank == rank]
        theirs = sorted((chunk for chunk in external if chunk.rank == rank), key=lambda chunk: -chunk.score)
        while mine or theirs:
            take_mine = bool(mine) and (not theirs or mine[0].score >= theirs[0].score)
            merged.append((mine if take_mine else theirs).pop(0))
    return merged


async def retrieve(
    *,
    tenant_id: uuid.UUID,
    bot: BotProfile,
    question: str,
    history: Sequence[dict[str, str]] = (),
    admission: Ticket | None = None,
) -> Retrieval:
    """The evidence for `question`, asked after `history` (a follow-up is resolved against it first).

    `admission`: the turn's place at the admission gate (chat/admission.py), holding a slot. The
    CPU-bound work runs in it; whatever waits for the network — a model rewriting a follow-up, an
    embedding model on the network, external search services — steps aside meanwhile, so a slot
    is never idle while others wait."""
    plan = await sync_to_async(releasing_connection(_search_plan))(tenant_id, bot)
    rewrites_with_a_model = rewrite_model_of(bot) is not None and is_follow_up(question, history)
    async with stepping_aside(admission if rewrites_with_a_model else None):
        searched = await question_to_search(bot=bot, history=history, question=question, endpoint=plan.rewrite_endpoint)
    question = searched.text
    # External services answer while the local search runs.
    externals = [asyncio.ensure_future(nyxcore.search(target, question)) for target in plan.external]
    try:
        local_result = await _search_own_chunks(plan, question, admission)
    except BaseException:
        for pending in externals:
            pending.cancel()
        raise
    external_results: list[object] = []
    if externals:
        async with stepping_aside(admission if not all(task.done() for task in externals) else None):
            external_results = await asyncio.gather(*externals, return_exceptions=True)
    external_chunks: list[RetrievedChunk] = []
    warnings: list[str] = []
    for target, result in zip(plan.external, external_results, strict=True):
        if isinstance(result, BaseException):
            # A failing external service is skipped: the turn goes on with what the others found.
            logger.warning("External search %s failed: %s", target.source_id, result)
            warnings.append(f"{target.name}: {getattr(result, 'message', result)}")
            continue
        external_chunks.extend(
            RetrievedChunk(
                chunk_id=hit.chunk_id,
                content=hit.content,
                score=hit.score,
                source_id=target.source_id,
                source_name=hit.filename or target.name,
                title=hit.heading,
                authority=hit.authority,
                origin="nyxcore",
            )
            for hit in result
        )
    return Retrieval(
        chunks=ordered(local_result.chunks, external_chunks),
        best_local_score=local_result.best_score,
        search_ms=local_result.search_ms,
        embed_ms=local_result.embed_ms,
        warnings=warnings,
        candidates=local_result.candidates,
        searched=searched,
    )
