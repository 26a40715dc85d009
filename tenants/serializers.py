"""Input and output shapes for tenants, auth, users and API tokens (api-contract.md)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from minirag.serializer_fields import OptionalBooleanField, StrictCharField
from providers.budgets import tenant_budget
from providers.serializers import BudgetSerializer
from tenants.models import SLUG_PATTERN, ApiToken, Role, Tenant, User

# --- Output -----------------------------------------------------------------------------------


class TenantSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tenant
        fields = ["id", "name", "slug", "is_active", "plan", "members_see_all_chats"]
        read_only_fields = fields


class TenantMeSerializer(TenantSerializer):
    """The caller's own tenant, with its model budget: what it may spend this month, what it has."""

    budget = serializers.SerializerMethodField()

    class Meta(TenantSerializer.Meta):
        fields = [*TenantSerializer.Meta.fields, "budget"]
        read_only_fields = fields

    @extend_schema_field(BudgetSerializer)
    def get_budget(self, tenant: Tenant) -> dict[str, Any]:
        return dict(BudgetSerializer(tenant_budget(tenant)).data)


class UserSerializer(serializers.ModelSerializer):
    tenant_id = serializers.UUIDField(read_only=True, allow_null=True)

    class Meta:
        model = User
        fields = ["id", "tenant_id", "email", "display_name", "role", "is_active", "created_at", "last_login"]
        read_only_fields = fields


class UserUpdatedSerializer(UserSerializer):
    """The User after `PATCH /v1/users/{id}`. When a caller authenticated with a JWT changed its
    own email or password, every JWT issued before (its own included) has ended: the answer
    carries a fresh one to continue with."""

    # Not read-only, so the schema lists them as optional: most answers do not carry them.
    access_token = serializers.CharField(
        required=False, help_text="Only after changing your own email or password with a JWT: its replacement."
    )
    expires_in = serializers.IntegerField(required=False, help_text="Seconds until access_token expires.")

    class Meta(UserSerializer.Meta):
        fields = [*UserSerializer.Meta.fields, "access_token", "expires_in"]
        read_only_fields = UserSerializer.Meta.fields


class RateLimitsSerializer(serializers.Serializer):
    """A bot token's chat limits (0 = unlimited)."""

    messages_per_minute = serializers.IntegerField(help_text="Messages through this token per minute.")
    messages_per_day = serializers.IntegerField(help_text="Messages through this token per day.")
    visitor_messages_per_minute = serializers.IntegerField(help_text="Messages per visitor per minute.")
    visitor_messages_per_day = serializers.IntegerField(help_text="Messages per visitor per day.")


class ApiTokenSerializer(serializers.ModelSerializer):
    tenant_id = serializers.UUIDField(read_only=True)
    bot_profile_id = serializers.UUIDField(read_only=True, allow_null=True)
    user_id = serializers.UUIDField(read_only=True)
    allowed_origins = serializers.ListField(child=serializers.CharField(), read_only=True)
    rate_limits = serializers.SerializerMethodField(
        help_text="Bot tokens: the chat limits in force (own values or the server defaults); null otherwise."
    )

    @extend_schema_field(RateLimitsSerializer(allow_null=True))
    def get_rate_limits(self, token: ApiToken) -> dict[str, int] | None:
        return token.chat_rate_limits() if token.is_bot_token else None

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "tenant_id",
            "name",
            "token_prefix",
            "is_active",
            "expires_at",
            "last_used_at",
            "created_at",
            "bot_profile_id",
            "allowed_origins",
            "user_id",
            "revoked_at",
            "rate_limits",
        ]
        read_only_fields = fields


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    raw_token = serializers.CharField(read_only=True, help_text="Shown once; store it now.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "raw_token"]
        read_only_fields = fields


class TenantBootstrapOutputSerializer(serializers.Serializer):
    tenant = TenantSerializer()
    api_token = serializers.CharField(help_text="The owner's first API token, shown once.")
    token_prefix = serializers.CharField()
    user = UserSerializer()


class LoginOutputSerializer(serializers.Serializer):
    access_token = serializers.CharField()
    token_type = serializers.CharField(default="bearer")
    expires_in = serializers.IntegerField(help_text="Seconds until the token expires.")
    user = UserSerializer()
    tenant = TenantSerializer()


class MeSerializer(serializers.Serializer):
    user = UserSerializer()
    tenant = TenantSerializer()


# --- Input ------------------------------------------------------------------------------------


def _password_field(**kwargs: object) -> StrictCharField:
    return StrictCharField(min_length=8, max_length=128, trim_whitespace=False, write_only=True, **kwargs)


class TenantBootstrapInputSerializer(serializers.Serializer):
    tenant_name = StrictCharField(max_length=200)
    tenant_slug = serializers.RegexField(
        SLUG_PATTERN,
        max_length=100,
        error_messages={"invalid": "Use lowercase letters, digits and hyphens only."},
    )
    owner_email = serializers.EmailField(max_length=254)
    owner_password = _password_field()
    owner_display_name = StrictCharField(max_length=200, required=False, allow_blank=True, default="")


class LoginInputSerializer(serializers.Serializer):
    email = StrictCharField(max_length=254)
    # Long enough for any real password, short enough that hashing it is never a denial of service.
    password = StrictCharField(max_length=4096, trim_whitespace=False, write_only=True)
    tenant_slug = StrictCharField(max_length=100, required=False, allow_blank=True, allow_null=True)


class UserCreateInputSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = _password_field()
    display_name = StrictCharField(max_length=200, required=False, allow_blank=True, default="")
    role = serializers.ChoiceField(choices=Role.choices, required=False, default=Role.MEMBER)


class TenantUpdateInputSerializer(serializers.Serializer):
    members_see_all_chats = OptionalBooleanField(
        required=False,
        help_text="Members read every chat of the tenant (true, the default) or only the chats they started "
        "(false). Owners and admins always read all.",
    )


class UserUpdateInputSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254, required=False)
    password = _password_field(required=False)
    current_password = StrictCharField(
        max_length=4096,
        trim_whitespace=False,
        write_only=True,
        required=False,
        help_text="Your own current password: required to change your own email or password, ignored otherwise.",
    )
    display_name = StrictCharField(max_length=200, required=False, allow_blank=True)
    role = serializers.ChoiceField(choices=Role.choices, required=False)
    is_active = OptionalBooleanField(required=False)


def _limit_field() -> serializers.IntegerField:
    return serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=10_000_000)


class RateLimitsInputSerializer(serializers.Serializer):
    """Any of the four limits; 0 = unlimited, null = back to the server default."""

    messages_per_minute = _limit_field()
    messages_per_day = _limit_field()
    visitor_messages_per_minute = _limit_field()
    visitor_messages_per_day = _limit_field()

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(f"Unknown limit {unknown[0]!r}; use {', '.join(self.fields)}.")
        return super().to_internal_value(data)


def _origins_field(**kwargs: Any) -> serializers.ListField:
    return serializers.ListField(
        child=StrictCharField(max_length=300),
        max_length=50,
        help_text="Bot tokens: origins (scheme://host[:port]) whose pages may use it, or '*' for any. "
        "Empty: no web page may use it (server-to-server only).",
        **kwargs,
    )


class ApiTokenCreateInputSerializer(serializers.Serializer):
    name = StrictCharField(max_length=200)
    bot_profile_id = serializers.UUIDField(required=False, allow_null=True)
    allowed_origins = _origins_field(required=False, default=list)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    rate_limits = RateLimitsInputSerializer(required=False)


class ApiTokenUpdateInputSerializer(serializers.Serializer):
    name = StrictCharField(max_length=200, required=False)
    allowed_origins = _origins_field(required=False)
    rate_limits = RateLimitsInputSerializer(required=False)
