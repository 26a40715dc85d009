"""Bot profiles: which models a bot uses, how it retrieves, and how it speaks."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from tenants.tenancy import TenantOwnedModel

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
DEFAULT_REFUSAL_MESSAGE = (
    "I don't know: the documents I have don't cover that. Could you rephrase, or ask about something they do cover?"
)


def default_chat_model() -> str:
    return settings.DEFAULT_CHAT_MODEL


def default_embedding_model() -> str:
    return settings.DEFAULT_EMBEDDING_MODEL


class Handoff(models.TextChoices):
    """Whether visitors can ask for a person (inbox/): never; when they ask ("Talk to a person");
    or also offered to them after the bot refused a question or an answer was rated negative."""

    OFF = "off", "Off"
    ON_REQUEST = "on_request", "On request"
    OFFERED = "offered", "On request, and offered after a refusal or a negative rating"


class BotProfile(TenantOwnedModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    model = models.CharField(max_length=200, default=default_chat_model)
    embedding_model = models.CharField(max_length=200, default=default_embedding_model)
    # Condenses follow-up questions before searching (chat/followups.py); blank: the chat model.
    rewrite_model = models.CharField(max_length=200, blank=True, default="")
    # Tried in order when the chat model fails transiently (timeout, rate limit, server error).
    fallback_models = models.JSONField(default=list, blank=True)
    # The bot's own endpoint for its models (an OpenAI-compatible server, an Azure resource, an Ollama);
    # blank: each provider's public endpoint. Extra headers live, encrypted, in the credentials.
    api_base = models.CharField("API base URL", max_length=500, blank=True, default="")
    api_version = models.CharField("API version", max_length=50, blank=True, default="")
    # A named connection the platform's operators set up (providers.Connection): the models it serves
    # are reached through it, with its key, which the tenant never sees. In use, it cannot be deleted.
    connection = models.ForeignKey(
        "providers.Connection", on_delete=models.PROTECT, null=True, blank=True, related_name="bots"
    )
    # The most this bot may spend on models per calendar month (UTC), within the tenant's own cap;
    # set by owners; null: no cap of its own (providers/budgets.py).
    monthly_budget_usd = models.DecimalField(
        "Monthly budget (USD)",
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
    )
    system_prompt = models.TextField(default=DEFAULT_SYSTEM_PROMPT)
    temperature = models.FloatField(default=0.7, validators=[MinValueValidator(0.0), MaxValueValidator(2.0)])
    max_tokens = models.PositiveIntegerField(
        default=1024, validators=[MinValueValidator(1), MaxValueValidator(128_000)]
    )
    # Retrieval and conversation settings (extensions of the v1 shape).
    top_k = models.PositiveSmallIntegerField(default=5, validators=[MinValueValidator(1), MaxValueValidator(50)])
    similarity_threshold = models.FloatField(
        default=0.3,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Chunks scoring below this cosine similarity are never used as context.",
    )
    refusal_message = models.TextField(default=DEFAULT_REFUSAL_MESSAGE)
    chunk_size = models.PositiveIntegerField(default=512, validators=[MinValueValidator(100), MaxValueValidator(8000)])
    chunk_overlap = models.PositiveIntegerField(default=64, validators=[MinValueValidator(0), MaxValueValidator(4000)])
    history_turns = models.PositiveSmallIntegerField(
        default=10, validators=[MinValueValidator(0), MaxValueValidator(50)]
    )
    # Fernet ciphertext of a JSON object such as {"api_key": "...", "headers": {"X-Team": "..."}};
    # empty when none is set.
    credentials_ciphertext = models.TextField(blank=True, default="", editable=False)
    # How the bot's chat widget looks (bots/appearance.py): title, accent colour, position, launcher
    # icon or avatar, welcome message, starter questions, language, "powered by". One JSON object
    # rather than nine columns: the settings are read and written together (the widget fetches them
    # as one document, the dashboard edits them as one fieldset), they are validated as a whole by
    # bots/appearance.py, none is ever queried on, and a new setting needs no migration. Only the
    # settings someone chose are stored; the defaults fill in the rest when read.
    widget = models.JSONField("Widget appearance", default=dict, blank=True)
    # Talking to a person (inbox/): the hand-off mode, and when someone can be expected to answer
    # (inbox/office_hours.py: {"timezone", "days": {"mon": ["09:00", "17:00"], ...}}; {}: any time).
    handoff = models.CharField("Hand-off to a person", max_length=12, choices=Handoff.choices, default=Handoff.OFF)
    office_hours = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "-created_at"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(temperature__gte=0) & models.Q(temperature__lte=2),
                name="bot_temperature_range",
            ),
            models.CheckConstraint(
                condition=models.Q(max_tokens__gte=1) & models.Q(max_tokens__lte=128_000),
                name="bot_max_tokens_range",
            ),
            models.CheckConstraint(
                condition=models.Q(chunk_overlap__lt=models.F("chunk_size") / 2),
                name="bot_chunk_overlap_below_half_size",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def has_credentials(self) -> bool:
        return bool(self.credentials_ciphertext)

    @property
    def answering_models(self) -> list[str]:
        """The models that may answer for this bot, in the order a turn tries them."""
        return list(dict.fromkeys([self.model, *(self.fallback_models or [])]))

    def clean(self) -> None:
        super().clean()
        if self.chunk_overlap is not None and self.chunk_size is not None:
            if self.chunk_overlap * 2 >= self.chunk_size:
                raise ValidationError({"chunk_overlap": "Must be less than half of chunk_size."})
