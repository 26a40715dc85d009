"""The refusal decision reads the evidence (chat/evidence.py): meaning and the question's distinctive
words, not one raw cosine. The issue's own cases: a short mixed handbook and a one-line facts file
are answered; questions about something else are refused; the bot's threshold still governs both."""

from __future__ import annotations

import pytest

from chat.evidence import COVERAGE_NEEDED, MEANING_MARGIN, WORDS_ALLOWANCE, assess
from chat.tests.conftest import add_knowledge, ask
from conftest import TenantWorld
from minirag.lexical import TermStatistics, match, terms
from sources.selectors import bot_term_statistics
from tenants.tenancy import tenant_scope

HANDBOOK = (
    "Welcome to the Elm Street library. The reading room opens at 07:40 on weekdays and at 10:00 on Saturdays; "
    "it is closed on Sundays. Membership is free for residents and costs 25 euros a year for everyone else. "
    "Members may borrow up to eight books for three weeks. The lift is out of service for maintenance until "
    "14 March, so the upper floor is reached by the stairs."
)
FACTS = "Nordlys AS sells outdoor clothing. Our warehouse is in Tromsø, Norway. We ship to all EU countries."


def test_the_decision_at_its_edges() -> None:
    threshold = 0.30
    assert assess(dense=threshold + MEANING_MARGIN, coverage=0.0, threshold=threshold).passed
    assert not assess(dense=threshold + MEANING_MARGIN - 0.01, coverage=0.0, threshold=threshold).passed
    words_floor = threshold - WORDS_ALLOWANCE
    assert assess(dense=words_floor, coverage=COVERAGE_NEEDED, threshold=threshold).passed
    below = assess(dense=words_floor - 0.01, coverage=1.0, threshold=threshold)
    assert not below.passed and "too far" in below.reason
    lacking = assess(dense=words_floor + 0.01, coverage=COVERAGE_NEEDED - 0.01, threshold=threshold)
    assert not lacking.passed and "distinctive words" in lacking.reason
    assert assess(dense=-0.2, coverage=0.0, threshold=0.0).passed  # 0: every retrieved chunk
    assert not assess(dense=1.0, coverage=1.0, threshold=1.0).passed  # 1: nothing


def test_coverage_weighs_each_word_by_how_rare_it_is_in_the_bots_chunks() -> None:
    statistics = TermStatistics.of([HANDBOOK, FACTS, "Nordlys jackets are warm.", "Nordlys ships fast."])
    question = terms("Where is the Nordlys warehouse?")
    # "warehouse" is in one chunk of four, "Nordlys" in three: the chunk holding the rare word covers more.
    assert match(question, FACTS, statistics).coverage == 1.0
    only_name = match(question, "Nordlys jackets are warm.", statistics)
    assert 0 < only_name.coverage < 0.5 and only_name.score > 0
    assert match(terms("What is the capital of Peru?"), FACTS, statistics).coverage == 0.0


@pytest.mark.django_db
def test_short_and_mixed_documents_are_answered_and_other_questions_refused(alpha: TenantWorld) -> None:
    add_knowledge(alpha, "Handbook", HANDBOOK)
    add_knowledge(alpha, "Facts", FACTS)

    opens = ask(alpha, "When does the reading room open on weekdays?").json()
    assert opens["message"]["outcome"] == "answered" and "07:40" in opens["message"]["content"]
    warehouse = ask(alpha, "Where is the warehouse?").json()
    assert warehouse["message"]["outcome"] == "answered" and "Tromsø" in warehouse["message"]["content"]
    for off_topic in ("Who won the football world cup in 1954?", "How do I bake sourdough bread?"):
        assert ask(alpha, off_topic).json()["message"]["outcome"] == "refused", off_topic

    # The bot's threshold still governs the decision: raised, the same question is refused.
    alpha.client("admin").patch(f"/v1/bot-profiles/{alpha.bot.pk}", {"similarity_threshold": 0.8}, format="json")
    assert ask(alpha, "When does the reading room open on weekdays?").json()["message"]["outcome"] == "refused"


@pytest.mark.django_db
def test_the_term_statistics_follow_the_bots_sources(alpha: TenantWorld) -> None:
    def statistics(version: str) -> TermStatistics:
        return bot_term_statistics(tenant_id=alpha.tenant.pk, bot_profile_id=alpha.bot.pk, version=version)

    before = statistics("v0").documents  # the fixture's own knowledge
    source = add_knowledge(alpha, "Facts", FACTS)
    first = statistics("v1")
    assert first.documents == before + 1 and first.frequencies["warehous"] == 1
    assert statistics("v1") is first  # counted once per version
    add_knowledge(alpha, "Handbook", HANDBOOK)
    # A new version (the sources changed) counts the chunks as they are now, active sources only.
    second = statistics("v2")
    assert second.documents == before + 2 and second.frequencies["librari"] == 1
    with tenant_scope(alpha.tenant):
        source.is_active = False
        source.save(update_fields=["is_active"])
    third = statistics("v3")
    assert third.documents == before + 1 and "warehous" not in third.frequencies
