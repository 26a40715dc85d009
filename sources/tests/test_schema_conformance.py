"""What the sources routes answer is what `/v1/schema` documents (see minirag/tests/test_fuzz_api.py)."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import TenantWorld
from minirag.task_queue import QueueUnavailableError
from minirag.tests.api_schema import CONFORMANCE_CHECKS, SchemaClient


def test_an_ingest_trigger_with_the_queue_down_is_a_documented_503(
    alpha: TenantWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise QueueUnavailableError("connection refused")

    monkeypatch.setattr("sources.services.dispatch", broker_down)
    response = SchemaClient().conforming(
        alpha.tokens["owner"],
        "POST",
        "/v1/sources/{id}/ingest",
        path_parameters={"id": str(alpha.text_source.pk)},
        checks=CONFORMANCE_CHECKS,  # a 5xx is the point here
    )
    assert response.status_code == 503
    assert "queue is unavailable" in response.json()["detail"]
