"""Fixtures for tests of the provider layer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from providers.tests.fake_provider import FakeProvider


@pytest.fixture
def fake_provider() -> Iterator[FakeProvider]:
    """A running fake model provider on loopback (OpenAI, Azure OpenAI and Ollama APIs), stopped after the test."""
    with FakeProvider() as fake:
        yield fake
