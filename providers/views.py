"""HTTP API of the model catalogue: `GET /v1/models`."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from minirag.errors import InvalidInputError
from minirag.openapi import ERROR_RESPONSES
from minirag.pagination import ArrayLimitOffsetPagination
from providers.catalogue import MODES, Mode, model_list
from providers.serializers import ModelEntrySerializer
from tenants.api import TenantAPIView

TRUE_WORDS = ("true", "1")
FALSE_WORDS = ("false", "0")
# limit and offset, as every list of the API documents them.
PAGE_PARAMETERS = [
    OpenApiParameter(item["name"], item["schema"], OpenApiParameter.QUERY, description=item["description"])
    for item in ArrayLimitOffsetPagination().get_schema_operation_parameters(view=None)
]


class ModelCatalogueView(TenantAPIView):
    """The models a bot can be given, for any role of the tenant (never a widget token): the platform's list, plus
    the models of the named connections the platform offers this tenant."""

    @extend_schema(
        operation_id="models_list",
        parameters=[
            OpenApiParameter("mode", OpenApiTypes.STR, enum=list(MODES), description="Only chat or embedding models."),
            OpenApiParameter("provider", OpenApiTypes.STR, description='Only this LiteLLM provider ("openai").'),
            OpenApiParameter("q", OpenApiTypes.STR, description="Only ids containing this text (any case)."),
            OpenApiParameter(
                "has_credentials",
                OpenApiTypes.BOOL,
                description="true: only models the platform can call without a bot's own key; false: only the others.",
            ),
            *PAGE_PARAMETERS,
        ],
        responses={200: ModelEntrySerializer(many=True), **ERROR_RESPONSES},
    )
    def get(self, request: Request) -> Response:
        entries = model_list(
            tenant_id=self.tenant.pk,
            mode=_mode_param(request),
            provider=request.query_params.get("provider") or None,
            q=request.query_params.get("q") or None,
            has_credentials=_bool_param(request, "has_credentials"),
        )
        paginator = ArrayLimitOffsetPagination()
        page = paginator.paginate_queryset(entries, request, view=self)
        return paginator.get_paginated_response(ModelEntrySerializer(page, many=True).data)


def _mode_param(request: Request) -> Mode | None:
    raw = request.query_params.get("mode") or None
    if raw is None:
        return None
    for mode in MODES:
        if raw == mode:
            return mode
    raise InvalidInputError.for_field("mode", f"Must be {' or '.join(MODES)}.")


def _bool_param(request: Request, name: str) -> bool | None:
    raw = (request.query_params.get(name) or "").lower()
    if not raw:
        return None
    if raw in TRUE_WORDS:
        return True
    if raw in FALSE_WORDS:
        return False
    raise InvalidInputError.for_field(name, "Must be true or false.")
