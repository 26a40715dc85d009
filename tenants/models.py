"""Tenants, their users, and API tokens."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.crypto import salted_hmac

from tenants.tenancy import TenantOwnedModel, TenantScopedManager

SLUG_PATTERN = r"^[a-z0-9-]+$"
# In a bot token's allowed_origins: any browser origin. Never implied, only ever set explicitly.
ANY_ORIGIN = "*"
# A bot token's own chat limits (see ApiToken.chat_rate_limits).
RATE_LIMIT_FIELDS = (
    "messages_per_minute",
    "messages_per_day",
    "visitor_messages_per_minute",
    "visitor_messages_per_day",
)


class TenantQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        updated = super().update(**kwargs)
        from tenants.credential_cache import after_queryset_update

        after_queryset_update(self.model, kwargs)
        return updated

    update.alters_data = True


class Tenant(models.Model):
    """A customer of the service. The root of every tenant-owned row; not itself scoped."""

    # An API token's request carries its tenant, read with the token (tenants/credential_cache.py).
    reads_credentials = True

    class Plan(models.TextChoices):
        FREE = "free", "Free"
        PRO = "pro", "Pro"
        ENTERPRISE = "enterprise", "Enterprise"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    slug = models.CharField(
        max_length=100,
        unique=True,
        validators=[RegexValidator(SLUG_PATTERN, "Use lowercase letters, digits and hyphens only.")],
    )
    is_active = models.BooleanField(default=True)
    plan = models.CharField(max_length=20, choices=Plan.choices, default=Plan.FREE)
    # Who reads the tenant's conversations: owners and admins always read every chat; members
    # too while this is on (the v1 default), only the chats they started themselves when an
    # owner turns it off (chat/selectors.py applies it).
    members_see_all_chats = models.BooleanField(
        default=True,
        help_text="Members read every chat of the workspace. Off: members read only the chats they started; "
        "owners and admins still read all.",
    )
    # The most the workspace may spend on models in a calendar month (UTC), set by the platform's
    # operators; null: no cap (providers/budgets.py).
    monthly_budget_usd = models.DecimalField(
        "Monthly budget (USD)",
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
        help_text="Most the workspace may spend on models per calendar month (UTC), in USD. Empty: no cap.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"


class Role(models.TextChoices):
    """Tenant roles, weakest first. Compare with ``role_at_least``."""

    MEMBER = "member", "Member"
    ADMIN = "admin", "Admin"
    OWNER = "owner", "Owner"


_ROLE_RANK = {Role.MEMBER: 0, Role.ADMIN: 1, Role.OWNER: 2}


def role_at_least(role: str | None, minimum: str) -> bool:
    return role is not None and _ROLE_RANK[Role(role)] >= _ROLE_RANK[Role(minimum)]


class UserManager(TenantScopedManager, BaseUserManager):
    """Scoped like every tenant-owned manager, plus Django's user-creation helpers."""

    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **fields: Any) -> User:
        user = self.model(email=normalize_email(email), **fields)
        user.set_password(password)
        user.full_clean(exclude=["password"])
        user.save(using=self._db)
        return user

    def get_by_natural_key(self, username: str | None) -> User:
        """Natural keys identify platform operators only: tenant users' emails are unique per
        tenant, not globally."""
        return self.get(email=normalize_email(username or ""), tenant__isnull=True)

    def create_superuser(self, email: str, password: str | None = None, **fields: Any) -> User:
        """A platform operator: no tenant, sees every tenant in the dashboard."""
        fields.update(is_staff=True, is_superuser=True, tenant=None, role=Role.OWNER)
        return self.create_user(email, password, **fields)


def normalize_email(email: str) -> str:
    """Emails compare case-insensitively; store them lowercased and trimmed."""
    return (email or "").strip().lower()


class User(TenantOwnedModel, AbstractBaseUser, PermissionsMixin):
    """A person who logs in. Belongs to exactly one tenant; platform operators have none."""

    reads_credentials = True  # read with an API token (tenants/credential_cache.py)
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, null=True, blank=True, related_name="users")
    email = models.EmailField(max_length=254)
    display_name = models.CharField(max_length=200, blank=True, default="")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="May log in to the dashboard.")
    # Moves whenever the account's email or password changes or it is deactivated. Every JWT
    # carries the value it was issued under and every dashboard session a hash of it, so all
    # of them end at once (tenants/authentication.py, get_session_auth_hash below).
    auth_version = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = UserManager()
    all_tenants = BaseUserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint("tenant", Lower("email"), name="user_email_unique_per_tenant"),
            models.UniqueConstraint(
                Lower("email"),
                condition=models.Q(tenant__isnull=True),
                name="operator_email_unique",
            ),
            models.CheckConstraint(
                condition=models.Q(tenant__isnull=False) | models.Q(is_superuser=True),
                name="user_has_tenant_unless_operator",
            ),
        ]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        self.email = normalize_email(self.email)
        super().clean()

    @property
    def is_platform_operator(self) -> bool:
        return self.tenant_id is None and self.is_superuser

    # Django's session hash covers the password only, so an email change would leave other
    # dashboard sessions open; covering auth_version as well ends them too. Version 0 keeps
    # Django's own value, so sessions opened before the version existed stay valid.
    def get_session_auth_hash(self) -> str:
        if not self.auth_version:
            return super().get_session_auth_hash()
        return self._versioned_session_hash(secret=None)

    def get_session_auth_fallback_hash(self) -> Iterator[str]:
        if not self.auth_version:
            yield from super().get_session_auth_fallback_hash()
            return
        for secret in settings.SECRET_KEY_FALLBACKS:
            yield self._versioned_session_hash(secret=secret)

    def _versioned_session_hash(self, *, secret: str | None) -> str:
        key_salt = "tenants.User.get_session_auth_hash"
        value = f"{self.password}:{self.auth_version}"
        return salted_hmac(key_salt, value, secret=secret, algorithm="sha256").hexdigest()


class ApiToken(TenantOwnedModel):
    """A bearer credential. Only its SHA-256 is stored; the raw value is shown once.

    A *tenant token* acts with its creator's current role. A *bot token* (``bot_profile`` set) is
    the widget's credential: it may only chat with that one bot, from ``allowed_origins``.
    """

    reads_credentials = True  # kept for a few seconds once read (tenants/credential_cache.py)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_tokens")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=200)
    token_prefix = models.CharField(max_length=32)
    token_hash = models.CharField(max_length=64, unique=True)
    bot_profile = models.ForeignKey(
        "bots.BotProfile", on_delete=models.CASCADE, null=True, blank=True, related_name="api_tokens"
    )
    # Normalised origins (`https://shop.example`) or `*`; browser requests from anywhere else are
    # refused, and an empty list refuses every browser (see tenants/authentication.py).
    allowed_origins = models.JSONField(default=list, blank=True)
    # Bot tokens only: the raw token, encrypted. A bot token is a publishable key that sits in
    # page source by design, so the dashboard may show it again in the embed snippet.
    raw_token_ciphertext = models.TextField(blank=True, default="")
    # Bot tokens only: chat rate limits; null means the server default (settings.CHAT_RATE_LIMITS),
    # 0 means unlimited.
    messages_per_minute = models.PositiveIntegerField(null=True, blank=True)
    messages_per_day = models.PositiveIntegerField(null=True, blank=True)
    visitor_messages_per_minute = models.PositiveIntegerField(null=True, blank=True)
    visitor_messages_per_day = models.PositiveIntegerField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    # A short-lived bot token the dashboard made for its "Try it" panel; never offered in embed
    # snippets.
    is_dashboard_preview = models.BooleanField(default=False, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = "API token"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.token_prefix}…)"

    @property
    def is_bot_token(self) -> bool:
        return self.bot_profile_id is not None

    def chat_rate_limits(self) -> dict[str, int]:
        """Messages allowed per minute and per day, for the token and for each visitor: this
        token's own values where set, the server's defaults otherwise (0 = unlimited)."""
        defaults = settings.CHAT_RATE_LIMITS
        own = {
            "messages_per_minute": (self.messages_per_minute, defaults["token_per_minute"]),
            "messages_per_day": (self.messages_per_day, defaults["token_per_day"]),
            "visitor_messages_per_minute": (self.visitor_messages_per_minute, defaults["visitor_per_minute"]),
            "visitor_messages_per_day": (self.visitor_messages_per_day, defaults["visitor_per_day"]),
        }
        return {name: default if value is None else value for name, (value, default) in own.items()}

    def allows_origin(self, origin: str) -> bool:
        """Whether a browser on `origin` (as sent in the Origin header) may use this token."""
        return ANY_ORIGIN in self.allowed_origins or origin.rstrip("/").lower() in self.allowed_origins

    def is_expired(self, now: Any = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())
