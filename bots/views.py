"""HTTP API for bot profiles."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from bots import selectors, services
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
)
from minirag.openapi import ERROR_RESPONSES, ErrorSerializer
from tenants.api import TenantViewSet
from tenants.models import Role


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
