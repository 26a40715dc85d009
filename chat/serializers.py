"""Input and output shapes for chats, messages and exports (api-contract.md, Chat)."""

from __future__ import annotations

from rest_framework import serializers

from chat.models import Chat, Message
from minirag.serializer_fields import StrictCharField

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
    """The v1 Message, plus the assistant's citations (`sources`) and how the turn ended
    (`outcome`: answered, refused, partial)."""

    chat_id = serializers.UUIDField(read_only=True)
    feedback = serializers.CharField(read_only=True, allow_null=True)

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
        ]
        read_only_fields = fields


class ChatTurnInputSerializer(serializers.Serializer):
    bot_profile_id = serializers.UUIDField()
    message = StrictCharField(min_length=1, max_length=MAX_MESSAGE_CHARS, trim_whitespace=False)
    chat_id = serializers.UUIDField(required=False, allow_null=True)
    stream = serializers.BooleanField(required=False, default=False)

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
