"""HTTP API for bot profiles."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import parse_etags
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from bots import selectors, services
from bots.appearance import appearance_etag, widget_config
from bots.embed import bot_embed, public_base_url
from bots.model_test import run_model_test
from bots.models import BotProfile
from bots.retrieval_test import run_retrieval_test
from bots.serializers import (
    BotProfileCreateInputSerializer,
    BotProfileSerializer,
    BotProfileUpdateInputSerializer,
    EmbedSerializer,
    ModelTestSerializer,
    RetrievalTestInputSerializer,
    RetrievalTestSerializer,
    WidgetConfigSerializer,
)
from minirag.cors import ALLOWED_HEADERS, PREFLIGHT_MAX_AGE_SECONDS
from minirag.errors import ForbiddenError, NotFoundError
from minirag.lookups import parse_uuid
from minirag.openapi import ERROR_RESPONSES, ErrorSerializer
from tenants.api import TenantAPIView, TenantViewSet
from tenants.authentication import Principal
from tenants.models import ApiToken, Role
from tenants.tenancy import tenant_scope_disabled


class BotProfileViewSet(TenantViewSet):
    """Bot profiles: any role reads; owners and admins create, change and deactivate."""

    serializer_class = BotProfileSerializer
    input_serializer_classes = {
        "create": BotProfileCreateInputSerializer,
        "partial_update": BotProfileUpdateInputSerializer,
        "retrieval_test": RetrievalTestInputSerializer,
    }
    queryset = BotProfile.objects.all()  # for the schema's model; requests use get_queryset()
    minimum_roles = {
        "embed": Role.ADMIN,  # the snippet carries a bot token
        "retrieval_test": Role.ADMIN,  # shows the bot's whole chunks, and embeds on every call
        "test_model": Role.ADMIN,  # spends tokens of the bot's key
    }

    def get_queryset(self) -> Any:
        return selectors.bot_profile_list(tenant=self.tenant)

    def get_object(self) -> Any:
        return selectors.bot_profile_get(tenant=self.tenant, bot_profile_id=self.kwargs["pk"])

    @extend_schema(responses={200: BotProfileSerializer(many=True), **ERROR_RESPONSES})
    def list(self, request: Request) -> Response:
        return self.paginated(self.get_queryset())

    @extend_schema(responses={200: BotProfileSerializer, **ERROR_RESPONSES})
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(BotProfileSerializer(self.get_object()).data)

    @extend_schema(request=BotProfileCreateInputSerializer, responses={201: BotProfileSerializer, **ERROR_RESPONSES})
    def create(self, request: Request) -> Response:
        data = self.validated_input()
        bot = services.bot_profile_create(tenant=self.tenant, actor_role=self.principal.role, **data)
        return Response(BotProfileSerializer(bot).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=BotProfileUpdateInputSerializer, responses={200: BotProfileSerializer, **ERROR_RESPONSES})
    def partial_update(self, request: Request, pk: str) -> Response:
        bot = self.get_object()
        data = self.validated_input()
        bot = services.bot_profile_update(tenant=self.tenant, bot=bot, actor_role=self.principal.role, **data)
        return Response(BotProfileSerializer(bot).data)

    @extend_schema(responses={204: OpenApiResponse(description="Deactivated."), **ERROR_RESPONSES})
    def destroy(self, request: Request, pk: str) -> Response:
        services.bot_profile_deactivate(tenant=self.tenant, bot=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        parameters=[
            OpenApiParameter("token_id", OpenApiTypes.UUID, description="A bot token of this bot (default: newest).")
        ],
        responses={200: EmbedSerializer, **ERROR_RESPONSES},
    )
    @action(detail=True, methods=["get"])
    def embed(self, request: Request, pk: str) -> Response:
        """The ready-to-paste widget snippet for this bot, with one of its bot tokens."""
        embed = bot_embed(
            bot=self.get_object(), base_url=public_base_url(request), token_id=request.query_params.get("token_id")
        )
        return Response(EmbedSerializer(embed).data)

    @extend_schema(
        operation_id="bot_profiles_retrieval_test",
        request=RetrievalTestInputSerializer,
        responses={200: RetrievalTestSerializer, 502: ErrorSerializer, 503: ErrorSerializer, **ERROR_RESPONSES},
    )
    @action(detail=True, methods=["post"], url_path="retrieval-test")
    def retrieval_test(self, request: Request, pk: str) -> Response:
        """What the bot would search, find and decide for a question (after optional preceding
        turns): the question as searched, every chunk the hybrid search returned with its dense,
        lexical and fused scores, which passed and why, and whether the turn would be refused.
        Nothing is recorded and no model answers; an inactive bot can be tested too. Rate-limited
        per tenant (429 + Retry-After); 502/503 when the embedding model or the vector store fails."""
        bot = self.get_object()  # another tenant's bot: 404 before the body is read
        data = self.validated_input()
        report = run_retrieval_test(
            tenant_id=self.tenant.pk, bot=bot, question=data["question"], history=data.get("history") or []
        )
        return Response(RetrievalTestSerializer(report).data)

    @extend_schema(
        operation_id="bot_profiles_test_model", request=None, responses={200: ModelTestSerializer, **ERROR_RESPONSES}
    )
    @action(detail=True, methods=["post"], url_path="test-model")
    def test_model(self, request: Request, pk: str) -> Response:
        """Whether the bot can reach its models: one tiny completion from its chat model (and each
        fallback and its rewrite model), one tiny embedding from its embedding model, through its
        own endpoint, key and headers. Each check says ok or failed, its latency and the one-line
        cause of a failure. Always 200 (the report says what failed); rate-limited per tenant
        (429 + Retry-After)."""
        report = run_model_test(tenant_id=self.tenant.pk, bot=self.get_object())
        return Response(ModelTestSerializer(report).data)


# --- The widget's appearance, for the widget itself --------------------------------------------

# Browsers keep the document this long, then revalidate it with its ETag (a 304 costs a few bytes):
# a change on the dashboard reaches visitors within five minutes.
WIDGET_CONFIG_MAX_AGE_SECONDS = 300
WIDGET_CONFIG_EXPOSED_HEADERS = "ETag, Retry-After"


class AnyPrincipal(BasePermission):
    """Anyone authenticated reaches the view, which decides: only the bot's own widget token reads."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, Principal)


def _widget_config_preflight(request: HttpRequest, bot_id: str) -> HttpResponse:
    """A CORS preflight carries no token, but this route names its bot: it is granted to the origins
    one of the bot's active widget tokens allows, and refused (403, no CORS headers) to any other."""
    origin = request.headers["Origin"]
    parsed = parse_uuid(bot_id)
    allowed = False
    if parsed is not None:
        now = timezone.now()
        with tenant_scope_disabled("widget-config preflight: the origins the bot's widget tokens allow"):
            tokens = ApiToken.all_tenants.filter(bot_profile_id=parsed, is_active=True).only(
                "allowed_origins", "expires_at"
            )
            allowed = any(token.allows_origin(origin) and not token.is_expired(now) for token in tokens)
    response = HttpResponse(status=status.HTTP_204_NO_CONTENT if allowed else status.HTTP_403_FORBIDDEN)
    patch_vary_headers(response, ["Origin"])
    if allowed:
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Methods"] = "GET"
        response["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_SECONDS)
    return response


class BotWidgetConfigView(TenantAPIView):
    """`GET /v1/bot-profiles/{id}/widget-config`: the bot's widget appearance and hand-off setting,
    for the widget.

    Answers the bot's own widget (bot) token only: another bot's token gets 403, a tenant token or a
    dashboard session 403 (they read `widget` on `GET /v1/bot-profiles/{id}`), another tenant's or an
    unknown or inactive bot 404. CORS is answered per token, like `POST /v1/chat`, and the preflight
    per bot (above). Public and cacheable: nothing in it is secret, and it changes rarely."""

    permission_classes = [AnyPrincipal]
    queryset = BotProfile.objects.all()  # for the schema's path parameter and the isolation suite

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if (
            request.method == "OPTIONS"
            and "Origin" in request.headers
            and ("Access-Control-Request-Method" in request.headers)
        ):
            return _widget_config_preflight(request, str(kwargs.get("pk", "")))
        return super().dispatch(request, *args, **kwargs)

    @extend_schema(
        operation_id="bot_profiles_widget_config",
        parameters=[
            OpenApiParameter(
                "If-None-Match",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="The ETag of a copy the caller holds: 304 when it is still current.",
            ),
            OpenApiParameter(
                "ETag", OpenApiTypes.STR, OpenApiParameter.HEADER, response=[200, 304], description="The version."
            ),
            OpenApiParameter(
                "Cache-Control",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                response=[200, 304],
                description=f"public, max-age={WIDGET_CONFIG_MAX_AGE_SECONDS}",
            ),
        ],
        responses={
            200: WidgetConfigSerializer,
            304: OpenApiResponse(description="Not modified: the caller's copy (If-None-Match) is current."),
            **ERROR_RESPONSES,
        },
    )
    def get(self, request: Request, pk: str) -> Response:
        """The widget's appearance settings in force (title, accent colour, position, launcher icon or
        avatar, welcome message, starter questions, language, "powered by") and the bot's hand-off
        setting (whether to offer "Talk to a person"), for the bot's widget token only. Attributes on
        the widget's element override the appearance (docs/widget.md)."""
        principal = self.principal
        bot = selectors.bot_profile_get(tenant=self.tenant, bot_profile_id=pk)
        if not principal.is_bot_token:
            raise ForbiddenError(
                "Only the bot's widget token reads its widget-config; read `widget` on GET /v1/bot-profiles/{id}."
            )
        if principal.bot_profile_id != bot.pk:
            raise ForbiddenError("This token can only read its own bot's widget-config.")
        if not bot.is_active:
            raise NotFoundError("Bot profile not found.")
        data = WidgetConfigSerializer(widget_config(bot.widget, bot.handoff)).data
        etag = appearance_etag(data)
        headers = {
            "ETag": etag,
            "Cache-Control": f"public, max-age={WIDGET_CONFIG_MAX_AGE_SECONDS}",
        }
        # If-None-Match compares weakly (RFC 9110): a proxy that compressed the answer marks its copy W/.
        wanted = {tag.removeprefix("W/") for tag in parse_etags(request.headers.get("If-None-Match", ""))}
        if etag in wanted or "*" in wanted:
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers=headers)
        return Response(data, headers=headers)

    def finalize_response(self, request: Request, response: HttpResponseBase, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        # One cached copy per token and per page origin (shared caches included).
        patch_vary_headers(response, ["Origin", "Authorization"])
        origin = request.headers.get("Origin")
        # Authentication may have failed: the Django request carries a principal only when it succeeded.
        principal = getattr(request._request, "auth", None)
        if isinstance(principal, Principal):
            readable = principal.is_bot_token and principal.api_token.allows_origin(origin or "")
        else:
            readable = response.status_code >= 400  # a refusal the widget can log (a revoked token, say)
        if origin and readable:
            response["Access-Control-Allow-Origin"] = origin
            response["Access-Control-Expose-Headers"] = WIDGET_CONFIG_EXPOSED_HEADERS
        return response
