"""Project-level guarantees: migrations in sync, a valid OpenAPI schema, JSON errors on /v1."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from django.urls import Resolver404, get_resolver, resolve
from django.urls.resolvers import URLResolver

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


def _routes(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every URL pattern as (its whole route, the pattern), in the order Django tries them."""
    for pattern in patterns:
        route = prefix + str(pattern.pattern).removeprefix("^").removesuffix("$").removesuffix(r"\Z")
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, route)
        else:
            yield route, pattern


def _example_path(route: str) -> str:
    """A path the route matches: its parameters filled with plausible values (a regular
    expression's named group: its first alternative when it lists words, else a word)."""

    def group(found: re.Match[str]) -> str:
        words = found.group(1).split("|")
        return words[0] if all(re.fullmatch(r"[\w-]+", word) for word in words) else "example"

    route = re.sub(r"\(\?P<\w+>([^)]*)\)", group, route)
    route = re.sub(r"<uuid:\w+>", "3f1c2d4e-1111-2222-3333-444455556666", route)
    route = re.sub(r"<int:\w+>", "7", route)
    route = re.sub(r"<(?:\w+:)?\w+>", "example", route)
    return "/" + route.replace("\\.", ".")


def test_no_route_hides_another_so_the_order_of_the_apps_urls_changes_nothing() -> None:
    """minirag/urls.py puts chat's routes first (a streamed answer keeps its request, and with it
    the list of patterns tried before the match): that is safe only while no route matches
    another route's paths."""
    checked = 0
    for route, pattern in _routes(get_resolver().url_patterns):
        try:
            match = resolve(_example_path(route))
        except Resolver404:
            continue  # a pattern whose example this simple filling cannot build
        assert (match.func, match.url_name) == (pattern.callback, pattern.name), f"{route} is hidden by {match.route}"
        checked += 1
    assert checked > 170
    assert len(resolve("/v1/chat").tried) <= 2


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
