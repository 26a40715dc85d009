"""Follow-up questions are resolved against the conversation before searching (chat/followups.py),
and the question as searched is stored on the answer and shown in exports."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync

from chat import followups
from chat.followups import REWRITE_INSTRUCTIONS, SUBJECT_WORDS, is_follow_up, offline_rewrite, question_to_search
from chat.models import Message
from chat.tests.conftest import ModelSpy, add_knowledge, ask, use_model
from conftest import TenantWorld
from minirag.model_gateway import ModelError
from tenants.tenancy import tenant_scope

CLINIC = "Where is the dental clinic?"
HISTORY = [{"role": "user", "content": CLINIC}, {"role": "assistant", "content": "At Harbour Street 4 [1]."}]

KNOWLEDGE = {
    "Clinic": (
        "The dental clinic is at Harbour Street 4, next to the ferry terminal. "
        "Patients park free of charge in the clinic's own car park behind the building."
    ),
    "Gym": "The gym on Mill Road opens at six. Members may bring one guest a month; a guest pays 8 euros.",
    "Library": "The library lends up to ten books at once, for four weeks each.",
}


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Can I park there?", True),
        ("And for how long?", True),
        ("What about gaming?", True),
        ("Is that module safe to use for cryptography?", True),
        ("Can I pause it?", True),
        ("When does the office open?", False),
        ("Is there a limit on the number of guests at the gym on Mill Road?", False),
        ("Is it fine to run database migrations against SQLite in production environments?", False),
    ],
)
def test_what_reads_as_a_follow_up(message: str, expected: bool) -> None:
    assert is_follow_up(message, HISTORY) is expected
    assert is_follow_up(message, []) is False  # nothing to lean on


def test_the_offline_rewrite_adds_the_previous_subject_it_lacks() -> None:
    assert offline_rewrite("Can I park there?", HISTORY) == "Can I park there? dental clinic"
    # Every word of the previous question the message lacks, in order, common words and repeats
    # left out, at most SUBJECT_WORDS of them.
    previous = [{"role": "user", "content": "How can I add an index to a busy table without blocking the index?"}]
    assert offline_rewrite("Can I run that in a transaction?", previous) == (
        "Can I run that in a transaction? add index busy table without blocking"
    )
    long = [{"role": "user", "content": " ".join(f"word{n}" for n in range(20))}]
    assert offline_rewrite("And then?", long).split()[2:] == [f"word{n}" for n in range(SUBJECT_WORDS)]


def test_a_standalone_question_is_searched_as_asked_without_a_model_call(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_call(**_: Any) -> None:
        raise AssertionError("a standalone question needs no rewrite")

    monkeypatch.setattr("chat.followups.acomplete", no_call)
    bot = type("Bot", (), {"model": "gpt-4o-mini", "rewrite_model": ""})()
    searched = async_to_sync(question_to_search)(bot=bot, history=HISTORY, question="When does the gym open?")
    assert (searched.text, searched.method) == ("When does the gym open?", "as asked")


def test_a_failing_rewrite_model_falls_back_to_the_offline_rewrite(monkeypatch: pytest.MonkeyPatch) -> None:
    async def failing(**_: Any) -> None:
        raise ModelError("rate limited", transient=True)

    monkeypatch.setattr("chat.followups.acomplete", failing)
    bot = type("Bot", (), {"model": "gpt-4o-mini", "rewrite_model": ""})()
    searched = async_to_sync(question_to_search)(bot=bot, history=HISTORY, question="Can I park there?")
    assert (searched.text, searched.method) == ("Can I park there? dental clinic", "offline")


def test_the_rewrite_model_is_the_bots_own_unless_offline() -> None:
    assert (
        followups.rewrite_model_of(type("B", (), {"model": "gpt-4o", "rewrite_model": "gpt-4o-mini"})())
        == "gpt-4o-mini"
    )
    assert followups.rewrite_model_of(type("B", (), {"model": "gpt-4o", "rewrite_model": ""})()) == "gpt-4o"
    assert followups.rewrite_model_of(type("B", (), {"model": "local/extractive", "rewrite_model": ""})()) is None


@pytest.fixture
def knowledge(alpha: TenantWorld) -> dict[str, str]:
    return {name: str(add_knowledge(alpha, name, text).pk) for name, text in KNOWLEDGE.items()}


@pytest.mark.django_db
def test_an_offline_follow_up_finds_its_subject_and_the_answer_records_the_search(
    alpha: TenantWorld, knowledge: dict[str, str]
) -> None:
    first = ask(alpha, CLINIC).json()
    assert first["sources"][0]["source_id"] == knowledge["Clinic"]
    assert first["message"]["searched_question"] == CLINIC

    follow_up = ask(alpha, "Can I park there?", chat_id=first["chat_id"]).json()
    assert follow_up["message"]["outcome"] == "answered"
    assert follow_up["sources"][0]["source_id"] == knowledge["Clinic"]
    assert "car park" in follow_up["message"]["content"]
    assert follow_up["message"]["searched_question"] == "Can I park there? dental clinic"

    # Asked with no conversation, the same words have no subject to search for.
    alone = ask(alpha, "Can I park there?").json()
    assert alone["message"]["searched_question"] == "Can I park there?"

    exported = alpha.client().get(f"/v1/chat/{first['chat_id']}/export").json()
    searched = [m["searched_question"] for m in exported["messages"] if m["role"] == "assistant"]
    assert searched == [CLINIC, "Can I park there? dental clinic"]
    with tenant_scope(alpha.tenant):
        stored = Message.objects.get(pk=follow_up["message"]["id"])
    assert stored.searched_question == "Can I park there? dental clinic"


@pytest.mark.django_db
def test_with_a_model_one_condensing_call_resolves_the_follow_up(
    alpha: TenantWorld, knowledge: dict[str, str], model_spy: ModelSpy
) -> None:
    use_model(alpha, "gpt-4o", rewrite_model="gpt-4o-mini")
    model_spy.mock(mock_response="Can patients park at the dental clinic?")
    chat_id = ask(alpha, CLINIC).json()["chat_id"]
    assert [call["model"] for call in model_spy.calls] == ["gpt-4o"]  # standalone: no rewrite call

    follow_up = ask(alpha, "Can I park there?", chat_id=chat_id).json()
    rewrite, answer = model_spy.calls[1:]
    assert rewrite["model"] == "gpt-4o-mini" and answer["model"] == "gpt-4o"
    assert rewrite["messages"][0]["content"] == REWRITE_INSTRUCTIONS and rewrite["temperature"] == 0.0
    assert CLINIC in rewrite["messages"][1]["content"] and "Can I park there?" in rewrite["messages"][1]["content"]
    assert follow_up["message"]["searched_question"] == "Can patients park at the dental clinic?"
    assert follow_up["sources"][0]["source_id"] == knowledge["Clinic"]
    # The answering model still gets the visitor's own words, after the history.
    assert answer["messages"][-1] == {"role": "user", "content": "Can I park there?"}
