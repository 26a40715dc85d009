"""Local chunks are ordered by relevance — the mean of their cosine and their share of the best
possible BM25 — over a wider pool than the bot's top_k, not by the rank fusion that gathered them."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync

from chat import retrieval
from chat.retrieval import RESCORED_CANDIDATES, relevance, retrieve
from chat.tests.conftest import add_knowledge
from conftest import TenantWorld
from minirag import vectorstore
from minirag.lexical import TermStatistics, match, terms

FAQ = [
    ("Parking", "Guests park for free in the courtyard behind the hotel; the gate opens with the room card."),
    ("Breakfast", "Breakfast is served from 06:30 to 10:30 in the winter garden, and until 11:00 on Sundays."),
    ("Pets", "Dogs are welcome in the ground-floor rooms for a fee of 15 euros a night; cats are not."),
    ("Check-out", "Check-out is at 11:00. A late check-out until 14:00 costs 30 euros and depends on availability."),
    ("Sauna", "The sauna on the top floor is open from 16:00 to 22:00 and towels are handed out at the desk."),
    ("Bikes", "Bicycles can be rented at the desk for 12 euros a day, helmets included."),
    ("Wifi", "The wireless network is called Elmhotel-Guest; the password is printed on the room card."),
    ("Airport", "A shuttle to the airport leaves at 05:00, 08:00 and 12:00 and must be booked the day before."),
]


def test_the_lexical_share_is_bm25_against_the_best_any_chunk_could_score() -> None:
    texts = [text for _, text in FAQ]
    statistics = TermStatistics.of(texts)
    question = terms("Until when is breakfast served on Sundays?")
    full = match(question, texts[1], statistics)
    half = match(question, "Breakfast is a buffet.", statistics)
    none = match(question, texts[0], statistics)
    assert 0 < half.share < full.share < 1 and none.share == 0.0
    # A longer chunk holding the same words scores less, as BM25 does; the share follows it.
    padded = match(question, texts[1] + " " + " ".join(texts[2:]), statistics)
    assert padded.share < full.share and padded.coverage == full.coverage
    assert match([], texts[1], statistics).share == 0.0


@pytest.mark.django_db
def test_chunks_are_ordered_by_relevance_from_a_pool_wider_than_top_k(
    alpha: TenantWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, text in FAQ:
        add_knowledge(alpha, name, text)
    asked_for: list[int] = []
    real_search = vectorstore.VectorStore.search

    def counting_search(self: Any, *args: Any, **kwargs: Any) -> Any:
        asked_for.append(kwargs["limit"])
        return real_search(self, *args, **kwargs)

    monkeypatch.setattr(vectorstore.VectorStore, "search", counting_search)
    alpha.bot.top_k = 3
    found = async_to_sync(retrieve)(tenant_id=alpha.tenant.pk, bot=alpha.bot, question="When is breakfast on Sundays?")

    assert asked_for == [RESCORED_CANDIDATES]  # the pool, not the bot's top_k
    assert len(found.candidates) == 3
    question = terms("When is breakfast on Sundays?")
    statistics = retrieval._search_plan(alpha.tenant.pk, alpha.bot).term_statistics
    assert statistics is not None
    fused = [candidate.fused for candidate in found.candidates]
    for candidate in found.candidates:
        share = match(question, candidate.chunk.content, statistics).share
        assert candidate.fused == pytest.approx(relevance(candidate.chunk.score, share))
    assert fused == sorted(fused, reverse=True)  # type: ignore[type-var]
    assert "Breakfast is served" in found.candidates[0].chunk.content and found.candidates[0].passed
