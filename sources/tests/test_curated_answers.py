"""Curated answers (`/v1/curated-answers`): teaching a bot the right answer to a question, from one
of its answers or from an unanswered question, and what the bot answers afterwards."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from bots.tests.factories import BotProfileFactory
from conftest import TenantWorld
from minirag.local_models.extractive import get_extractive_model
from minirag.prompt_format import ContextItem, render_context
from minirag.vectorstore import collection_name, get_vector_store
from sources import lifecycle
from sources.curated import curated_answer_create, curated_answer_delete
from sources.ingestion import plan_chunks
from sources.loaders import load_documents
from sources.models import CuratedAnswer, Source, SourceStatus
from tenants.models import Tenant
from tenants.tenancy import tenant_scope

pytestmark = pytest.mark.django_db

SHAPE = {
    "id",
    "tenant_id",
    "bot_profile_id",
    "question",
    "answer",
    "message_id",
    "source_id",
    "status",
    "error_message",
    "created_at",
    "updated_at",
    "created_by_name",
}
QUESTION = "Do you have parking spaces for visitors?"
PARAPHRASE = "Is there visitor parking?"
ANSWER = "Yes. There are six visitor parking spaces behind the building, free for two hours."
NEW_ANSWER = "Visitors park in the garage under the building, on level -1."


def ask(world: TenantWorld, message: str, **body: Any) -> dict[str, Any]:
    response = world.client().post(
        "/v1/chat", {"bot_profile_id": str(world.bot.pk), "message": message, **body}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def teach(world: TenantWorld, capture: Any, who: str = "owner", **body: Any) -> Any:
    """POST /v1/curated-answers, running what it queues once committed (its ingestion)."""
    with capture(execute=True):
        return world.client(who).post("/v1/curated-answers", body, format="json")


def cited(turn: dict[str, Any]) -> set[str]:
    return {source["source_id"] for source in turn["sources"]}


def vectors_of(world: TenantWorld, source_id: str) -> int:
    return get_vector_store().count(
        collection_name(world.bot.embedding_model), tenant_id=world.tenant.pk, source_ids=[source_id]
    )


# --- Teaching: the bot answers from it, then the changed answer, then nothing ----------------------


def test_a_refused_question_taught_from_its_answer_is_answered_from_the_curated_answer(
    alpha: TenantWorld, django_capture_on_commit_callbacks: Any
) -> None:
    refused = ask(alpha, QUESTION)
    assert refused["sources"] == [] and refused["message"]["content"] == alpha.bot.refusal_message

    created = teach(alpha, django_capture_on_commit_callbacks, message_id=refused["message"]["id"], answer=ANSWER)
    assert created.status_code == 201, created.content
    curated = created.json()
    assert set(curated) == SHAPE
    # The question the visitor asked before that answer, and the chat's bot.
    assert curated["question"] == QUESTION and curated["bot_profile_id"] == str(alpha.bot.pk)
    assert curated["message_id"] == refused["message"]["id"] and curated["source_id"] == curated["id"]
    assert curated["created_by_name"] == alpha.owner.display_name or alpha.owner.email
    # Ingested at once (its ingestion is queued when the request commits).
    assert alpha.client().get(f"/v1/curated-answers/{curated['id']}").json()["status"] == "ready"

    # The same question, in the same chat and in a new one, and a paraphrase sharing its main words.
    for turn in (
        ask(alpha, QUESTION, chat_id=refused["chat_id"]),
        ask(alpha, QUESTION),
        ask(alpha, PARAPHRASE),
    ):
        assert curated["id"] in cited(turn)
        assert turn["sources"][0]["source_id"] == curated["id"]  # mandatory: first in the context
        assert turn["sources"][0]["authority"] == "mandatory"
        content = turn["message"]["content"]
        assert "There are six visitor parking spaces behind the building" in content, content
        assert "[1]" in content and QUESTION not in content  # the answer is quoted, not the question

    with django_capture_on_commit_callbacks(execute=True):  # its new ingestion
        changed = alpha.client().patch(f"/v1/curated-answers/{curated['id']}", {"answer": NEW_ANSWER}, format="json")
    assert changed.status_code == 200 and changed.json()["answer"] == NEW_ANSWER
    turn = ask(alpha, QUESTION)
    assert "garage under the building" in turn["message"]["content"]
    assert "six visitor parking spaces" not in turn["message"]["content"]

    with django_capture_on_commit_callbacks(execute=True):
        assert alpha.client().delete(f"/v1/curated-answers/{curated['id']}").status_code == 204
    assert vectors_of(alpha, curated["id"]) == 0
    gone = ask(alpha, QUESTION)
    assert gone["sources"] == [] and gone["message"]["content"] == alpha.bot.refusal_message
    assert alpha.client().get(f"/v1/curated-answers/{curated['id']}").status_code == 404
    assert alpha.client().get(f"/v1/sources/{curated['id']}").status_code == 404


def test_a_wrong_answer_is_corrected_and_the_curated_answer_leads(
    alpha: TenantWorld, django_capture_on_commit_callbacks: Any
) -> None:
    wrong = ask(alpha, "How long do refunds at alpha take?")
    assert str(alpha.text_source.pk) in cited(wrong)
    created = teach(
        alpha,
        django_capture_on_commit_callbacks,
        message_id=wrong["message"]["id"],
        answer="Refunds at alpha take ten working days since the first of March.",
    ).json()
    turn = ask(alpha, "How long do refunds at alpha take?")
    assert turn["sources"][0]["source_id"] == created["id"]
    assert turn["message"]["content"].startswith("Refunds at alpha take ten working days")


# --- The API: shapes, filters, defaults and refusals -----------------------------------------------


def test_create_list_read_change_delete(
    alpha: TenantWorld, beta: TenantWorld, django_capture_on_commit_callbacks: Any
) -> None:
    created = teach(
        alpha,
        django_capture_on_commit_callbacks,
        bot_profile_id=str(alpha.bot.pk),
        question="  Where   is the\nentrance?  ",
        answer="  Round the back, by the bike racks.\n\nRing twice.  ",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["question"] == "Where is the entrance?"  # one line, as it is searched and shown
    assert body["answer"] == "Round the back, by the bike racks.\n\nRing twice."
    assert body["message_id"] is None and body["tenant_id"] == str(alpha.tenant.pk)

    listed = alpha.client("member").get("/v1/curated-answers")
    assert listed.status_code == 200 and listed["X-Total-Count"] == "2"  # with the fixture's
    assert [item["id"] for item in listed.json()] == [body["id"], str(alpha.curated_answer.pk)]
    assert alpha.client().get(f"/v1/curated-answers?bot_profile_id={uuid.uuid4()}").json() == []
    assert beta.client().get("/v1/curated-answers").json()[0]["id"] == str(beta.curated_answer.pk)
    read = alpha.client("member").get(f"/v1/curated-answers/{body['id']}").json()
    assert read["status"] == "ready" and read["question"] == body["question"]

    # It is a source of the bot too: a mandatory `qa` source, named after its question.
    source = alpha.client().get(f"/v1/sources/{body['id']}").json()
    assert (source["source_type"], source["authority"], source["name"]) == ("qa", "mandatory", body["question"])
    assert source["config"]["question"] == body["question"] and source["chunk_count"] == 1

    with django_capture_on_commit_callbacks(execute=True):
        changed = alpha.client().patch(
            f"/v1/curated-answers/{body['id']}", {"question": "Where is the way in?"}, format="json"
        )
    assert changed.status_code == 200, changed.content
    assert changed.json()["question"] == "Where is the way in?" and changed.json()["answer"] == body["answer"]
    assert alpha.client().get(f"/v1/curated-answers/{body['id']}").json()["status"] == "ready"
    with tenant_scope(alpha.tenant):
        chunk = Source.objects.get(pk=body["id"]).chunks.get()
    assert chunk.content.startswith("# Where is the way in?\n")

    with django_capture_on_commit_callbacks(execute=True):
        assert alpha.client().delete(f"/v1/curated-answers/{body['id']}").status_code == 204
    with tenant_scope(alpha.tenant):
        assert not Source.objects.filter(pk=body["id"]).exists()  # deleted, not deactivated
    assert alpha.client().delete(f"/v1/curated-answers/{body['id']}").status_code == 404


def test_bad_input_is_422_with_the_field(alpha: TenantWorld, beta: TenantWorld) -> None:
    bot = str(alpha.bot.pk)
    cases = [
        ({"bot_profile_id": bot, "question": "Why?", "answer": "   "}, "answer"),
        ({"bot_profile_id": bot, "question": "   ", "answer": "Because."}, "question"),
        ({"bot_profile_id": bot, "question": "q" * 1001, "answer": "Because."}, "question"),
        ({"bot_profile_id": bot, "question": "Why?", "answer": "a" * 4001}, "answer"),
        ({"bot_profile_id": bot, "answer": "Because."}, "question"),  # no question and no message to take it from
        ({"question": "Why?", "answer": "Because."}, "bot_profile_id"),
        ({"bot_profile_id": str(beta.bot.pk), "question": "Why?", "answer": "Because."}, "bot_profile_id"),
        ({"bot_profile_id": bot, "question": 7, "answer": "Because."}, "question"),
        ({"message_id": "not-a-uuid", "answer": "Because."}, "message_id"),
    ]
    for body, field in cases:
        response = alpha.client().post("/v1/curated-answers", body, format="json")
        assert response.status_code == 422, (body, response.content)
        assert field in response.json()["errors"] and response.json()["detail"], (body, response.json())
    # The longest question and answer are accepted.
    accepted = alpha.client().post(
        "/v1/curated-answers", {"bot_profile_id": bot, "question": "q" * 1000, "answer": "a" * 4000}, format="json"
    )
    assert accepted.status_code == 201
    assert (
        alpha.client().patch(f"/v1/curated-answers/{accepted.json()['id']}", {"answer": ""}, format="json").status_code
        == 422
    )


def test_the_corrected_message_must_be_an_answer_the_caller_may_read(alpha: TenantWorld, beta: TenantWorld) -> None:
    with tenant_scope(beta.tenant):
        beta_answer = str(beta.bot.chats.first().messages.filter(role="assistant").first().pk)
    with tenant_scope(alpha.tenant):
        chat = alpha.bot.chats.order_by("created_at").first()
        question = chat.messages.get(role="user")
        answer = chat.messages.get(role="assistant")

    def create(**body: Any) -> Any:
        return alpha.client().post("/v1/curated-answers", {"answer": "Because.", **body}, format="json")

    # Another tenant's answer reads exactly like one that never existed.
    foreign, missing = create(message_id=beta_answer), create(message_id=str(uuid.uuid4()))
    assert foreign.status_code == missing.status_code == 422
    assert (
        foreign.json()
        == missing.json()
        == {
            "detail": "message_id: Message not found.",
            "errors": {"message_id": ["Message not found."]},
        }
    )
    visitor = create(message_id=str(question.pk))
    assert visitor.status_code == 422 and "Only an answer of the bot" in visitor.json()["detail"]
    with tenant_scope(alpha.tenant):
        other_bot = BotProfileFactory(tenant=alpha.tenant, name="other bot")
    mismatched = create(message_id=str(answer.pk), bot_profile_id=str(other_bot.pk))
    assert mismatched.status_code == 422 and "another bot" in mismatched.json()["errors"]["bot_profile_id"][0]
    # An explicit question wins over the one asked before the answer.
    explicit = create(message_id=str(answer.pk), question="How quick are refunds?")
    assert explicit.status_code == 201 and explicit.json()["question"] == "How quick are refunds?"


def test_operators_write_them_any_role_reads_them(alpha: TenantWorld) -> None:
    body = {"bot_profile_id": str(alpha.bot.pk), "question": "Is there a lift?", "answer": "Yes, by the stairs."}
    url = f"/v1/curated-answers/{alpha.curated_answer.pk}"
    # Members are operators while the workspace lets them read every chat (the default)...
    assert alpha.client("member").post("/v1/curated-answers", body, format="json").status_code == 201
    Tenant.objects.filter(pk=alpha.tenant.pk).update(members_see_all_chats=False)
    # ... and not otherwise: they still read curated answers, as they read sources.
    refused = alpha.client("member").post("/v1/curated-answers", body, format="json")
    assert refused.status_code == 403 and "owners and admins" in refused.json()["detail"]
    assert alpha.client("member").patch(url, {"answer": "No."}, format="json").status_code == 403
    assert alpha.client("member").delete(url).status_code == 403
    assert alpha.client("member").get(url).status_code == 200
    assert alpha.client("admin").patch(url, {"answer": "No."}, format="json").status_code == 200
    # The widget's token does none of it.
    assert alpha.client("bot").get("/v1/curated-answers").status_code == 403
    assert alpha.client("bot").post("/v1/curated-answers", body, format="json").status_code == 403


def test_the_sources_api_leaves_curated_answers_to_their_own_routes(alpha: TenantWorld) -> None:
    created = alpha.client().post(
        "/v1/sources",
        {"bot_profile_id": str(alpha.bot.pk), "name": "FAQ", "source_type": "qa", "content": "Yes."},
        format="json",
    )
    assert created.status_code == 422 and "/v1/curated-answers" in created.json()["errors"]["source_type"][0]
    url = f"/v1/sources/{alpha.curated_answer.pk}"
    for change in ({"content": "No."}, {"name": "Other"}, {"authority": "informational"}, {"config": {}}):
        response = alpha.client().patch(url, change, format="json")
        assert response.status_code == 422, change
        assert f"/v1/curated-answers/{alpha.curated_answer.pk}" in response.json()["detail"]
    assert alpha.client().patch(url, {"description": "From the FAQ"}, format="json").status_code == 200
    # Deactivated as a source, it is no longer one of the bot's curated answers.
    assert alpha.client().delete(url).status_code == 204
    assert alpha.client().get(f"/v1/curated-answers/{alpha.curated_answer.pk}").status_code == 404


def test_a_change_while_it_is_being_indexed_is_a_conflict(alpha: TenantWorld) -> None:
    url = f"/v1/curated-answers/{alpha.curated_answer.pk}"
    with tenant_scope(alpha.tenant):
        Source.objects.filter(pk=alpha.curated_answer.pk).update(status=SourceStatus.PROCESSING)
    conflict = alpha.client().patch(url, {"answer": "They expire after a year."}, format="json")
    assert conflict.status_code == 409 and "being indexed" in conflict.json()["detail"]
    # Queued, not yet running: the run to come reads the new text, nothing else is queued.
    with tenant_scope(alpha.tenant):
        Source.objects.filter(pk=alpha.curated_answer.pk).update(status=SourceStatus.QUEUED)
    queued = alpha.client().patch(url, {"answer": "They expire after a year."}, format="json")
    assert queued.status_code == 200 and queued.json()["status"] == "queued"


# --- Ingestion and the offline answerer ------------------------------------------------------------


def test_each_chunk_carries_the_question_as_its_heading(alpha: TenantWorld) -> None:
    long_answer = " ".join(f"Step {n}: do the thing number {n} carefully." for n in range(1, 40))
    with tenant_scope(alpha.tenant):
        curated = curated_answer_create(
            tenant=alpha.tenant, bot_profile=alpha.bot, question="How do I set up the printer?", answer=long_answer
        )
        documents = load_documents(curated)
    chunks = plan_chunks(curated.pk, documents, size=alpha.bot.chunk_size, overlap=alpha.bot.chunk_overlap)
    assert len(chunks) > 1
    assert all(chunk.content.startswith("# How do I set up the printer?\n") for chunk in chunks)
    assert documents[0].title == "How do I set up the printer?"


@pytest.mark.parametrize(
    ("answer", "asked", "quoted"),
    [
        (
            "Yes. Dogs are welcome on Fridays if they are on a lead.",
            "Are dogs allowed in your office?",
            "Yes. [1] Dogs are welcome on Fridays if they are on a lead. [1]",
        ),
        ("Every weekday from 9 to 5", "When can I bring my dog to the office?", "Every weekday from 9 to 5. [1]"),
    ],
)
def test_the_offline_model_quotes_the_answer_under_the_question(answer: str, asked: str, quoted: str) -> None:
    """A curated answer's chunk is a heading that is the question and the answer under it: the whole
    answer is quoted, with its citation, and the question never is."""
    items = [
        ContextItem(1, f"# Can I bring my dog to the office?\n{answer}", "Can I bring my dog?", label="MANDATORY"),
        ContextItem(2, "The office opens at nine. Refunds take five working days.", "Handbook"),
    ]
    messages = [{"role": "system", "content": render_context(items)}, {"role": "user", "content": asked}]
    result = get_extractive_model().answer(messages)
    assert (result.kind, result.text) == ("answer", quoted)


def test_a_curated_answer_deleted_while_it_is_indexed_leaves_no_vectors(alpha: TenantWorld) -> None:
    curated_id = alpha.curated_answer.pk
    with tenant_scope(alpha.tenant):
        Source.objects.filter(pk=curated_id).update(status=SourceStatus.QUEUED)
    written: list[int] = []

    def delete_once_indexed(source: Source) -> None:
        if source.chunks_done:  # its vector is written: delete it as the API does, mid-run
            written.append(vectors_of(alpha, str(curated_id)))
            curated_answer_delete(tenant=alpha.tenant, curated=CuratedAnswer.objects.get(pk=curated_id))

    with tenant_scope(alpha.tenant), lifecycle.listening_to_progress(delete_once_indexed):
        outcome = lifecycle.run_ingestion(tenant=alpha.tenant, source_id=curated_id)
    assert written == [1]
    assert outcome.status == "stale" and vectors_of(alpha, str(curated_id)) == 0
