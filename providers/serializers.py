"""Read shapes: the model catalogue (`GET /v1/models`) and a monthly budget."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from providers.budgets import Budget
from providers.catalogue import ENTRY_SOURCES, MODES


class ModelEntrySerializer(serializers.Serializer):
    """One model a bot can use (providers.catalogue.ModelEntry)."""

    id = serializers.CharField(
        read_only=True, help_text='The model string a bot stores, as LiteLLM routes it: "gpt-4o-mini", "local/minilm".'
    )
    provider = serializers.CharField(
        read_only=True, help_text='The LiteLLM provider the model is called through: "openai", "anthropic", "local".'
    )
    mode = serializers.ChoiceField(
        choices=MODES,
        read_only=True,
        help_text="chat: answers questions (a bot's chat model); embedding: indexes and searches its sources.",
    )
    context_window = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="The most input tokens the model reads; null when unknown."
    )
    max_output_tokens = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text="The most tokens one answer can have; null when unknown or for embedding models.",
    )
    input_cost_per_token = serializers.FloatField(
        read_only=True,
        allow_null=True,
        help_text="USD per prompt token (LiteLLM's price list or the operator's MINIRAG_MODEL_PRICES); null when "
        "no price is known, 0 for the offline models.",
    )
    output_cost_per_token = serializers.FloatField(
        read_only=True,
        allow_null=True,
        help_text="USD per completion token, as input_cost_per_token; 0 for embedding models.",
    )
    has_credentials = serializers.BooleanField(
        read_only=True,
        help_text="The platform can call this model without a key of the bot's own: the provider's key is set on "
        "the server, or the provider needs none (the offline models, ollama).",
    )
    source = serializers.ChoiceField(
        choices=ENTRY_SOURCES,
        read_only=True,
        help_text="litellm: LiteLLM's model list; local: MiniRAG's offline models; connection: a named connection.",
    )
    connection = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="The named connection the model is reached through (a bot picks it with its `connection` field); "
        "null for the others.",
    )


class BudgetSerializer(serializers.Serializer):
    """A monthly spend cap and this month's use of it (providers/budgets.py)."""

    monthly_budget_usd = serializers.DecimalField(
        source="budget_usd",
        max_digits=12,
        decimal_places=2,
        allow_null=True,
        help_text="The cap per calendar month (UTC), in USD; null: none.",
    )
    spent_usd = serializers.DecimalField(
        max_digits=16, decimal_places=4, help_text="Spent on models this month, at the prices of the usage statistics."
    )
    forecast_usd = serializers.SerializerMethodField(help_text="This month's spend if it goes on at the pace so far.")
    month = serializers.SerializerMethodField(help_text="The month counted (YYYY-MM, UTC).")
    resets_at = serializers.DateTimeField(help_text="When the next month's count starts.")

    @extend_schema_field(serializers.DecimalField(max_digits=16, decimal_places=2))
    def get_forecast_usd(self, budget: Budget) -> str:
        return str(budget.forecast_usd())

    @extend_schema_field(serializers.RegexField(r"^\d{4}-\d{2}$"))
    def get_month(self, budget: Budget) -> str:
        return f"{budget.month:%Y-%m}"
