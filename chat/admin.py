"""Dashboard pages for conversations: chats with their messages, usage records and the questions
the bots could not answer. All read-only: history is what happened. Each answer of a bot and each
unanswered question links to writing the right answer (a curated answer: sources/curated_admin.py)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from chat.models import Chat, Message, UnansweredQuestion, UsageEvent
from minirag.dashboard.model_admin import ReadOnlyInline, TenantModelAdmin
from sources.curated import QUESTION_MAX_CHARS

# What a message shows, in a chat's page and on its own.
MESSAGE_FIELDS = [
    "role",
    "content",
    "searched_question",
    "feedback",
    "outcome",
    "model",
    "prompt_tokens",
    "completion_tokens",
]


def teach_link(query: dict[str, str]) -> str:
    """A link to write the right answer (a curated answer: sources/curated_admin.py), prefilled by `query`."""
    url = f"{reverse('admin:sources_curatedanswer_add')}?{urlencode(query)}"
    return format_html('<a href="{}">Write the right answer</a>', url)


def right_answer_link(message: Message) -> str:
    """For each answer of the bot: teach it the right one (the question and the bot come from the chat)."""
    if message.role != Message.Role.ASSISTANT:
        return ""
    return teach_link({"message": str(message.pk)})


class MessageInline(ReadOnlyInline):
    model = Message
    fields = [*MESSAGE_FIELDS, "created_at", "right_answer"]
    readonly_fields = fields
    ordering = ["created_at"]
    show_change_link = False

    @admin.display(description="Teach the bot")
    def right_answer(self, message: Message) -> str:
        return right_answer_link(message)


@admin.register(Chat)
class ChatAdmin(TenantModelAdmin):
    list_display = ["title", "bot_profile", "message_count", "total_tokens", "visitor", "created_at", "updated_at"]
    list_filter = ["bot_profile", "created_at"]
    search_fields = ["title", "visitor_id"]
    list_select_related = ["tenant", "bot_profile"]
    date_hierarchy = "created_at"
    fields = [
        "id",
        "tenant",
        "bot_profile",
        "title",
        "message_count",
        "total_prompt_tokens",
        "total_completion_tokens",
        "started_by_user",
        "started_by_token",
        "visitor_id",
        "created_at",
        "updated_at",
    ]
    readonly_fields = fields
    inlines = [MessageInline]

    @admin.display(description="Tokens")
    def total_tokens(self, chat: Chat) -> int:
        return chat.total_prompt_tokens + chat.total_completion_tokens

    @admin.display(description="Started by")
    def visitor(self, chat: Chat) -> str:
        if chat.visitor_id:
            return f"visitor {chat.visitor_id[:8]}…"
        return "API"


@admin.register(Message)
class MessageAdmin(TenantModelAdmin):
    list_display = ["short_content", "role", "chat", "feedback", "outcome", "model", "created_at"]
    list_filter = ["role", "feedback", "outcome", "created_at"]
    search_fields = ["content"]
    list_select_related = ["tenant", "chat"]
    date_hierarchy = "created_at"
    fields = ["id", "tenant", "chat", *MESSAGE_FIELDS, "sources", "created_at", "right_answer"]
    readonly_fields = fields

    @admin.display(description="Message")
    def short_content(self, message: Message) -> str:
        return Truncator(message.content).chars(100)

    @admin.display(description="Teach the bot")
    def right_answer(self, message: Message) -> str:
        return right_answer_link(message)


@admin.register(UsageEvent)
class UsageEventAdmin(TenantModelAdmin):
    list_display = ["created_at", "bot_profile", "model", "outcome", "prompt_tokens", "completion_tokens", "cost_usd"]
    list_filter = ["outcome", "model", "streamed", "bot_profile", "created_at"]
    list_select_related = ["tenant", "bot_profile"]
    date_hierarchy = "created_at"
    fields = [
        "id",
        "tenant",
        "bot_profile",
        "chat",
        "message",
        "model",
        "outcome",
        "error",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
        "time_to_first_token_ms",
        "duration_ms",
        "streamed",
        "created_at",
    ]
    readonly_fields = fields


@admin.register(UnansweredQuestion)
class UnansweredQuestionAdmin(TenantModelAdmin):
    """The content gaps: what visitors asked that no source covered (grouped on the Usage page)."""

    list_display = ["question", "bot_profile", "best_score", "chat", "created_at", "right_answer"]
    list_filter = ["bot_profile", "created_at"]
    search_fields = ["question"]
    list_select_related = ["tenant", "bot_profile", "chat"]
    date_hierarchy = "created_at"
    fields = ["id", "tenant", "bot_profile", "chat", "message", "question", "best_score", "created_at", "right_answer"]
    readonly_fields = fields

    @admin.display(description="Teach the bot")
    def right_answer(self, unanswered: UnansweredQuestion) -> str:
        return teach_link({"bot": str(unanswered.bot_profile_id), "question": unanswered.question[:QUESTION_MAX_CHARS]})
