"""A question asked again is not embedded again (chat/retrieval.py QuestionVectors): the vector
is reused for the same tenant, model, endpoint and text, and nowhere else."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from chat import retrieval
from chat.retrieval import QuestionVectors
from chat.tests.conftest import add_knowledge
from conftest import TenantWorld


@pytest.fixture
def embedded_questions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every question text the chat embeds, in order."""
    embedded: list[str] = []
    real = retrieval.embed_texts

    def counting(texts: Any, **kwargs: Any) -> Any:
        embedded.extend(texts)
        return real(texts, **kwargs)

    monkeypatch.setattr(retrieval, "embed_texts", counting)
    return embedded


def ask(world: TenantWorld, question: str) -> dict[str, Any]:
    response = world.client("bot", HTTP_X_MINIRAG_VISITOR="visitor-1").post(
        "/v1/chat", {"message": question, "bot_profile_id": str(world.bot.pk)}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.django_db
def test_a_repeated_question_is_embedded_once_per_tenant(
    alpha: TenantWorld, beta: TenantWorld, embedded_questions: list[str]
) -> None:
    for world in (alpha, beta):
        add_knowledge(world, "Refunds", "Refunds take five working days from the day the parcel arrives.")
    question = "How long do refunds take?"
    first, again = ask(alpha, question), ask(alpha, question)
    assert embedded_questions.count(question) == 1
    # The same passage is found and cited both times: the reused vector is the vector.
    assert [s["chunk_id"] for s in first["sources"]] == [s["chunk_id"] for s in again["sources"]] != []
    ask(beta, question)  # another tenant's turn never reuses alpha's vector
    assert embedded_questions.count(question) == 2
    ask(alpha, "How long do refunds take? ")  # another text is another question
    assert embedded_questions.count(question) == 2 and len(embedded_questions) == 3


def test_the_least_recently_used_vector_goes_first() -> None:
    vectors = QuestionVectors(capacity=2)
    for name in ("a", "b"):
        vectors.put((name,), np.ones(3, dtype=np.float32))
    assert vectors.get(("a",)) is not None  # "a" is now the most recent
    vectors.put(("c",), np.zeros(3, dtype=np.float32))
    assert vectors.get(("b",)) is None and vectors.get(("a",)) is not None and vectors.get(("c",)) is not None
    with pytest.raises(ValueError):  # shared by every turn that asks the same: read-only
        vectors.get(("c",))[0] = 1.0
    disabled = QuestionVectors(capacity=0)
    disabled.put(("a",), np.ones(3, dtype=np.float32))
    assert disabled.get(("a",)) is None
