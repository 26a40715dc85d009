"""Model prices, from the price list LiteLLM ships (read from its package, never from the network,
and without importing LiteLLM: stats pages must not pay its import), plus operator overrides in
`MINIRAG_MODEL_PRICES` for models the list does not know (self-hosted ones, negotiated rates)."""

from __future__ import annotations

import importlib.util
import json
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from django.conf import settings

from minirag.errors import InvalidInputError

PRICE_FILE = "model_prices_and_context_window_backup.json"
PER_MILLION = Decimal(1_000_000)
USD_PLACES = Decimal("0.00000001")


class Price(NamedTuple):
    prompt_per_1m: Decimal
    completion_per_1m: Decimal
    known: bool  # False: no price is known; costs count as zero

    def cost(self, prompt_tokens: int, completion_tokens: int) -> Decimal:
        return (self.prompt_per_1m * prompt_tokens + self.completion_per_1m * completion_tokens) / PER_MILLION

    def recorded_cost(self, prompt_tokens: int, completion_tokens: int) -> Decimal:
        """The cost as usage records store it (8 decimal places)."""
        return self.cost(prompt_tokens, completion_tokens).quantize(USD_PLACES)


FREE = Price(Decimal(0), Decimal(0), known=True)
UNKNOWN = Price(Decimal(0), Decimal(0), known=False)


@lru_cache(maxsize=1)
def _price_list() -> dict[str, dict]:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations))) / PRICE_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _per_million(value: object) -> Decimal:
    return (Decimal(str(value)) * PER_MILLION).normalize() if value not in (None, "") else Decimal(0)


def model_price(model: str) -> Price:
    """The price of `model` per million prompt and completion tokens. Offline `local/...` models
    are free; an unknown model is `UNKNOWN` (zero, flagged)."""
    overrides = settings.MODEL_PRICES
    if model in overrides:
        prompt, completion = overrides[model]
        return Price(Decimal(str(prompt)), Decimal(str(completion)), known=True)
    if model.startswith("local/"):
        return FREE
    prices = _price_list()
    entry = prices.get(model) or (prices.get(model.split("/", 1)[1]) if "/" in model else None)
    if not entry or "input_cost_per_token" not in entry:
        return UNKNOWN
    return Price(
        _per_million(entry.get("input_cost_per_token")), _per_million(entry.get("output_cost_per_token")), known=True
    )


def cost_usd(model: str, prompt_tokens: int, completion_tokens: int) -> Decimal:
    return model_price(model).recorded_cost(prompt_tokens, completion_tokens)


def optional_amount(value: object, *, field: str, message: str) -> Decimal | None:
    """An amount of USD typed by someone (a budget, a price): None for none, else a finite number, 0
    or more; anything else is a 422 on `field` with `message`."""
    if value is None or value == "":
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount < 0:
        raise InvalidInputError.for_field(field, message)
    return amount
