"""Calling the API in-process through its own OpenAPI schema (schemathesis over Django's WSGI
application) and checking each answer against what `/v1/schema` documents. Used by the fuzz suite
(test_fuzz_api.py) and by regression tests that pin what the schema promises."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

SCHEMA_PATH = "/v1/schema"
# A documented status code, content type, headers and body shape.
CONFORMANCE_CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# ... and no 5xx.
CHECKS = [not_a_server_error, *CONFORMANCE_CHECKS]


@contextmanager
def keeping_the_test_connection() -> Iterator[None]:
    """As Django's own test client does around each request: the request keeps the test's
    database connection (and its transaction) instead of closing it when it starts and ends."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


class SchemaClient:
    """The WSGI application and the schema it serves."""

    def __init__(self) -> None:
        self.app = get_wsgi_application()
        with keeping_the_test_connection():
            self.schema = schemathesis.openapi.from_wsgi(SCHEMA_PATH, self.app)

    def operations(self) -> Iterator[Any]:
        for result in self.schema.get_all_operations():
            yield result.ok()

    def operation(self, method: str, path: str) -> Any:
        return self.schema[path][method.upper()]

    def call(self, case: Any, token: str) -> Any:
        with keeping_the_test_connection():
            return case.call(app=self.app, headers={"Authorization": f"Bearer {token}"})

    def conforming(self, token: str, method: str, path: str, *, checks: list | None = None, **case: Any) -> Any:
        """Send one request (`Case` arguments: path_parameters, query, body, ...) and fail unless
        the answer is what the schema documents (and, by default, not a 5xx). Returns
        schemathesis' response."""
        if "body" in case:
            case.setdefault("media_type", "application/json")
        request = self.operation(method, path).Case(**case)
        response = self.call(request, token)
        request.validate_response(response, checks=checks or CHECKS)
        return response
