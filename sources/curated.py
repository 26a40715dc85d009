"""Curated answers: teaching a bot the right answer to a question.

From one of the bot's answers (a wrong one, or a refusal), or from a question on the unanswered
list, an operator writes the answer the bot should have given. It is stored as a source of the bot
(`source_type` `qa`, the `CuratedAnswer` proxy of `Source`) with `mandatory` authority and ingested
at once: its chunks start with the question as a heading (sources/loaders.py), so the same and
similar questions find it by meaning and by words, the prompt puts it first as a binding rule, and
the answer cites it like any other source.

Reads and writes of curated answers live here, beside the generic ones of sources/selectors.py and
sources/services.py; who may write them (the tenant's operators) is decided by the caller.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from bots.models import BotProfile
from chat.models import Message
from chat.selectors import readable_chats
from minirag.errors import ConflictError, InvalidInputError
from minirag.lookups import get_by_id_or_404, parse_uuid
from minirag.sentinels import UNSET
from sources.events import publish_source_event
from sources.models import Authority, CuratedAnswer, SourceStatus, SourceType
from sources.services import queue_ingestion_on_commit, remove_source_vectors, set_indexed_payload
from tenants.authentication import Principal
from tenants.models import Tenant

QUESTION_MAX_CHARS = 1000
ANSWER_MAX_CHARS = 4000
NAME_MAX_CHARS = 200  # Source.name: the question, as lists and citations show it

# --- Reads ------------------------------------------------------------------------------------


def curated_answer_list(*, tenant: Tenant, bot_profile_id: uuid.UUID | None = None) -> QuerySet[CuratedAnswer]:
    """The tenant's curated answers, newest first. A curated answer deactivated through the sources
    API (`DELETE /v1/sources/{id}`) is no longer part of its bot's knowledge, and not listed."""
    answers = CuratedAnswer.objects.filter(tenant=tenant, is_active=True).select_related("bot_profile")
    if bot_profile_id is not None:
        answers = answers.filter(bot_profile_id=bot_profile_id)
    return answers.order_by("-created_at", "-pk")


def curated_answer_get(*, tenant: Tenant, curated_answer_id: Any) -> CuratedAnswer:
    return get_by_id_or_404(curated_answer_list(tenant=tenant), curated_answer_id, label="Curated answer")


def answered_message_get(*, principal: Principal, message_id: Any) -> Message:
    """A message named in a request body, in a chat `principal` may read (chat/selectors.py). An
    unknown id, another tenant's and one in a chat the caller may not read are invalid input (422),
    worded exactly alike, so that none of them can be told apart."""
    parsed = parse_uuid(message_id)
    chats = readable_chats(principal=principal)
    message = (
        Message.objects.filter(tenant=principal.tenant, chat__in=chats, pk=parsed)
        .select_related("chat__bot_profile")
        .first()
        if parsed is not None
        else None
    )
    if message is None:
        raise InvalidInputError.for_field("message_id", "Message not found.")
    return message


def question_before(message: Message) -> str:
    """The question an answer answered: the visitor's (or user's) message right before it in its
    chat; "" when there is none."""
    asked = (
        Message.objects.filter(
            tenant_id=message.tenant_id,
            chat_id=message.chat_id,
            role=Message.Role.USER,
            created_at__lte=message.created_at,
        )
        .exclude(pk=message.pk)
        .order_by("-created_at", "-pk")
        .values_list("content", flat=True)
        .first()
    )
    return asked or ""


# --- Writes -----------------------------------------------------------------------------------


def _clean_question(question: str) -> str:
    """One line: a question is searched and shown as one (it is the heading of the answer's text)."""
    folded = " ".join(question.split())
    if not folded:
        raise InvalidInputError.for_field("question", "Write the question the answer is for.")
    if len(folded) > QUESTION_MAX_CHARS:
        raise InvalidInputError.for_field("question", f"Must be at most {QUESTION_MAX_CHARS} characters.")
    return folded


def _clean_answer(answer: str) -> str:
    stripped = answer.strip()
    if not stripped:
        raise InvalidInputError.for_field("answer", "Write the answer.")
    if len(stripped) > ANSWER_MAX_CHARS:
        raise InvalidInputError.for_field("answer", f"Must be at most {ANSWER_MAX_CHARS} characters.")
    return stripped


def _name(question: str) -> str:
    return question if len(question) <= NAME_MAX_CHARS else question[: NAME_MAX_CHARS - 1].rstrip() + "…"


def _check_corrected_message(*, tenant: Tenant, bot_profile: BotProfile, message: Message) -> None:
    if message.tenant_id != tenant.pk:
        raise InvalidInputError.for_field("message_id", "Message not found.")
    if message.role != Message.Role.ASSISTANT:
        raise InvalidInputError.for_field(
            "message_id", "Only an answer of the bot (answered or refused) can be corrected; this message is not one."
        )
    if message.chat.bot_profile_id != bot_profile.pk:
        raise InvalidInputError.for_field("bot_profile_id", "The message is from a chat with another bot.")


@transaction.atomic
def curated_answer_create(
    *,
    tenant: Tenant,
    bot_profile: BotProfile,
    question: str,
    answer: str,
    message: Message | None = None,
    created_by_name: str = "",
) -> CuratedAnswer:
    """Store the answer as a `qa` source of the bot, `mandatory`, and queue its ingestion once
    the transaction commits. `message` is the bot's answer it corrects, if any (it must be an
    assistant message of a chat with this bot)."""
    if message is not None:
        _check_corrected_message(tenant=tenant, bot_profile=bot_profile, message=message)
    question = _clean_question(question)
    config: dict[str, Any] = {"question": question, "message_id": str(message.pk) if message is not None else None}
    if created_by_name:
        config["created_by_name"] = created_by_name[:200]
    curated = CuratedAnswer(
        tenant=tenant,
        bot_profile=bot_profile,
        name=_name(question),
        source_type=SourceType.QA,
        config=config,
        content=_clean_answer(answer),
        authority=Authority.MANDATORY,
    )
    curated.full_clean()
    curated.save()
    queue_ingestion_on_commit(curated)
    return curated


@transaction.atomic
def curated_answer_update(
    *, tenant: Tenant, curated: CuratedAnswer, question: str = UNSET, answer: str = UNSET
) -> CuratedAnswer:
    """Change the question or the answer, and ingest it again once committed (the bot keeps the
    previous version until the new one is indexed). A change that changes nothing does nothing.
    While a run is indexing it (`processing`) the change is refused (409); while it is `queued`,
    the run to come reads the new text."""
    locked = CuratedAnswer.objects.select_for_update().get(tenant=tenant, pk=curated.pk)
    new_question = _clean_question(question) if question is not UNSET else locked.question
    new_answer = _clean_answer(answer) if answer is not UNSET else locked.content
    renamed, rewritten = new_question != locked.question, new_answer != locked.content
    if not renamed and not rewritten:
        return locked
    if renamed:
        locked.config = {**locked.config, "question": new_question}
        locked.name = _name(new_question)
    if rewritten:
        locked.content = new_answer
    if locked.status == SourceStatus.PROCESSING:
        raise ConflictError("This answer is being indexed right now; change it again in a moment.")
    requeue = locked.status != SourceStatus.QUEUED
    if requeue:
        locked.status = SourceStatus.PENDING
    locked.full_clean()
    locked.save()
    if renamed:
        # Chunks whose text did not change (a long question changed only past what a chunk's
        # heading keeps of it) are not written again: give them the new name too.
        transaction.on_commit(lambda: set_indexed_payload(locked, {"source_name": locked.name}), robust=True)
    if requeue:
        queue_ingestion_on_commit(locked)
    publish_source_event(locked)
    return locked


@transaction.atomic
def curated_answer_delete(*, tenant: Tenant, curated: CuratedAnswer) -> None:
    """Delete it for good — unlike other sources, which are deactivated: it is a few lines written
    here, and its one embedding is cheap to make again. Its chunks go with it, its vectors once
    the deletion commits; a run still indexing it finds its source gone and takes back what it
    wrote (sources/lifecycle.py)."""
    source_id = curated.pk
    CuratedAnswer.objects.filter(tenant=tenant, pk=source_id).delete()
    transaction.on_commit(lambda: remove_source_vectors(tenant_id=tenant.pk, source_ids=[source_id]))
