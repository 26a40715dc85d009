"""Base classes for every tenant API view: the tenant scope is entered right after
authentication and always left when the request ends (see tenants/tenancy.py)."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from rest_framework import serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants.authentication import Principal
from tenants.models import Tenant
from tenants.tenancy import tenant_scope


class TenantScopeMixin:
    """Runs the request's handler, and the rendering of its response, inside the tenant scope
    of the authenticated principal. Unauthenticated requests never get a scope."""

    _scope_stack: ExitStack

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        with ExitStack() as stack:
            self._scope_stack = stack
            return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]  # authenticates, checks permissions
        if isinstance(request.auth, Principal):
            self._scope_stack.enter_context(tenant_scope(request.auth.tenant))

    def finalize_response(self, request: Request, response: HttpResponseBase, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        # Render while still inside the scope: the browsable API builds forms from querysets.
        if isinstance(response, Response) and not response.is_rendered:
            response.render()
        return response

    @property
    def principal(self) -> Principal:
        principal = self.request.auth  # type: ignore[attr-defined]
        assert isinstance(principal, Principal), "principal is only available on authenticated views"
        return principal

    @property
    def tenant(self) -> Tenant:
        return self.principal.tenant


class TenantAPIView(TenantScopeMixin, APIView):
    pass


class TenantViewSet(TenantScopeMixin, viewsets.GenericViewSet):
    """`serializer_class` renders rows; `input_serializer_classes` maps an action to the shape it
    accepts, which also gives the browsable API and the OpenAPI schema the right request forms."""

    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    input_serializer_classes: dict[str, type[serializers.Serializer]] = {}

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return self.input_serializer_classes.get(getattr(self, "action", None) or "", self.serializer_class)

    def paginated(self, queryset: Any, serializer_class: type[serializers.Serializer] | None = None) -> Response:
        """One page of `queryset` rendered with `serializer_class` (default: the view's; total in X-Total-Count)."""
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response((serializer_class or self.serializer_class)(page, many=True).data)

    def validated_input(self) -> dict[str, Any]:
        serializer = self.get_serializer(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)
