"""Input and output shapes for bot profiles (api-contract.md, Bot profiles)."""

from __future__ import annotations

from decimal import Decimal
from functools import cached_property
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bots import appearance
from bots.models import DEFAULT_REFUSAL_MESSAGE, DEFAULT_SYSTEM_PROMPT, BotProfile, Handoff
from chat.serializers import MAX_MESSAGE_CHARS
from inbox.office_hours import DAYS
from minirag.serializer_fields import FiniteFloatField, OptionalBooleanField, StrictCharField, StrictIntegerField


class WidgetAppearanceSerializer(serializers.Serializer):
    """The widget's appearance, every setting in force (bots/appearance.py): the bot's read shape
    (`widget`) and the public `GET /v1/bot-profiles/{id}/widget-config` document."""

    title = serializers.CharField(
        allow_blank=True, help_text='The chat window\'s title; "": the widget\'s own ("Ask us", translated).'
    )
    accent_color = serializers.RegexField(r"^#[0-9a-f]{6}$", help_text="#rrggbb: launcher, header, links.")
    position = serializers.ChoiceField(choices=list(appearance.POSITIONS))
    launcher = serializers.ChoiceField(
        choices=list(appearance.LAUNCHER_ICONS), help_text="The launcher's built-in icon."
    )
    avatar_url = serializers.CharField(
        allow_null=True, help_text="An https image shown instead of the icon (and in the header); null: none."
    )
    welcome_message = serializers.CharField(allow_blank=True, help_text='The first message; "": none.')
    starter_questions = serializers.ListField(
        child=serializers.CharField(), help_text="Offered as buttons before the first question."
    )
    lang = serializers.ChoiceField(
        choices=list(appearance.LANGUAGES), allow_null=True, help_text="The widget's language; null: the page's."
    )
    powered_by = serializers.BooleanField(help_text='Whether a small "Powered by MiniRAG" line shows.')


class WidgetConfigSerializer(WidgetAppearanceSerializer):
    """The public `GET /v1/bot-profiles/{id}/widget-config` document: the appearance, and the bot's
    hand-off setting, which the widget needs before any chat exists (bots/appearance.py)."""

    handoff = serializers.ChoiceField(
        choices=Handoff.choices,
        help_text='The bot\'s hand-off setting (read-only here): off (no "Talk to a person"); on_request (the '
        "visitor may ask); offered (also offered after a refused question or an answer rated not helpful).",
    )


OFFICE_HOURS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "timezone": {"type": "string", "description": "An IANA time zone, e.g. Europe/Berlin."},
        "days": {
            "type": "object",
            "additionalProperties": False,
            "description": "Open days, each with one window of local time; a missing day is closed.",
            "properties": {
                day: {
                    "type": "array",
                    "minItems": 2,
                    "maxItems": 2,
                    "items": {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"},
                }
                for day in DAYS
            },
        },
    },
}


@extend_schema_field(OFFICE_HOURS_SCHEMA)
class OfficeHoursSerializer(serializers.Field):
    """The bot's office hours as stored (inbox/office_hours.py); {} when it has none."""

    def to_representation(self, bot: BotProfile) -> dict[str, Any]:
        return bot.office_hours or {}


class JsonObjectInputField(serializers.Field):
    """An object, or null, passed on as it is: its shape is checked here, its values by the service,
    which answers 422 per key. Subclasses say what the object is in their `invalid` message."""

    default_error_messages = {"invalid": "Must be an object, or null."}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_null=True, **kwargs)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            self.fail("invalid")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field(
    {
        **OFFICE_HOURS_SCHEMA,
        "nullable": True,
        "description": 'When a person answers a hand-off, e.g. {"timezone": "Europe/Berlin", "days": '
        '{"mon": ["09:00", "17:00"]}}; {} or null: any time. Checked by inbox/office_hours.py (422).',
    }
)
class OfficeHoursInputField(JsonObjectInputField):
    default_error_messages = {"invalid": "Must be an object of office hours, or null."}


class BotProfileSerializer(serializers.ModelSerializer):
    tenant_id = serializers.UUIDField(read_only=True)
    has_credentials = serializers.BooleanField(read_only=True)
    fallback_models = serializers.ListField(child=serializers.CharField(), read_only=True)
    connection = serializers.SlugRelatedField(
        slug_field="name",
        read_only=True,
        allow_null=True,
        help_text="The operator's named connection the bot reaches the models it serves through; null: none.",
    )
    widget = serializers.SerializerMethodField(help_text="The chat widget's appearance (settings in force).")
    office_hours = OfficeHoursSerializer(
        source="*", read_only=True, help_text="When a person answers a hand-off; empty: any time (inbox/)."
    )

    class Meta:
        model = BotProfile
        fields = [
            "id",
            "tenant_id",
            "name",
            "description",
            "model",
            "embedding_model",
            "rewrite_model",
            "fallback_models",
            "api_base",
            "api_version",
            "connection",
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
            "monthly_budget_usd",
            "widget",
            "handoff",
            "office_hours",
        ]
        read_only_fields = fields

    @cached_property
    def _appearance_serializer(self) -> WidgetAppearanceSerializer:
        """One for every bot this serializer shows (a list's): a serializer builds its fields when
        first used, about fifteen times what showing one bot's appearance then takes."""
        return WidgetAppearanceSerializer()

    @extend_schema_field(WidgetAppearanceSerializer)
    def get_widget(self, bot: BotProfile) -> dict[str, Any]:
        return self._appearance_serializer.to_representation(appearance.appearance(bot.widget))


@extend_schema_field(
    {
        "type": "object",
        "nullable": True,
        "additionalProperties": False,
        "properties": {
            "api_key": {"type": "string", "maxLength": 4096},
            "headers": {
                "type": "object",
                "additionalProperties": {"type": "string", "maxLength": 4096},
                "description": "Extra HTTP headers sent with every model call (e.g. a gateway's team header).",
            },
        },
    }
)
class CredentialsField(serializers.Field):
    """`{"api_key": "...", "headers": {"X-Team": "..."}}`; `{}` or `null` clears. Write-only: never
    rendered. The shape is checked here, the content by the service (bots/services.py)."""

    default_error_messages = {
        # (Braces doubled: DRF formats the message.)
        "invalid": 'Must be an object such as {{"api_key": "..."}} or {{"headers": {{"X-Team": "..."}}}}.',
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_null=True, write_only=True, **kwargs)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            self.fail("invalid")
        if "api_key" in data:
            data = {**data, "api_key": StrictCharField(max_length=4096).run_validation(data["api_key"])}
        return data


@extend_schema_field(
    {
        "type": "object",
        "nullable": True,
        "additionalProperties": False,
        "description": "Appearance settings to change (the others are kept); a setting set to null goes back to "
        "its default, and `widget: null` resets them all.",
        "properties": {
            "title": {"type": "string", "nullable": True, "maxLength": appearance.MAX_TITLE_CHARS},
            "accent_color": {"type": "string", "nullable": True, "pattern": "^#[0-9a-fA-F]{6}$"},
            "position": {"type": "string", "nullable": True, "enum": [*appearance.POSITIONS, None]},
            "launcher": {"type": "string", "nullable": True, "enum": [*appearance.LAUNCHER_ICONS, None]},
            "avatar_url": {
                "type": "string",
                "nullable": True,
                "format": "uri",
                "maxLength": appearance.MAX_AVATAR_URL_CHARS,
                "description": "https only, without user name or password; loaded by visitors' browsers.",
            },
            "welcome_message": {"type": "string", "nullable": True, "maxLength": appearance.MAX_WELCOME_CHARS},
            "starter_questions": {
                "type": "array",
                "nullable": True,
                "maxItems": appearance.MAX_STARTER_QUESTIONS,
                "items": {"type": "string", "minLength": 1, "maxLength": appearance.MAX_STARTER_CHARS},
            },
            "lang": {"type": "string", "nullable": True, "enum": [*appearance.LANGUAGES, None]},
            "powered_by": {"type": "boolean", "nullable": True},
        },
    }
)
class WidgetAppearanceInputField(JsonObjectInputField):
    """A partial object of appearance settings; the shape is checked here, the values by the service
    (bots/appearance.py), which answers 422 with `errors` keyed `widget.<setting>`."""

    default_error_messages = {"invalid": "Must be an object of appearance settings, or null."}


class BotProfileUpdateInputSerializer(serializers.Serializer):
    """Every field optional (PATCH); create below makes `name` required and fills defaults."""

    name = StrictCharField(max_length=200, required=False)
    description = StrictCharField(required=False, allow_blank=True, max_length=10_000)
    model = StrictCharField(max_length=200, required=False)
    embedding_model = StrictCharField(max_length=200, required=False)
    rewrite_model = StrictCharField(
        max_length=200,
        required=False,
        allow_blank=True,
        help_text="The model that condenses follow-up questions before searching; blank: the chat model.",
    )
    fallback_models = serializers.ListField(
        child=StrictCharField(max_length=200),
        max_length=3,
        required=False,
        allow_null=True,
        help_text="Tried in order when the chat model fails transiently (timeout, 429, 5xx); [] for none.",
    )
    api_base = StrictCharField(
        max_length=500,
        required=False,
        allow_blank=True,
        help_text="The bot's own endpoint for its models (an OpenAI-compatible server, Azure, Ollama); "
        "blank: each provider's public endpoint.",
    )
    api_version = StrictCharField(
        max_length=50, required=False, allow_blank=True, help_text="The API version Azure OpenAI asks for."
    )
    connection = StrictCharField(
        max_length=60,
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text="The name of a connection the platform offers this workspace (GET /v1/models lists its models "
        'with `connection`); the models it serves are called through it, with its key. null or "": none.',
    )
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
    monthly_budget_usd = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        min_value=Decimal(0),
        allow_null=True,
        required=False,
        help_text="The most this bot may spend on models per calendar month (UTC), in USD, within the "
        "workspace's own budget; null: no cap of its own. Owners only.",
    )
    widget = WidgetAppearanceInputField(required=False)
    handoff = serializers.ChoiceField(
        choices=Handoff.choices,
        required=False,
        help_text="Talking to a person: off; on_request (the visitor asks); offered (also offered after a refusal "
        "or a negative rating).",
    )
    office_hours = OfficeHoursInputField(required=False)


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


# --- The retrieval test (bots/retrieval_test.py) ----------------------------------------------

# The preceding turns a test may carry: the largest history window a bot can have (50 exchanges).
MAX_HISTORY_MESSAGES = 100


class PrecedingTurnSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["user", "assistant"])
    content = StrictCharField(min_length=1, max_length=MAX_MESSAGE_CHARS, allow_blank=True, trim_whitespace=False)

    def validate_content(self, value: str) -> str:
        # Empty and blank alike: one readable message.
        if not value.strip():
            raise serializers.ValidationError("The message is empty.")
        return value


class RetrievalTestInputSerializer(serializers.Serializer):
    question = StrictCharField(
        min_length=1,
        max_length=MAX_MESSAGE_CHARS,
        allow_blank=True,  # "" gets the same message as blanks (validate_question)
        trim_whitespace=False,
        help_text="As a visitor would ask it.",
    )
    history = PrecedingTurnSerializer(
        many=True,
        required=False,
        max_length=MAX_HISTORY_MESSAGES,
        help_text=(
            "The turns before the question, oldest first (at most "
            f"{MAX_HISTORY_MESSAGES}); like a chat, only the bot's last `history_turns` exchanges are used."
        ),
    )

    def validate_question(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("The question is empty.")
        return value


class RetrievalTestChunkSerializer(serializers.Serializer):
    chunk_id = serializers.CharField()
    source_id = serializers.CharField(allow_null=True)
    source_name = serializers.CharField(allow_blank=True)
    title = serializers.CharField(allow_blank=True)
    url = serializers.CharField(allow_blank=True)
    content = serializers.CharField(help_text="The whole chunk.")
    authority = serializers.CharField(allow_null=True, help_text="mandatory, guideline, informational or null.")
    origin = serializers.ChoiceField(
        choices=["local", "nyxcore"], help_text="The bot's own index or an external service."
    )
    score = serializers.FloatField(help_text="The score a chat cites: the cosine similarity, or the service's own.")
    dense_score = serializers.FloatField(allow_null=True, help_text="Cosine similarity to the question (local).")
    lexical_score = serializers.FloatField(allow_null=True, help_text="BM25 for the question (local).")
    fused_score = serializers.FloatField(
        allow_null=True,
        help_text="The relevance local chunks are ordered by: the mean of the cosine and the BM25 share, 0-1; "
        "null for external results or a dense-only search.",
    )
    coverage = serializers.FloatField(
        allow_null=True, help_text="Share of the question's distinctive words in the chunk, 0-1 (local)."
    )
    passed = serializers.BooleanField(help_text="Whether it holds enough evidence to answer from.")
    reason = serializers.CharField(help_text="Why it passed or not.")
    prompt_position = serializers.IntegerField(
        allow_null=True, help_text="Its [n] in the prompt; null when it did not pass or the context was full."
    )


class RetrievalTestSerializer(serializers.Serializer):
    question = serializers.CharField(help_text="As asked.")
    searched_question = serializers.CharField(help_text="As searched: a follow-up resolved against the turns.")
    rewrite_method = serializers.CharField(help_text='How it was resolved: "as asked", "offline" or "model".')
    history_used = serializers.IntegerField(help_text="Preceding messages handed to the resolver (the bot's window).")
    threshold = serializers.FloatField(help_text="The bot's similarity_threshold.")
    refused = serializers.BooleanField(help_text="Whether the turn would be answered with the refusal message.")
    refusal_reason = serializers.CharField(allow_blank=True, help_text="Why; empty when not refused.")
    embed_ms = serializers.IntegerField()
    search_ms = serializers.IntegerField()
    warnings = serializers.ListField(child=serializers.CharField())
    chunks = RetrievalTestChunkSerializer(
        many=True, help_text="The local chunks in the hybrid search's order, then the external results used."
    )


# --- The model test (bots/model_test.py) ------------------------------------------------------


class ModelCheckSerializer(serializers.Serializer):
    purpose = serializers.ChoiceField(
        choices=["chat", "fallback", "rewrite", "embedding"],
        help_text="Which of the bot's models: its chat model, a fallback, its rewrite model or its embedding model.",
    )
    model = serializers.CharField()
    status = serializers.ChoiceField(choices=["ok", "failed"])
    latency_ms = serializers.IntegerField(help_text="How long the call took, failed or not.")
    detail = serializers.CharField(allow_null=True, help_text="Why it failed, in one sentence; null when ok.")
    dimensions = serializers.IntegerField(allow_null=True, help_text="The embedding's dimensions (embedding, ok).")


class ModelTestSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "failed"], help_text="ok when every check is ok.")
    detail = serializers.CharField(allow_null=True, help_text="The first failure's cause; null when ok.")
    checks = ModelCheckSerializer(many=True)
