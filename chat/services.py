"""Writes of a chat turn. The user's message is committed before any model is called, so a
failing model never loses it; the answer, its usage and the chat's counters are then written in
one transaction."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from bots.models import BotProfile
from bots.services import bot_model_price
from chat.models import Chat, Message, UnansweredQuestion, UsageEvent
from chat.retrieval import RetrievedChunk
from chat.selectors import chat_get_for, recent_history
from minirag.errors import ForbiddenError, InvalidInputError, NotFoundError
from minirag.lookups import only_row
from providers import budgets
from tenants.authentication import Principal
from tenants.models import Tenant
from tenants.tenancy import current_tenant_id, tenant_scope
from webhooks import events as webhook_events
from webhooks.selectors import has_active_webhooks

logger = logging.getLogger(__name__)

TITLE_LENGTH = 80
CITATION_PREVIEW_CHARS = 200


@dataclass
class PreparedTurn:
    """Everything the asynchronous part of a turn needs, read while the request held a scope."""

    tenant_id: uuid.UUID
    tenant: Tenant  # for its budget (providers/budgets.py)
    bot: BotProfile
    chat_id: uuid.UUID
    user_message_id: uuid.UUID
    question: str
    history: list[dict[str, str]]
    for_visitor: bool = False  # asked through a bot (widget) token
    # A person handles the chat (inbox/): the message was stored for them and no model answers.
    for_person: bool = False
    handling: str = Chat.Handling.BOT
    started: float = field(default_factory=time.perf_counter)
    reservation: budgets.Reservation | None = None  # what the turn set aside under a budget
    # Whether the tenant had an enabled webhook when the turn began (read with the chat or the bot):
    # without one, storing the answer looks for none. A webhook enabled during a turn gets the next.
    tenant_has_webhooks: bool = True

    def elapsed_ms(self) -> int:
        return round((time.perf_counter() - self.started) * 1000)


# What a turn adds to its chat (count_on_chat): the model's own table and columns.
_COUNT_ON_CHAT = (
    'UPDATE "chat_chat" SET "message_count" = "message_count" + %s, '
    '"total_prompt_tokens" = "total_prompt_tokens" + %s, '
    '"total_completion_tokens" = "total_completion_tokens" + %s, "updated_at" = %s '
    'WHERE "tenant_id" = %s AND "id" = %s'
)


def count_on_chat(chat_id: uuid.UUID, *, messages: int, prompt_tokens: int = 0, completion_tokens: int = 0) -> None:
    """Add to a chat's counters and touch its `updated_at`, in one statement, for the current tenant.

    Every turn does this twice, so the statement is written out here: `update()` with `F()`
    expressions resolves and compiles them anew on each call, 0.44 ms of CPU against 0.10 ms for
    the statement itself. Like the scoped manager, it acts only inside a tenant scope and only on
    that tenant's row (and row-level security applies to it like to any statement)."""
    tenant_id = current_tenant_id()  # fails closed outside a scope
    key = Chat._meta.pk
    with connection.cursor() as cursor:
        cursor.execute(
            _COUNT_ON_CHAT,
            [
                messages,
                prompt_tokens,
                completion_tokens,
                Chat._meta.get_field("updated_at").get_db_prep_value(timezone.now(), connection),
                key.get_db_prep_value(tenant_id, connection),
                key.get_db_prep_value(chat_id, connection),
            ],
        )


def _title(message: str) -> str:
    text = " ".join(message.split())
    return text if len(text) <= TITLE_LENGTH else text[: TITLE_LENGTH - 1].rsplit(" ", 1)[0] + "…"


@transaction.atomic
def prepare_turn(
    *,
    principal: Principal,
    bot_profile_id: uuid.UUID,
    message: str,
    chat_id: uuid.UUID | None = None,
    visitor_id: str = "",
) -> PreparedTurn:
    """Check who may chat with which bot in which chat and whether its budget allows a turn (429
    `BudgetExhausted` when not: nothing is stored), then store the user's message and read history."""
    tenant = principal.tenant
    chat: Chat | None = None
    missing_chat: NotFoundError | None = None
    bot: BotProfile | None = None
    if chat_id is not None:
        # Locked, so a hand-off or a release cannot slip between reading `handling` and storing. Read
        # first, with its bot (one statement less per follow-up); the errors keep their order below.
        try:
            chat = chat_get_for(
                principal=principal,
                chat_id=chat_id,
                visitor_id=visitor_id,
                lock=True,
                related=("bot_profile",),
                tenant_has_webhooks=has_active_webhooks(),
            )
        except NotFoundError as exc:
            missing_chat = exc
        else:
            if chat.bot_profile_id == bot_profile_id and chat.bot_profile.is_active:
                bot, tenant_has_webhooks = chat.bot_profile, chat.tenant_has_webhooks  # type: ignore[attr-defined]
    if bot is None:
        bot = only_row(
            BotProfile.objects.filter(tenant=tenant, pk=bot_profile_id, is_active=True).annotate(
                tenant_has_webhooks=has_active_webhooks()
            )
        )
        tenant_has_webhooks = getattr(bot, "tenant_has_webhooks", True)
    if bot is None:
        raise NotFoundError("Bot profile not found.")
    if principal.is_bot_token and bot.pk != principal.bot_profile_id:
        raise ForbiddenError("This token can only chat with its own bot.")
    if missing_chat is not None:
        raise missing_chat
    if chat is not None:
        if chat.bot_profile_id != bot.pk:
            raise InvalidInputError.for_field("chat_id", "This chat belongs to another bot.")
        if chat.handling != Chat.Handling.BOT:
            return _store_for_person(
                tenant=tenant, bot=bot, chat=chat, message=message, for_visitor=principal.is_bot_token
            )
    history = recent_history(chat=chat, turns=bot.history_turns) if chat is not None else []
    reservation = budgets.admit(
        tenant=tenant,
        bot=bot,
        estimate=budgets.turn_estimate(bot, question=message, history=history),
        for_visitor=principal.is_bot_token,
    )
    if chat is None:
        chat = Chat.objects.create(
            tenant=tenant,
            bot_profile=bot,
            title=_title(message),
            started_by_user=None if principal.is_bot_token else principal.user,
            started_by_token=principal.api_token if principal.is_bot_token else None,
            visitor_id=visitor_id,
            message_count=1,  # the question, stored next: counted here instead of by one more statement
        )
        user_message = _store_question(tenant=tenant, chat=chat, message=message, counted=True)
    else:
        user_message = _store_question(tenant=tenant, chat=chat, message=message)
    return PreparedTurn(
        tenant_id=tenant.pk,
        tenant=tenant,
        bot=bot,
        chat_id=chat.pk,
        user_message_id=user_message.pk,
        question=message,
        history=history,
        for_visitor=principal.is_bot_token,
        reservation=reservation,
        tenant_has_webhooks=tenant_has_webhooks,
    )


def _store_question(*, tenant: Tenant, chat: Chat, message: str, counted: bool = False) -> Message:
    """The visitor's (or user's) message, stored and counted on its chat (unless the chat, just
    created, already counts it)."""
    user_message = Message.objects.create(tenant=tenant, chat=chat, role=Message.Role.USER, content=message)
    if not counted:
        count_on_chat(chat.pk, messages=1)
    return user_message


def _store_for_person(*, tenant: Tenant, bot: BotProfile, chat: Chat, message: str, for_visitor: bool) -> PreparedTurn:
    """A message to a chat a person handles (or is asked to): stored, counted, and published to
    the chat's and the inbox's event channels; no budget is reserved, no model is called."""
    from chat.serializers import MessageSerializer
    from inbox.events import MESSAGE_EVENT, publish_on_commit

    user_message = _store_question(tenant=tenant, chat=chat, message=message)
    publish_on_commit(tenant.pk, chat.pk, MESSAGE_EVENT, MessageSerializer(user_message).data)
    return PreparedTurn(
        tenant_id=tenant.pk,
        tenant=tenant,
        bot=bot,
        chat_id=chat.pk,
        user_message_id=user_message.pk,
        question=message,
        history=[],
        for_visitor=for_visitor,
        for_person=True,
        handling=chat.handling,
    )


def citation(chunk: RetrievedChunk) -> dict[str, Any]:
    """A source as the API shows it (`chunk_id`, `content` preview, `score`, `source_id` + more)."""
    return {
        "chunk_id": chunk.chunk_id,
        "content": chunk.content[:CITATION_PREVIEW_CHARS],
        "score": round(chunk.score, 4),
        "source_id": chunk.source_id,
        "source_name": chunk.source_name,
        "title": chunk.title,
        "url": chunk.url,
        "authority": chunk.authority,
    }


@dataclass(frozen=True)
class AnswerRecord:
    content: str
    outcome: str  # Message.Outcome
    model: str
    chunks: Sequence[RetrievedChunk] = ()
    prompt_tokens: int = 0
    completion_tokens: int = 0
    time_to_first_token_ms: int | None = None
    streamed: bool = False
    best_score: float | None = None
    searched_question: str = ""  # the question as the knowledge was searched (chat/followups.py)


def _answer_cost(turn: PreparedTurn, answer: AnswerRecord) -> Decimal:
    """What the answer cost at the bot's price. A cost that is not a number is logged with what it
    was computed from and counted as 0: the visitor's answer is stored whatever its price. (Prices
    are finite when stored and token counts are integers, yet one NaN was seen under load, cause
    unknown: the log line is there to find it.)"""
    price = bot_model_price(turn.bot, answer.model)
    cost = price.recorded_cost(answer.prompt_tokens, answer.completion_tokens)
    if cost.is_finite():
        return cost
    logger.error(
        "The cost of an answer of %s was not a number (%r from %r, %r prompt and %r completion tokens); counted as 0.",
        answer.model,
        cost,
        price,
        answer.prompt_tokens,
        answer.completion_tokens,
    )
    return Decimal(0)


def record_answer(turn: PreparedTurn, answer: AnswerRecord) -> Message:
    """The assistant's message, its usage (with its cost at today's price) and the chat's
    counters, in one transaction; a refusal also lands on the unanswered-questions list. The
    `chat.message` webhook deliveries are recorded in it too, and sent once it commits."""
    with tenant_scope(turn.tenant_id), transaction.atomic():
        message = Message.objects.create(
            tenant_id=turn.tenant_id,
            chat_id=turn.chat_id,
            role=Message.Role.ASSISTANT,
            content=answer.content,
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
            outcome=answer.outcome,
            model=answer.model,
            chunk_ids=[chunk.chunk_id for chunk in answer.chunks],
            sources=[citation(chunk) for chunk in answer.chunks],
            searched_question=answer.searched_question,
        )
        # At the connection's price when the model answered through one (bots.services.bot_model_price).
        cost = _answer_cost(turn, answer)
        budgets.record_spend(tenant=turn.tenant, bot=turn.bot, cost_usd=cost, reservation=turn.reservation)
        UsageEvent.objects.create(
            tenant_id=turn.tenant_id,
            bot_profile=turn.bot,
            chat_id=turn.chat_id,
            message=message,
            model=answer.model,
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
            cost_usd=cost,
            time_to_first_token_ms=answer.time_to_first_token_ms,
            duration_ms=turn.elapsed_ms(),
            streamed=answer.streamed,
            outcome=answer.outcome,
        )
        count_on_chat(
            turn.chat_id,
            messages=1,
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
        )
        if answer.outcome == Message.Outcome.REFUSED:
            UnansweredQuestion.objects.create(
                tenant_id=turn.tenant_id,
                bot_profile=turn.bot,
                chat_id=turn.chat_id,
                message_id=turn.user_message_id,
                question=turn.question,
                normalized_question=normalize_question(turn.question),
                best_score=answer.best_score,
            )
        if turn.tenant_has_webhooks:
            webhook_events.chat_message(
                tenant_id=turn.tenant_id,
                message=message,
                bot_profile_id=turn.bot.pk,
                user_message_id=turn.user_message_id,
                question=turn.question,
                streamed=answer.streamed,
                citations=message.sources,
            )
    return message


def record_failure(turn: PreparedTurn, *, model: str, error: str, streamed: bool, final: bool = True) -> None:
    """A turn whose model call failed: the user's message stays; the failure is counted. `final`:
    the turn ends with it (no fallback model follows), so what it set aside is released."""
    with tenant_scope(turn.tenant_id), transaction.atomic():
        if final and turn.reservation is not None:
            budgets.record_spend(tenant=turn.tenant, bot=turn.bot, cost_usd=Decimal(0), reservation=turn.reservation)
        UsageEvent.objects.create(
            tenant_id=turn.tenant_id,
            bot_profile=turn.bot,
            chat_id=turn.chat_id,
            model=model,
            duration_ms=turn.elapsed_ms(),
            streamed=streamed,
            outcome=UsageEvent.Outcome.ERROR,
            error=error[:2000],
        )


def normalize_question(question: str) -> str:
    """Lowercased, punctuation at the ends dropped, whitespace folded: how questions are grouped."""
    folded = " ".join(question.lower().split())
    return re.sub(r"^[\W_]+|[\W_]+$", "", folded)[:500]


@transaction.atomic
def message_set_feedback(*, message: Message, feedback: str | None) -> Message:
    if message.role != Message.Role.ASSISTANT:
        raise InvalidInputError.for_field("feedback", "Only assistant messages can be rated.")
    message.feedback = feedback
    message.save(update_fields=["feedback"])
    return message
