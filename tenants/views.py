"""HTTP API for tenants, auth, users and API tokens. Thin: parse, call a service, render."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import update_session_auth_hash
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bots.selectors import bot_profile_reference
from minirag.errors import ForbiddenError
from minirag.openapi import ERROR_RESPONSES
from minirag.throttling import LoginThrottle, SignupThrottle
from tenants import selectors, services
from tenants.api import TenantAPIView, TenantViewSet
from tenants.models import ApiToken, Role, User
from tenants.serializers import (
    ApiTokenCreatedSerializer,
    ApiTokenCreateInputSerializer,
    ApiTokenSerializer,
    ApiTokenUpdateInputSerializer,
    LoginInputSerializer,
    LoginOutputSerializer,
    MeSerializer,
    TenantBootstrapInputSerializer,
    TenantBootstrapOutputSerializer,
    TenantMeSerializer,
    TenantSerializer,
    TenantUpdateInputSerializer,
    UserCreateInputSerializer,
    UserSerializer,
    UserUpdatedSerializer,
    UserUpdateInputSerializer,
)


def validated(serializer_class: type, data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class TenantBootstrapView(APIView):
    """Create a tenant, its owner and a first API token. Open unless MINIRAG_ALLOW_SIGNUP=False."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [SignupThrottle]

    @extend_schema(
        operation_id="tenants_create",
        request=TenantBootstrapInputSerializer,
        responses={201: TenantBootstrapOutputSerializer, **ERROR_RESPONSES},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        if not settings.ALLOW_SIGNUP:
            raise ForbiddenError("Sign-up is closed on this server; ask its operator for an account.")
        data = validated(TenantBootstrapInputSerializer, request.data)
        result = services.tenant_bootstrap(
            name=data["tenant_name"],
            slug=data["tenant_slug"],
            owner_email=data["owner_email"],
            owner_password=data["owner_password"],
            owner_display_name=data["owner_display_name"],
        )
        body = {
            "tenant": TenantSerializer(result.tenant).data,
            "api_token": result.raw_token,
            "token_prefix": result.api_token.token_prefix,
            "user": UserSerializer(result.owner).data,
        }
        return Response(body, status=status.HTTP_201_CREATED)


class TenantMeView(TenantAPIView):
    """The caller's tenant: any role reads it; only an owner changes its settings."""

    minimum_roles = {"patch": Role.OWNER}

    @extend_schema(responses={200: TenantMeSerializer, **ERROR_RESPONSES})
    def get(self, request: Request) -> Response:
        """The tenant, with its model budget and this month's spend."""
        return Response(TenantMeSerializer(self.tenant).data)

    @extend_schema(request=TenantUpdateInputSerializer, responses={200: TenantMeSerializer, **ERROR_RESPONSES})
    def patch(self, request: Request) -> Response:
        data = validated(TenantUpdateInputSerializer, request.data)
        tenant = services.tenant_update(tenant=self.tenant, actor=self.principal.user, **data)
        return Response(TenantMeSerializer(tenant).data)


class LoginView(APIView):
    """Email + password → JWT (HS256) for people; scripts should use API tokens."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginThrottle]

    @extend_schema(request=LoginInputSerializer, responses={200: LoginOutputSerializer, **ERROR_RESPONSES}, auth=[])
    def post(self, request: Request) -> Response:
        data = validated(LoginInputSerializer, request.data)
        login = services.auth_login(
            email=data["email"], password=data["password"], tenant_slug=data.get("tenant_slug") or None
        )
        return Response(
            {
                "access_token": login.access_token,
                "token_type": "bearer",
                "expires_in": login.expires_in,
                "user": UserSerializer(login.user).data,
                "tenant": TenantSerializer(login.tenant).data,
            }
        )


class MeView(TenantAPIView):
    @extend_schema(responses={200: MeSerializer, **ERROR_RESPONSES})
    def get(self, request: Request) -> Response:
        return Response(MeSerializer({"user": self.principal.user, "tenant": self.tenant}).data)


class UserViewSet(TenantViewSet):
    """Users of the tenant. Any role lists; owners and admins change (see services.user_update
    for self-service and the owner rules)."""

    serializer_class = UserSerializer
    input_serializer_classes = {"create": UserCreateInputSerializer, "partial_update": UserUpdateInputSerializer}
    queryset = User.objects.all()  # for the schema's model; requests use get_queryset()
    # Self-service edits are decided in the service, so PATCH is open to members here.
    minimum_roles = {"partial_update": Role.MEMBER}

    def get_queryset(self) -> Any:
        return selectors.user_list(tenant=self.tenant)

    def get_object(self) -> Any:
        return selectors.user_get(tenant=self.tenant, user_id=self.kwargs["pk"])

    @extend_schema(responses={200: UserSerializer(many=True), **ERROR_RESPONSES})
    def list(self, request: Request) -> Response:
        return self.paginated(self.get_queryset())

    @extend_schema(responses={200: UserSerializer, **ERROR_RESPONSES})
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(UserSerializer(self.get_object()).data)

    @extend_schema(request=UserCreateInputSerializer, responses={201: UserSerializer, **ERROR_RESPONSES})
    def create(self, request: Request) -> Response:
        data = self.validated_input()
        user = services.user_create(tenant=self.tenant, actor=self.principal.user, **data)
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=UserUpdateInputSerializer, responses={200: UserUpdatedSerializer, **ERROR_RESPONSES})
    def partial_update(self, request: Request, pk: str) -> Response:
        user = self.get_object()
        data = self.validated_input()
        version_before = user.auth_version
        user = services.user_update(tenant=self.tenant, actor=self.principal.user, user=user, **data)
        if user.auth_version != version_before and user.pk == self.principal.user.pk and user.is_active:
            self._continue_after_own_credentials_change(request, user)
        return Response(UserUpdatedSerializer(user).data)

    def _continue_after_own_credentials_change(self, request: Request, user: User) -> None:
        """Every session and JWT of the user issued before the change has ended; the caller's
        own goes on: a dashboard session is re-keyed (Django's update_session_auth_hash), a JWT
        caller gets a new token in the answer. An API token is no session and keeps working."""
        if self.principal.method == "session":
            update_session_auth_hash(request._request, user)
        elif self.principal.method == "jwt":
            user.access_token, user.expires_in = services.jwt_for(user)

    @extend_schema(responses={204: OpenApiResponse(description="Deactivated."), **ERROR_RESPONSES})
    def destroy(self, request: Request, pk: str) -> Response:
        services.user_deactivate(tenant=self.tenant, actor=self.principal.user, user=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class ApiTokenViewSet(TenantViewSet):
    """API tokens. Members create, see and revoke their own; owners and admins all of them."""

    serializer_class = ApiTokenSerializer
    input_serializer_classes = {
        "create": ApiTokenCreateInputSerializer,
        "partial_update": ApiTokenUpdateInputSerializer,
    }
    queryset = ApiToken.objects.all()  # for the schema's model; requests use get_queryset()
    minimum_roles = {"create": Role.MEMBER, "partial_update": Role.MEMBER, "destroy": Role.MEMBER}

    def get_queryset(self) -> Any:
        return selectors.api_token_list(tenant=self.tenant, viewer=self.principal.user)

    def get_object(self) -> Any:
        return selectors.api_token_get(tenant=self.tenant, viewer=self.principal.user, token_id=self.kwargs["pk"])

    @extend_schema(responses={200: ApiTokenSerializer(many=True), **ERROR_RESPONSES})
    def list(self, request: Request) -> Response:
        return self.paginated(self.get_queryset())

    @extend_schema(responses={200: ApiTokenSerializer, **ERROR_RESPONSES})
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(ApiTokenSerializer(self.get_object()).data)

    @extend_schema(request=ApiTokenCreateInputSerializer, responses={201: ApiTokenCreatedSerializer, **ERROR_RESPONSES})
    def create(self, request: Request) -> Response:
        data = self.validated_input()
        bot_profile = None
        if data.get("bot_profile_id"):
            bot_profile = bot_profile_reference(tenant=self.tenant, bot_profile_id=data["bot_profile_id"])
        token, raw = services.api_token_create(
            tenant=self.tenant,
            user=self.principal.user,
            name=data["name"],
            bot_profile=bot_profile,
            allowed_origins=data.get("allowed_origins") or [],
            expires_at=data.get("expires_at"),
            rate_limits=data.get("rate_limits"),
        )
        token.raw_token = raw
        return Response(ApiTokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ApiTokenUpdateInputSerializer, responses={200: ApiTokenSerializer, **ERROR_RESPONSES})
    def partial_update(self, request: Request, pk: str) -> Response:
        data = self.validated_input()
        token = services.api_token_update(
            tenant=self.tenant,
            actor=self.principal.user,
            token=self.get_object(),
            name=data.get("name"),
            allowed_origins=data.get("allowed_origins"),
            rate_limits=data.get("rate_limits"),
        )
        return Response(ApiTokenSerializer(token).data)

    @extend_schema(responses={204: OpenApiResponse(description="Revoked."), **ERROR_RESPONSES})
    def destroy(self, request: Request, pk: str) -> Response:
        services.api_token_revoke(tenant=self.tenant, token=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
