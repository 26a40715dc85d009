"""Input and output shapes for chats, messages and exports (api-contract.md, Chat)."""

from __future__ import annotations

from rest_framework import serializers

from chat.models import Chat, Message
from minirag.serializer_fields import OptionalBooleanField, StrictCharField

MAX_MESSAGE_CHARS = 32_000


class ChatSerializer(serializers.ModelSerializer):
    tenant_id = serializers.UUIDField(read_only=True)
    bot_profile_id = serializers.UUIDField(read_only=True)

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
        ]
        read_only_fields = fields


class MessageSerializer(serializers.ModelSerializer):
    """The v1 Message, plus the assistant's citations (`sources`), how the turn ended (`outcome`:
    answered, refused, partial) and the question the knowledge was searched with
    (`searched_question`: a follow-up resolved against the conversation; empty on user messages)."""

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


class UnansweredQuestionSerializer(serializers.Serializer):
    question = serializers.CharField()
    count = serializers.IntegerField()
    last_asked_at = serializers.DateTimeField()
    best_score = serializers.FloatField(allow_null=True)
    bot_profile_id = serializers.UUIDField()
    bot_name = serializers.CharField()
