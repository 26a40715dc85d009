"""Input and output shapes for tenants, auth, users and API tokens (api-contract.md)."""

from __future__ import annotations

from rest_framework import serializers

from minirag.serializer_fields import StrictCharField
from tenants.models import SLUG_PATTERN, ApiToken, Role, Tenant, User

# --- Output -----------------------------------------------------------------------------------


class TenantSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tenant
        fields = ["id", "name", "slug", "is_active", "plan"]
        read_only_fields = fields


class UserSerializer(serializers.ModelSerializer):
    tenant_id = serializers.UUIDField(read_only=True, allow_null=True)

    class Meta:
        model = User
        fields = ["id", "tenant_id", "email", "display_name", "role", "is_active", "created_at", "last_login"]
        read_only_fields = fields


class ApiTokenSerializer(serializers.ModelSerializer):
    tenant_id = serializers.UUIDField(read_only=True)
    bot_profile_id = serializers.UUIDField(read_only=True, allow_null=True)
    user_id = serializers.UUIDField(read_only=True)
    allowed_origins = serializers.ListField(child=serializers.CharField(), read_only=True)

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


class UserUpdateInputSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254, required=False)
    password = _password_field(required=False)
    display_name = StrictCharField(max_length=200, required=False, allow_blank=True)
    role = serializers.ChoiceField(choices=Role.choices, required=False)
    is_active = serializers.BooleanField(required=False)


class ApiTokenCreateInputSerializer(serializers.Serializer):
    name = StrictCharField(max_length=200)
    bot_profile_id = serializers.UUIDField(required=False, allow_null=True)
    allowed_origins = serializers.ListField(
        child=StrictCharField(max_length=300), required=False, default=list, max_length=50
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
