"""Sentinels shared by services."""

from typing import Any

# "Argument not given" for partial updates, where None is a meaningful value (e.g. "clear it").
UNSET: Any = object()
