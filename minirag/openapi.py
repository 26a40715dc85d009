"""OpenAPI (drf-spectacular): the error shapes and the bearer security scheme."""

from __future__ import annotations

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="A human-readable message.")


class ValidationErrorSerializer(ErrorSerializer):
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Field path → messages.",
    )


def event_stream(description: str, events: list[str]) -> OpenApiResponse:
    """A `text/event-stream` answer, documented one event at a time (what OpenAPI 3.2 calls the
    item schema, and how schema-driven clients and testers read an event stream's schema): the
    event's name and its `data` line."""
    return OpenApiResponse(
        response={
            "type": "object",
            "properties": {
                "event": {"type": "string", "enum": events},
                "data": {"type": "string", "description": "The event's data: one line of JSON."},
                "id": {"type": "string"},
            },
            "required": ["event", "data"],
        },
        description=description,
    )


ERROR_RESPONSES = {
    400: ErrorSerializer,
    401: ErrorSerializer,
    403: ErrorSerializer,
    404: ErrorSerializer,
    409: ErrorSerializer,
    413: ErrorSerializer,
    # A body without a Content-Type, or in a type no parser reads.
    415: ErrorSerializer,
    422: ValidationErrorSerializer,
    429: ErrorSerializer,
    # Something the request needs is down for a moment (the database, the task queue).
    503: ErrorSerializer,
}


class BearerAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.authentication.BearerAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: object) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token (`nrag_live_...`) or a JWT from POST /v1/auth/login.",
        }


class TenantSessionScheme(SessionScheme):
    target_class = "tenants.authentication.TenantSessionAuthentication"
