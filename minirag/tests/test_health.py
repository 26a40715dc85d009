"""Health endpoints: the v1 shape, real component checks, details only for admins."""

from __future__ import annotations

import pytest
from django.test import override_settings

from conftest import TenantWorld, api_client

pytestmark = pytest.mark.django_db
COMPONENT_KEYS = {"status", "detail", "version", "latency_ms"}


def test_liveness(client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_system_health_public_shape_hides_versions_and_details(alpha: TenantWorld) -> None:
    for client in (api_client(), alpha.client("member"), api_client("nrag_live_bogus")):
        response = client.get("/v1/system/health")
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"status", "postgres", "qdrant", "redis"}
        assert body["status"] == "ok"
        for name in ("postgres", "qdrant", "redis"):
            assert set(body[name]) == COMPONENT_KEYS
            assert body[name]["status"] == "ok"
            assert body[name]["version"] is None and body[name]["detail"] is None
            assert isinstance(body[name]["latency_ms"], int)


def test_system_health_for_an_admin_shows_what_actually_runs(alpha: TenantWorld) -> None:
    body = alpha.client("admin").get("/v1/system/health").json()
    assert body["postgres"]["detail"] == "postgresql"
    assert body["postgres"]["version"][0].isdigit()
    assert body["redis"]["detail"] == "redis" and body["redis"]["version"][0].isdigit()
    assert body["qdrant"]["detail"] == "qdrant in-memory"


def test_a_broken_component_degrades_the_status_with_the_reason_for_admins(alpha: TenantWorld) -> None:
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        public = api_client().get("/v1/system/health").json()
        admin = alpha.client("owner").get("/v1/system/health").json()
    assert public["status"] == "degraded" and public["redis"] == {
        "status": "error",
        "detail": None,
        "version": None,
        "latency_ms": public["redis"]["latency_ms"],
    }
    assert admin["redis"]["status"] == "error"
    assert "Connection" in admin["redis"]["detail"]


def test_embedded_mode_reports_the_in_process_queue(alpha: TenantWorld) -> None:
    with override_settings(REDIS_URL=""):
        body = alpha.client("owner").get("/v1/system/health").json()
    assert body["redis"]["status"] == "ok"
    assert "in-process" in body["redis"]["detail"]


def test_detailed_health_has_counts_and_masked_config(alpha: TenantWorld) -> None:
    with override_settings(QDRANT_API_KEY="qdrant-secret-value"):
        response = alpha.client("admin").get("/v1/system/health/detailed")
    assert response.status_code == 200
    body = response.json()
    assert {"status", "uptime_seconds", "components", "tenant", "counts", "config"} <= set(body)
    assert body["tenant"]["slug"] == "alpha"
    assert body["counts"]["users"] == {"total": 3, "active": 3}
    assert body["counts"]["bot_profiles"] == {"total": 1, "active": 1}
    assert body["counts"]["api_tokens"] == {"active": 3, "active_bot_tokens": 1}
    assert body["config"]["qdrant"]["api_key"] == "***"
    text = response.content.decode()
    for secret in ("qdrant-secret-value", "test-jwt-secret", "test-secret-key"):
        assert secret not in text
