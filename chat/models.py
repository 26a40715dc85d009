"""Conversations, their messages, what each turn cost, and the questions the bot could not answer."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from tenants.tenancy import TenantOwnedModel


class Chat(TenantOwnedModel):
    """A conversation with one bot. Who started it decides who may read it: a tenant user, or a
    bot (widget) token — and, for the widget, the visitor id it sent.

    `handling` says who answers the visitor (inbox/services.py): the bot; nobody yet, a person was
    asked for (`needs_human`); or a person (`human`, the operator in `assigned_to`). While it is
    not the bot, a visitor's message is stored for the person and no model is called."""

    class Handling(models.TextChoices):
        BOT = "bot", "The bot answers"
        NEEDS_HUMAN = "needs_human", "Waiting for a person"
        HUMAN = "human", "A person answers"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    bot_profile = models.ForeignKey("bots.BotProfile", on_delete=models.CASCADE, related_name="chats")
    title = models.CharField(max_length=200, blank=True, default="")
    message_count = models.PositiveIntegerField(default=0)
    total_prompt_tokens = models.PositiveBigIntegerField(default=0)
    total_completion_tokens = models.PositiveBigIntegerField(default=0)
    started_by_user = models.ForeignKey(
        "tenants.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    started_by_token = models.ForeignKey(
        "tenants.ApiToken", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    visitor_id = models.CharField(max_length=64, blank=True, default="")
    handling = models.CharField(max_length=12, choices=Handling.choices, default=Handling.BOT)
    assigned_to = models.ForeignKey("tenants.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # The last hand-off: when a person was asked for, when one took the chat over, when it went
    # back to the bot. A new request starts a new hand-off (the previous times are replaced).
    handoff_requested_at = models.DateTimeField(null=True, blank=True)
    taken_over_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    # Where the visitor asked to be answered when nobody was available.
    contact_email = models.EmailField(max_length=254, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [
            models.Index(fields=["tenant", "-updated_at"]),
            models.Index(fields=["tenant", "bot_profile", "-updated_at"]),
            models.Index(fields=["tenant", "handling", "-updated_at"]),
        ]

    def __str__(self) -> str:
        return self.title or str(self.id)


class Message(TenantOwnedModel):
    class Role(models.TextChoices):
        USER = "user", "User"
        ASSISTANT = "assistant", "Assistant"
        OPERATOR = "operator", "Operator"  # a person of the tenant answering in the bot's place

    class Feedback(models.TextChoices):
        POSITIVE = "positive", "Positive"
        NEGATIVE = "negative", "Negative"

    class Outcome(models.TextChoices):
        ANSWERED = "answered", "Answered"
        REFUSED = "refused", "Refused: nothing relevant in the sources"
        PARTIAL = "partial", "Partial: the client left mid-answer"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=10, choices=Role.choices)
    content = models.TextField()
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    feedback = models.CharField(max_length=10, choices=Feedback.choices, null=True, blank=True)  # noqa: DJ001 - null is the API's "no feedback"
    # Assistant messages: how the turn ended, the model, and the chunks it was grounded in.
    outcome = models.CharField(max_length=10, choices=Outcome.choices, blank=True, default="")
    model = models.CharField(max_length=200, blank=True, default="")
    chunk_ids = models.JSONField(default=list, blank=True)
    sources = models.JSONField(default=list, blank=True)
    # The question the knowledge was searched with: the visitor's message, or a follow-up resolved
    # against the conversation (chat/followups.py). Shows why an answer came out as it did.
    searched_question = models.TextField(blank=True, default="")
    # Operator messages: who wrote it, and the name the visitor sees (kept if the user goes).
    author = models.ForeignKey("tenants.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    author_name = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["chat", "created_at"]), models.Index(fields=["tenant", "created_at"])]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:60]}"


class UsageEvent(TenantOwnedModel):
    """One model call of a chat turn: tokens, cost at the price of the day, and timings."""

    class Outcome(models.TextChoices):
        ANSWERED = "answered", "Answered"
        REFUSED = "refused", "Refused without a model call"
        PARTIAL = "partial", "Partial (client disconnected)"
        ERROR = "error", "Error"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    bot_profile = models.ForeignKey("bots.BotProfile", on_delete=models.CASCADE, related_name="+")
    chat = models.ForeignKey(Chat, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    message = models.ForeignKey(Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    model = models.CharField(max_length=200)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=8, default=0)
    time_to_first_token_ms = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    streamed = models.BooleanField(default=False)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.ANSWERED)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "created_at"]), models.Index(fields=["tenant", "bot_profile"])]

    def __str__(self) -> str:
        return f"{self.model} {self.prompt_tokens}+{self.completion_tokens}"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class UnansweredQuestion(TenantOwnedModel):
    """A question the bot refused because nothing in its sources was relevant enough: the list of
    content gaps an integrator can act on."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    bot_profile = models.ForeignKey("bots.BotProfile", on_delete=models.CASCADE, related_name="+")
    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="+")
    question = models.TextField()
    # Lowercased, whitespace-folded: the same question asked twice counts twice in one row of the list.
    normalized_question = models.CharField(max_length=500, db_index=True)
    best_score = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "bot_profile", "normalized_question"])]

    def __str__(self) -> str:
        return self.question[:80]
