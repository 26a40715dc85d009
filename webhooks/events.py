"""The events other apps announce, with their payloads. Each call records deliveries for the
subscribed endpoints inside the caller's transaction; sending happens after it commits.

Payloads keep the v1 fields (`source.ingested {source_id, source_name, document_count,
chunk_count}`, `source.failed {source_id, error}`, `chat.message {chat_id, message_id,
bot_profile_id}`) and add context a receiver would otherwise have to fetch; every payload also
carries `event`, `delivery_id`, `created_at` and `tenant_id`. `usage.threshold` and
`chat.handoff_requested` are MiniRAG's own.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from webhooks.models import WebhookEvent
from webhooks.services import webhook_event_emit

if TYPE_CHECKING:
    from chat.models import Chat, Message
    from sources.models import Source


def _source_fields(source: Source) -> dict[str, Any]:
    return {
        "source_id": str(source.pk),
        "source_name": source.name,
        "source_type": source.source_type,
        "bot_profile_id": str(source.bot_profile_id),
        "parent_id": str(source.parent_id) if source.parent_id else None,
    }


def source_ingested(source: Source, **extra: Any) -> None:
    """A source became ready. For a sitemap, crawl or batch parent this is sent once all of its
    pages have finished, with their totals (`extra`: `children_count`, `failed_children`)."""
    webhook_event_emit(
        tenant_id=source.tenant_id,
        event=WebhookEvent.SOURCE_INGESTED,
        fields={
            **_source_fields(source),
            "document_count": source.document_count,
            "chunk_count": source.chunk_count,
            "last_refreshed_at": source.last_refreshed_at,
            **extra,
        },
    )


def source_failed(source: Source, error: str, **extra: Any) -> None:
    webhook_event_emit(
        tenant_id=source.tenant_id,
        event=WebhookEvent.SOURCE_FAILED,
        fields={**_source_fields(source), "error": error, **extra},
    )


def chat_message(
    *,
    tenant_id: uuid.UUID,
    message: Message,
    bot_profile_id: uuid.UUID,
    user_message_id: uuid.UUID,
    question: str,
    streamed: bool,
    citations: Sequence[dict[str, Any]],
) -> None:
    """The bot stored an answer (complete, a refusal, or the part streamed before a failure or a
    disconnect): the question and the answer, so a CRM or helpdesk can file the exchange as is."""
    webhook_event_emit(
        tenant_id=tenant_id,
        event=WebhookEvent.CHAT_MESSAGE,
        fields={
            "chat_id": str(message.chat_id),
            "message_id": str(message.pk),
            "bot_profile_id": str(bot_profile_id),
            "user_message_id": str(user_message_id),
            "question": question,
            "answer": message.content,
            "outcome": message.outcome,
            "model": message.model,
            "streamed": streamed,
            "prompt_tokens": message.prompt_tokens,
            "completion_tokens": message.completion_tokens,
            "sources": [
                {key: citation.get(key) for key in ("source_id", "source_name", "url", "score")}
                for citation in citations
            ],
        },
    )


def usage_threshold(
    *,
    tenant_id: uuid.UUID,
    bot_profile_id: uuid.UUID | None,
    threshold: int,
    budget_usd: Decimal,
    spent_usd: Decimal,
    month: str,
    resets_at: str,
) -> None:
    """Model spend reached `threshold` percent (80, then 100) of a monthly budget: the tenant's
    (`bot_profile_id` null) or one bot's. Sent once per threshold, budget and month."""
    webhook_event_emit(
        tenant_id=tenant_id,
        event=WebhookEvent.USAGE_THRESHOLD,
        fields={
            "scope": "bot" if bot_profile_id else "tenant",
            "bot_profile_id": str(bot_profile_id) if bot_profile_id else None,
            "threshold": threshold,
            "budget_usd": str(budget_usd),
            "spent_usd": str(spent_usd.quantize(Decimal("0.0001"))),
            "month": month,
            "resets_at": resets_at,
        },
    )


def chat_handoff_requested(
    *, chat: Chat, requested_by: str, available: bool, next_opening_at: dt.datetime | None
) -> None:
    """A visitor (or the tenant's staff for them) asked for a person: the chat left the bot and
    waits in the inbox. `available`: whether an operator was online within the bot's office hours;
    when not, `next_opening_at` is when the office opens next (null without office hours)."""
    webhook_event_emit(
        tenant_id=chat.tenant_id,
        event=WebhookEvent.CHAT_HANDOFF_REQUESTED,
        fields={
            "chat_id": str(chat.pk),
            "bot_profile_id": str(chat.bot_profile_id),
            "title": chat.title,
            "requested_by": requested_by,
            "contact_email": chat.contact_email or None,
            "available": available,
            "next_opening_at": next_opening_at,
            "handoff_requested_at": chat.handoff_requested_at,
        },
    )
