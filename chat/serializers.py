"""Input and output shapes for chats, messages and exports (api-contract.md, Chat)."""

from __future__ import annotations

from rest_framework import serializers

from bots.models import Handoff
from chat.models import Chat, Message
from minirag.serializer_fields import OptionalBooleanField, StrictCharField

MAX_MESSAGE_CHARS = 32_000


class ChatSerializer(serializers.ModelSerializer):
    """The v1 Chat, plus who answers it (`handling`: bot, needs_human, human), the operator it is
    assigned to, the last hand-off's times and the visitor's contact email (inbox/)."""

    tenant_id = serializers.UUIDField(read_only=True)
    bot_profile_id = serializers.UUIDField(read_only=True)
    assigned_to_id = serializers.UUIDField(read_only=True, allow_null=True)
    assigned_to_name = serializers.SerializerMethodField(
        help_text="The name visitors see for the operator handling the chat; null when none is."
    )
    contact_email = serializers.CharField(
        read_only=True, allow_blank=True, help_text="Where the visitor asked to be answered; empty if not given."
    )
    handoff = serializers.ChoiceField(
        source="bot_profile.handoff",
        choices=Handoff.choices,
        read_only=True,
        help_text="The bot's hand-off setting: off; on_request (the visitor may ask for a person); offered (also "
        "offer it after a refusal or a negative rating).",
    )

    def get_assigned_to_name(self, chat: Chat) -> str | None:
        from inbox.services import operator_display_name

        return operator_display_name(chat.assigned_to) if chat.assigned_to_id and chat.assigned_to else None

    class Meta:
        model = Chat
        fields = [
            "id",
            "tenant_id",
            "bot_profile_id",
            "title",
            "message_count",
            "total_prompt_tokens",
            "total_completion_tokens",
            "created_at",
            "updated_at",
            "handling",
            "assigned_to_id",
            "assigned_to_name",
            "handoff_requested_at",
            "taken_over_at",
            "released_at",
            "contact_email",
            "handoff",
        ]
        read_only_fields = fields


class MessageSerializer(serializers.ModelSerializer):
    """The v1 Message, plus the assistant's citations (`sources`), how the turn ended (`outcome`:
    answered, refused, partial) and the question the knowledge was searched with
    (`searched_question`: a follow-up resolved against the conversation; empty on user messages).
    `role` may also be `operator`: a person of the tenant answering in the bot's place, named by
    `author_name` (empty on other messages)."""

    chat_id = serializers.UUIDField(read_only=True)
    feedback = serializers.CharField(read_only=True, allow_null=True)
    # Blank on the visitor's messages: the schema must say so (a model field's `blank` is lost on
    # a read-only field).
    outcome = serializers.ChoiceField(
        choices=Message.Outcome.choices,
        allow_blank=True,
        read_only=True,
        help_text="How an assistant turn ended; empty on user messages.",
    )

    class Meta:
        model = Message
        fields = [
            "id",
            "chat_id",
            "role",
            "content",
            "prompt_tokens",
            "completion_tokens",
            "feedback",
            "created_at",
            "sources",
            "outcome",
            "searched_question",
            "author_name",
        ]
        read_only_fields = fields


class ChatTurnInputSerializer(serializers.Serializer):
    bot_profile_id = serializers.UUIDField()
    message = StrictCharField(min_length=1, max_length=MAX_MESSAGE_CHARS, trim_whitespace=False)
    chat_id = serializers.UUIDField(required=False, allow_null=True)
    stream = OptionalBooleanField(required=False, default=False)

    def validate_message(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("The message is empty.")
        return value


class CitationSerializer(serializers.Serializer):
    chunk_id = serializers.CharField()
    content = serializers.CharField(help_text="The first 200 characters of the chunk.")
    score = serializers.FloatField()
    source_id = serializers.CharField(allow_null=True)
    source_name = serializers.CharField()
    title = serializers.CharField()
    url = serializers.CharField()
    authority = serializers.CharField(allow_null=True)


class UsageSerializer(serializers.Serializer):
    model = serializers.CharField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()


class ChatTurnOutputSerializer(serializers.Serializer):
    chat_id = serializers.UUIDField()
    message = MessageSerializer()
    sources = CitationSerializer(many=True)
    usage = UsageSerializer()


class ChatTurnForPersonSerializer(serializers.Serializer):
    """202: a person handles the chat; the visitor's message is stored for them, no model answered."""

    chat_id = serializers.UUIDField()
    message = MessageSerializer(help_text="The visitor's stored message.")
    handling = serializers.ChoiceField(choices=Chat.Handling.choices)


class FeedbackInputSerializer(serializers.Serializer):
    feedback = serializers.ChoiceField(choices=Message.Feedback.choices, allow_null=True)


class ChatExportSerializer(serializers.Serializer):
    chat = ChatSerializer()
    messages = MessageSerializer(many=True)
    exported_at = serializers.DateTimeField()


class ChatWithMessagesSerializer(serializers.Serializer):
    chat = ChatSerializer()
    messages = MessageSerializer(many=True)


class ChatBulkExportSerializer(serializers.Serializer):
    chats = ChatWithMessagesSerializer(many=True)
    exported_at = serializers.DateTimeField()


# --- Stats (response shapes, for the schema; the views return plain dicts from chat/stats.py) ---


class ModelPriceSerializer(serializers.Serializer):
    prompt_cost_per_1m = serializers.FloatField()
    completion_cost_per_1m = serializers.FloatField()


class PricingStatsSerializer(serializers.Serializer):
    models = serializers.DictField(child=ModelPriceSerializer(), help_text="Model → today's price per million tokens.")
    default = ModelPriceSerializer()
    unpriced_models = serializers.ListField(
        child=serializers.CharField(), help_text="Models with no known price (counted at 0)."
    )


class OverviewStatsSerializer(serializers.Serializer):
    bot_profiles = serializers.IntegerField()
    sources = serializers.IntegerField()
    chats = serializers.IntegerField()
    total_prompt_tokens = serializers.IntegerField()
    total_completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()


class TokenUsageSerializer(serializers.Serializer):
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    request_count = serializers.IntegerField()


class UsageByDaySerializer(TokenUsageSerializer):
    date = serializers.DateField()
    model = serializers.CharField()


class UsageByBotSerializer(TokenUsageSerializer):
    bot_profile_id = serializers.UUIDField()
    bot_name = serializers.CharField()
    model = serializers.CharField()
    cost_usd = serializers.FloatField()


class UsageByModelSerializer(TokenUsageSerializer):
    model = serializers.CharField()
    cost_usd = serializers.FloatField()
    prompt_cost_per_1m = serializers.FloatField()
    completion_cost_per_1m = serializers.FloatField()


class CostEstimateSerializer(serializers.Serializer):
    total_cost_usd = serializers.FloatField()
    daily_avg_cost_usd = serializers.FloatField()
    projected_monthly_usd = serializers.FloatField()
    active_days = serializers.IntegerField()
    by_model = UsageByModelSerializer(many=True)
    by_bot = UsageByBotSerializer(many=True)


class FeedbackCountsSerializer(serializers.Serializer):
    total_messages = serializers.IntegerField()
    total_with_feedback = serializers.IntegerField()
    positive_count = serializers.IntegerField()
    negative_count = serializers.IntegerField()
    feedback_rate = serializers.FloatField()


class FeedbackByBotSerializer(FeedbackCountsSerializer):
    bot_profile_id = serializers.UUIDField()
    bot_name = serializers.CharField()


class FeedbackStatsSerializer(FeedbackCountsSerializer):
    by_bot = FeedbackByBotSerializer(many=True)


class FeedbackTrendSerializer(serializers.Serializer):
    date = serializers.DateField()
    positive_count = serializers.IntegerField()
    negative_count = serializers.IntegerField()
    total_messages = serializers.IntegerField()


class HandoffStatsSerializer(serializers.Serializer):
    requested = serializers.IntegerField(help_text="Chats whose hand-off to a person was requested in the window.")
    taken_over = serializers.IntegerField(help_text="Of those, the ones a person took over.")
    avg_seconds_to_takeover = serializers.FloatField(
        allow_null=True, help_text="From the request to a person taking over, on average; null if none was."
    )
    operator_messages = serializers.IntegerField(help_text="Messages operators wrote in the window.")
    waiting_now = serializers.IntegerField(help_text="Chats waiting for a person now.")
    handled_now = serializers.IntegerField(help_text="Chats a person handles now.")


class UnansweredQuestionSerializer(serializers.Serializer):
    question = serializers.CharField()
    count = serializers.IntegerField()
    last_asked_at = serializers.DateTimeField()
    best_score = serializers.FloatField(allow_null=True)
    bot_profile_id = serializers.UUIDField()
    bot_name = serializers.CharField()
