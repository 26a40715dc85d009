"""Input and output shapes for bot profiles (api-contract.md, Bot profiles)."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from bots.models import DEFAULT_REFUSAL_MESSAGE, DEFAULT_SYSTEM_PROMPT, BotProfile
from minirag.serializer_fields import FiniteFloatField, OptionalBooleanField, StrictCharField, StrictIntegerField


class BotProfileSerializer(serializers.ModelSerializer):
    tenant_id = serializers.UUIDField(read_only=True)
    has_credentials = serializers.BooleanField(read_only=True)

    class Meta:
        model = BotProfile
        fields = [
            "id",
            "tenant_id",
            "name",
            "description",
            "model",
            "embedding_model",
            "system_prompt",
            "temperature",
            "max_tokens",
            "has_credentials",
            "is_active",
            "created_at",
            "updated_at",
            "top_k",
            "similarity_threshold",
            "refusal_message",
            "chunk_size",
            "chunk_overlap",
            "history_turns",
        ]
        read_only_fields = fields


class CredentialsField(serializers.DictField):
    """`{"api_key": "..."}`; `{}` or `null` clears. Write-only: never rendered."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(child=StrictCharField(max_length=4096), allow_null=True, write_only=True, **kwargs)


class BotProfileUpdateInputSerializer(serializers.Serializer):
    """Every field optional (PATCH); create below makes `name` required and fills defaults."""

    name = StrictCharField(max_length=200, required=False)
    description = StrictCharField(required=False, allow_blank=True, max_length=10_000)
    model = StrictCharField(max_length=200, required=False)
    embedding_model = StrictCharField(max_length=200, required=False)
    system_prompt = StrictCharField(required=False, allow_blank=True, max_length=32_000, trim_whitespace=False)
    temperature = FiniteFloatField(min_value=0.0, max_value=2.0, required=False)
    max_tokens = StrictIntegerField(min_value=1, max_value=128_000, required=False)
    credentials = CredentialsField(required=False)
    top_k = StrictIntegerField(min_value=1, max_value=50, required=False)
    similarity_threshold = FiniteFloatField(min_value=0.0, max_value=1.0, required=False)
    refusal_message = StrictCharField(required=False, max_length=4000)
    chunk_size = StrictIntegerField(min_value=100, max_value=8000, required=False)
    chunk_overlap = StrictIntegerField(min_value=0, max_value=4000, required=False)
    history_turns = StrictIntegerField(min_value=0, max_value=50, required=False)
    is_active = OptionalBooleanField(required=False)


class BotProfileCreateInputSerializer(BotProfileUpdateInputSerializer):
    name = StrictCharField(max_length=200)
    description = StrictCharField(required=False, allow_blank=True, max_length=10_000, default="")
    system_prompt = StrictCharField(
        required=False, allow_blank=True, max_length=32_000, trim_whitespace=False, default=DEFAULT_SYSTEM_PROMPT
    )
    temperature = FiniteFloatField(min_value=0.0, max_value=2.0, required=False, default=0.7)
    max_tokens = StrictIntegerField(min_value=1, max_value=128_000, required=False, default=1024)
    refusal_message = StrictCharField(required=False, max_length=4000, default=DEFAULT_REFUSAL_MESSAGE)

    def validate(self, attrs: dict) -> dict:
        # Defaults that depend on configuration are resolved per request, not at import.
        attrs.setdefault("model", settings.DEFAULT_CHAT_MODEL)
        attrs.setdefault("embedding_model", settings.DEFAULT_EMBEDDING_MODEL)
        return attrs


class EmbedTokenSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    token_prefix = serializers.CharField()
    allowed_origins = serializers.ListField(child=serializers.CharField())
    expires_at = serializers.DateTimeField(allow_null=True)


class EmbedSerializer(serializers.Serializer):
    """The widget snippet, ready to paste into a page on one of the token's allowed origins."""

    bot_profile_id = serializers.UUIDField(source="bot.pk")
    api_url = serializers.CharField()
    script_url = serializers.CharField()
    snippet = serializers.CharField(source="script_snippet", help_text="One script tag.")
    element_snippet = serializers.CharField(help_text="The script plus a <minirag-widget> element.")
    token = EmbedTokenSerializer(allow_null=True, help_text="The bot token in the snippet; null if none.")
    warnings = serializers.ListField(child=serializers.CharField(), help_text="What to fix before going live.")
