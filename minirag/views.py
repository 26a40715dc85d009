"""Health endpoints."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from minirag import health
from minirag.openapi import ERROR_RESPONSES
from tenants.api import TenantAPIView
from tenants.authentication import Principal
from tenants.models import Role, role_at_least


@require_GET
def liveness(request: HttpRequest) -> JsonResponse:
    """`GET /health`: the process is up. No dependencies are touched."""
    return JsonResponse({"status": "ok"})


_component = inline_serializer(
    "ComponentHealth",
    fields={
        "status": serializers.ChoiceField(choices=["ok", "error"]),
        "detail": serializers.CharField(allow_null=True),
        "version": serializers.CharField(allow_null=True),
        "latency_ms": serializers.IntegerField(allow_null=True),
    },
)
_health = inline_serializer(
    "SystemHealth",
    fields={
        "status": serializers.ChoiceField(choices=["ok", "degraded"]),
        "postgres": _component,
        "qdrant": _component,
        "redis": _component,
    },
)


def _is_admin(principal: object) -> bool:
    return isinstance(principal, Principal) and role_at_least(principal.role, Role.ADMIN)


class SystemHealthView(APIView):
    """Readiness of PostgreSQL (or SQLite), Qdrant and Redis (or the in-process queue).
    Open to all; versions and error details only for an authenticated admin."""

    permission_classes = [AllowAny]

    def perform_authentication(self, request: Request) -> None:
        # Credentials are optional here: a bad token makes the caller anonymous, not refused.
        try:
            request.user  # noqa: B018 - triggers authentication
        except (exceptions.AuthenticationFailed, exceptions.PermissionDenied):
            request.user = AnonymousUser()
            request.auth = None

    @extend_schema(responses={200: _health}, auth=[{"bearerAuth": []}, {}])
    def get(self, request: Request) -> Response:
        components = health.check_components()
        show = (lambda c: c.full()) if _is_admin(request.auth) else (lambda c: c.public())
        body = {"status": health.overall_status(components)}
        body.update({name: show(component) for name, component in components.items()})
        return Response(body)


class DetailedHealthView(TenantAPIView):
    """Admins: components in full, uptime, this tenant's counts and the configuration (secrets masked)."""

    minimum_roles = {"get": Role.ADMIN}

    @extend_schema(
        responses={
            200: inline_serializer(
                "DetailedHealth",
                fields={
                    "status": serializers.ChoiceField(choices=["ok", "degraded"]),
                    "uptime_seconds": serializers.IntegerField(),
                    "components": serializers.DictField(child=_component),
                    "tenant": serializers.DictField(),
                    "counts": serializers.DictField(),
                    "config": serializers.DictField(),
                },
            ),
            **ERROR_RESPONSES,
        }
    )
    def get(self, request: Request) -> Response:
        components = health.check_components()
        return Response(
            {
                "status": health.overall_status(components),
                "uptime_seconds": health.uptime_seconds(),
                "components": {name: component.full() for name, component in components.items()},
                "tenant": {"id": str(self.tenant.pk), "slug": self.tenant.slug},
                "counts": health.tenant_counts(self.tenant),
                "config": health.config_summary(),
            }
        )
