"""Project-level guarantees: migrations in sync, a valid OpenAPI schema, JSON errors on /v1."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command

from conftest import TenantWorld, api_client
from minirag.error_handlers import flatten_errors, summarize_errors

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def test_models_and_migrations_are_in_sync() -> None:
    call_command("makemigrations", "--check", "--dry-run", stdout=io.StringIO(), stderr=io.StringIO())


def test_system_checks_pass() -> None:
    call_command("check", "--fail-level", "WARNING", stdout=io.StringIO())


def test_the_openapi_schema_validates_and_covers_the_api(db) -> None:
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    schema = yaml.safe_load(out.getvalue())
    paths = set(schema["paths"])
    for path in (
        "/v1/tenants",
        "/v1/auth/login",
        "/v1/users/{id}",
        "/v1/api-tokens",
        "/v1/bot-profiles/{id}",
        "/v1/system/health",
    ):
        assert path in paths
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    response = api_client().get("/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200


def test_the_docs_page_is_served_without_the_network(client) -> None:
    response = client.get("/v1/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/" in html
    assert "cdn.jsdelivr" not in html


def test_unknown_v1_routes_answer_json_404(alpha: TenantWorld) -> None:
    response = alpha.client().get("/v1/does-not-exist")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_wrong_methods_are_405_with_detail(alpha: TenantWorld) -> None:
    response = alpha.client().put("/v1/tenants/me", {}, format="json")
    assert response.status_code == 405
    assert "not allowed" in response.json()["detail"]


def test_error_flattening_reads_well() -> None:
    errors = flatten_errors({"name": ["Required."], "children": [{}, {"url": ["Bad URL"]}], "non_field_errors": ["X"]})
    assert errors == {"name": ["Required."], "children.1.url": ["Bad URL"], "": ["X"]}
    assert summarize_errors(errors) == "name: Required. children.1.url: Bad URL. X."


def test_every_setting_read_from_the_environment_is_documented() -> None:
    settings_source = (ROOT / "minirag" / "settings.py").read_text()
    names = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z][A-Z0-9_]+)"', settings_source))
    names |= set(re.findall(r'os\.environ\.get\("([A-Z][A-Z0-9_]+)"', settings_source))
    assert len(names) > 20
    documented = (ROOT / ".env.example").read_text()
    missing = sorted(name for name in names if not re.search(rf"^#? ?{name}=", documented, re.MULTILINE))
    assert not missing, f"Document these variables in .env.example: {missing}"


def test_the_code_passes_the_linter() -> None:
    ruff = Path(sys.executable).with_name("ruff")
    for args in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run([str(ruff), *args], cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_every_apps_tests_are_collected_by_make_test() -> None:
    """pytest runs only the folders in pyproject's `testpaths`: a new app's tests must be listed."""
    import tomllib

    testpaths = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["testpaths"])
    apps_with_tests = {path.parent.parent.name for path in ROOT.glob("*/tests/__init__.py")}
    assert apps_with_tests <= testpaths, f"add to testpaths in pyproject.toml: {sorted(apps_with_tests - testpaths)}"
