"""Writes for tenants, users and API tokens. Every function takes the tenant explicitly."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from minirag.crypto import DecryptionError, decrypt_text, encrypt_text
from minirag.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError, UnauthorizedError
from minirag.sentinels import UNSET
from tenants.backends import find_login_candidates, users_with_password
from tenants.current_password import verify_current_password
from tenants.models import ANY_ORIGIN, RATE_LIMIT_FIELDS, ApiToken, Role, Tenant, User, normalize_email, role_at_least
from tenants.tenancy import tenant_scope
from tenants.tokens import generate_api_token, issue_jwt

if TYPE_CHECKING:
    from bots.models import BotProfile

MAX_ALLOWED_ORIGINS = 50
ORIGIN_HOST = re.compile(r"[a-z0-9.-]+|[0-9a-f:.]+")  # a DNS name or IPv4, or an IPv6 literal


@dataclass(frozen=True)
class TenantBootstrap:
    tenant: Tenant
    owner: User
    api_token: ApiToken
    raw_token: str


@transaction.atomic
def tenant_bootstrap(
    *, name: str, slug: str, owner_email: str, owner_password: str, owner_display_name: str = ""
) -> TenantBootstrap:
    """Create a tenant, its first owner, and the owner's first API token (shown once)."""
    if Tenant.objects.filter(slug=slug).exists():
        raise ConflictError(f"A tenant with slug '{slug}' already exists.")
    tenant = Tenant(name=name.strip(), slug=slug)
    tenant.full_clean()
    try:
        with transaction.atomic():
            tenant.save()
    except IntegrityError:  # lost a race for the same slug
        raise ConflictError(f"A tenant with slug '{slug}' already exists.") from None
    with tenant_scope(tenant):
        owner = user_create(
            tenant=tenant,
            actor=None,
            email=owner_email,
            password=owner_password,
            display_name=owner_display_name,
            role=Role.OWNER,
        )
        token, raw = api_token_create(tenant=tenant, user=owner, name="Bootstrap token")
    return TenantBootstrap(tenant=tenant, owner=owner, api_token=token, raw_token=raw)


@transaction.atomic
def tenant_update(*, tenant: Tenant, actor: User, members_see_all_chats: bool = UNSET) -> Tenant:
    """The tenant's own settings, changed by an owner: whether members read every chat of the
    tenant (the default) or only the chats they started themselves."""
    if actor.tenant_id != tenant.pk:
        raise NotFoundError("Tenant not found.")
    if actor.role != Role.OWNER:
        raise ForbiddenError("Only an owner can change the workspace's settings.")
    changed: list[str] = []
    if members_see_all_chats is not UNSET and members_see_all_chats != tenant.members_see_all_chats:
        tenant.members_see_all_chats = members_see_all_chats
        changed.append("members_see_all_chats")
    if changed:
        tenant.full_clean()
        tenant.save(update_fields=[*changed, "updated_at"])
    return tenant


# --- Users ------------------------------------------------------------------------------------


def validate_new_password(password: str, user: User | None = None) -> None:
    if not 8 <= len(password) <= 128:
        raise InvalidInputError.for_field("password", "Must be between 8 and 128 characters.")
    try:
        validate_password(password, user)
    except DjangoValidationError as exc:
        raise InvalidInputError(f"password: {' '.join(exc.messages)}", errors={"password": exc.messages}) from None


EMAIL_TAKEN = "A user with this email already exists in this tenant."


def _validate_and_save(user: User) -> None:
    user.full_clean(exclude=["password"])
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:  # lost a race with a concurrent request for the same email
        raise ConflictError(EMAIL_TAKEN) from None


def _email_taken(tenant: Tenant, email: str, exclude: User | None = None) -> bool:
    users = User.objects.filter(tenant=tenant, email=email)
    if exclude is not None:
        users = users.exclude(pk=exclude.pk)
    return users.exists()


@transaction.atomic
def user_create(
    *,
    tenant: Tenant,
    actor: User | None,
    email: str,
    password: str,
    display_name: str = "",
    role: str = Role.MEMBER,
    is_staff: bool = False,
) -> User:
    """`actor` None means the system itself (bootstrap, seed, management commands)."""
    if actor is not None:
        if not role_at_least(actor.role, Role.ADMIN):
            raise ForbiddenError("Only owners and admins can add users.")
        if role == Role.OWNER and actor.role != Role.OWNER:
            raise ForbiddenError("Only an owner can grant the owner role.")
    email = normalize_email(email)
    if _email_taken(tenant, email):
        raise ConflictError(EMAIL_TAKEN)
    user = User(tenant=tenant, email=email, display_name=display_name.strip(), role=role, is_staff=is_staff)
    validate_new_password(password, user)
    user.set_password(password)
    _validate_and_save(user)
    return user


def _lock_active_owners(tenant: Tenant) -> list[User]:
    """Lock the tenant's active owners so two concurrent demotions cannot both pass the
    last-owner check."""
    return list(User.objects.select_for_update().filter(tenant=tenant, role=Role.OWNER, is_active=True))


def _guard_last_owner(tenant: Tenant, user: User, *, loses_owner: bool) -> None:
    if not loses_owner:
        return
    other_owners = [owner for owner in _lock_active_owners(tenant) if owner.pk != user.pk]
    if not other_owners:
        raise ConflictError("This is the last active owner of the tenant; make another user owner first.")


@transaction.atomic
def user_update(
    *,
    tenant: Tenant,
    actor: User,
    user: User,
    email: str = UNSET,
    password: str = UNSET,
    display_name: str = UNSET,
    role: str = UNSET,
    is_active: bool = UNSET,
    current_password: str | None = UNSET,
) -> User:
    """Owners and admins change users; anyone may change their own email, password and name.
    Only an owner may touch an owner or grant the owner role; the last active owner stays.

    Changing one's *own* email or password needs `current_password` (checked, wrong answers
    throttled per account: tenants/current_password.py); an owner or admin changing someone
    else's needs only their role. Either way a new email or password, or a deactivation, moves
    the user's `auth_version`, which ends every JWT and dashboard session issued before it (the
    caller keeps its own session or gets a new JWT: see the views)."""
    if user.tenant_id != tenant.pk:
        raise NotFoundError("User not found.")
    is_self = actor.pk == user.pk
    privileged = role_at_least(actor.role, Role.ADMIN)
    if not privileged and not is_self:
        raise ForbiddenError("Only owners and admins can change other users.")
    if not privileged and (role is not UNSET or is_active is not UNSET):
        raise ForbiddenError("Only owners and admins can change roles or deactivate users.")
    if user.role == Role.OWNER and actor.role != Role.OWNER:
        raise ForbiddenError("Only an owner can change an owner.")
    if role is not UNSET and role == Role.OWNER and actor.role != Role.OWNER:
        raise ForbiddenError("Only an owner can grant the owner role.")

    new_email = normalize_email(email) if email is not UNSET else user.email
    credentials_change = new_email != user.email or password is not UNSET
    if is_self and credentials_change:
        # Before anything else is looked at: someone holding only a stolen JWT or session learns
        # nothing (not even whether an email is taken) without the password.
        verify_current_password(user=user, password=None if current_password is UNSET else current_password)

    if user.role == Role.OWNER and user.is_active:
        loses_owner = (role is not UNSET and role != Role.OWNER) or (is_active is not UNSET and not is_active)
        _guard_last_owner(tenant, user, loses_owner=loses_owner)

    if email is not UNSET:
        if new_email != user.email and _email_taken(tenant, new_email, exclude=user):
            raise ConflictError(EMAIL_TAKEN)
        user.email = new_email
    if display_name is not UNSET:
        user.display_name = display_name.strip()
    if role is not UNSET:
        user.role = role
    if password is not UNSET:
        validate_new_password(password, user)
        user.set_password(password)
    deactivating = is_active is not UNSET and user.is_active and not is_active
    if is_active is not UNSET:
        user.is_active = is_active
    if credentials_change or deactivating:
        # Ends every JWT and session issued before (a deactivated account's must not come back if
        # it is reactivated). Read under a row lock: two concurrent changes must not both land on
        # the same next version, or a JWT issued after the first would survive the second.
        current = User.objects.select_for_update().filter(pk=user.pk).values_list("auth_version", flat=True).get()
        user.auth_version = current + 1
    _validate_and_save(user)
    if deactivating:
        _revoke_tenant_tokens_of(tenant, user)
    return user


@transaction.atomic
def user_deactivate(*, tenant: Tenant, actor: User, user: User) -> User:
    if not user.is_active:
        return user
    return user_update(tenant=tenant, actor=actor, user=user, is_active=False)


def _revoke_tenant_tokens_of(tenant: Tenant, user: User) -> None:
    """A deactivated user's own tokens die with the account (and do not come back if it is
    reactivated). Bot tokens they created belong to the site's widget and stay."""
    ApiToken.objects.filter(tenant=tenant, user=user, bot_profile__isnull=True, is_active=True).update(
        is_active=False, revoked_at=timezone.now()
    )


# --- API tokens -------------------------------------------------------------------------------


def normalize_origin(origin: str) -> str:
    """`https://Example.com:443/` → `https://example.com`; `*` stays `*` (any origin, only ever
    explicit); anything but a bare origin is refused."""
    value = origin.strip()
    if value == ANY_ORIGIN:
        return ANY_ORIGIN
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInputError.for_field("allowed_origins", f"'{origin}' is not an http(s) origin.")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise InvalidInputError.for_field(
            "allowed_origins", f"'{origin}' must be an origin only (scheme://host[:port]), without a path."
        )
    try:
        port = parts.port
    except ValueError:
        raise InvalidInputError.for_field("allowed_origins", f"'{origin}' has an invalid port.") from None
    host = parts.hostname.lower()
    if not ORIGIN_HOST.fullmatch(host):
        raise InvalidInputError.for_field(
            "allowed_origins", f"'{origin}' has an invalid host (no wildcards: list each origin, or '*')."
        )
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    default_port = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default_port else "")


def _normalized_origins(allowed_origins: list[str] | tuple[str, ...]) -> list[str]:
    if len(allowed_origins) > MAX_ALLOWED_ORIGINS:
        raise InvalidInputError.for_field("allowed_origins", f"At most {MAX_ALLOWED_ORIGINS} origins.")
    return sorted({normalize_origin(origin) for origin in allowed_origins})


def _apply_rate_limits(token: ApiToken, rate_limits: dict[str, int | None]) -> None:
    """Per-token chat limits (bot tokens only); None puts a limit back to the server default."""
    unknown = set(rate_limits) - set(RATE_LIMIT_FIELDS)
    if unknown:
        raise InvalidInputError.for_field(
            "rate_limits", f"Unknown limit {sorted(unknown)[0]!r}; use {', '.join(RATE_LIMIT_FIELDS)}."
        )
    if rate_limits and not token.is_bot_token:
        raise InvalidInputError.for_field("rate_limits", "Only bot tokens (with bot_profile_id) have chat limits.")
    for name, value in rate_limits.items():
        setattr(token, name, value)


@transaction.atomic
def api_token_create(
    *,
    tenant: Tenant,
    user: User,
    name: str,
    bot_profile: BotProfile | None = None,
    allowed_origins: list[str] | tuple[str, ...] = (),
    expires_at: dt.datetime | None = None,
    rate_limits: dict[str, int | None] | None = None,
) -> tuple[ApiToken, str]:
    """Create a token for `user` (its creator). Returns the row and the raw token. A tenant
    token's raw value is stored nowhere and cannot be shown again; a bot token's is kept
    encrypted for the embed snippet (it is a publishable key, visible in page source anyway)."""
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInputError.for_field("expires_at", "Must be in the future.")
    origins = _normalized_origins(allowed_origins)
    if origins and bot_profile is None:
        raise InvalidInputError.for_field(
            "allowed_origins", "Only bot tokens (with bot_profile_id) are limited to origins."
        )
    if bot_profile is not None and not role_at_least(user.role, Role.ADMIN):
        raise ForbiddenError("Only owners and admins can create bot tokens.")
    if bot_profile is not None and not bot_profile.is_active:
        raise InvalidInputError.for_field("bot_profile_id", "Bot profile is inactive.")
    new = generate_api_token()
    token = ApiToken(
        tenant=tenant,
        user=user,
        name=name.strip(),
        token_prefix=new.prefix,
        token_hash=new.hash,
        bot_profile=bot_profile,
        allowed_origins=origins,
        expires_at=expires_at,
        raw_token_ciphertext=encrypt_text(new.raw) if bot_profile is not None else "",
    )
    _apply_rate_limits(token, rate_limits or {})
    token.full_clean()
    token.save()
    return token, new.raw


@transaction.atomic
def api_token_update(
    *,
    tenant: Tenant,
    actor: User,
    token: ApiToken,
    name: str | None = None,
    allowed_origins: list[str] | None = None,
    rate_limits: dict[str, int | None] | None = None,
) -> ApiToken:
    """Rename a token; for a bot token also change where it works and how much it may chat.
    The credential itself never changes (revoke and create a new one to rotate it)."""
    if token.tenant_id != tenant.pk:
        raise NotFoundError("API token not found.")
    if not token.is_active:
        raise ConflictError("This API token is revoked; create a new one.")
    if token.is_bot_token and not role_at_least(actor.role, Role.ADMIN):
        raise ForbiddenError("Only owners and admins can change bot tokens.")
    if name is not None:
        token.name = name.strip()
    if allowed_origins is not None:
        if not token.is_bot_token:
            raise InvalidInputError.for_field(
                "allowed_origins", "Only bot tokens (with bot_profile_id) are limited to origins."
            )
        token.allowed_origins = _normalized_origins(allowed_origins)
    _apply_rate_limits(token, rate_limits or {})
    token.full_clean()
    token.save()
    return token


def bot_token_raw(token: ApiToken) -> str | None:
    """The raw value of a bot token for its embed snippet, when it is kept (tokens created before
    the widget release were not) and still readable with the configured keys."""
    if not token.is_bot_token or not token.raw_token_ciphertext:
        return None
    try:
        return decrypt_text(token.raw_token_ciphertext)
    except DecryptionError:
        return None


PREVIEW_TOKEN_LIFETIME = dt.timedelta(minutes=30)
# A try-it token with less time left than this is not handed out again (the panel may stay open).
PREVIEW_TOKEN_MIN_REMAINING = dt.timedelta(minutes=10)


@transaction.atomic
def preview_token_for(*, tenant: Tenant, user: User, bot_profile: BotProfile, origin: str) -> ApiToken:
    """A short-lived widget token for the dashboard's "Try it" panel: it chats only with this bot,
    only from the dashboard's own origin, for 30 minutes. A still-fresh one is reused; expired
    ones are removed (chats they started stay)."""
    now = timezone.now()
    previews = ApiToken.objects.filter(tenant=tenant, is_dashboard_preview=True)
    previews.filter(expires_at__lte=now).delete()
    origin = normalize_origin(origin)
    for token in previews.filter(
        user=user, bot_profile=bot_profile, is_active=True, expires_at__gt=now + PREVIEW_TOKEN_MIN_REMAINING
    ):
        if token.allowed_origins == [origin] and bot_token_raw(token):
            return token
    token, _ = api_token_create(
        tenant=tenant,
        user=user,
        name="Dashboard try-it",
        bot_profile=bot_profile,
        allowed_origins=[origin],
        expires_at=now + PREVIEW_TOKEN_LIFETIME,
    )
    token.is_dashboard_preview = True
    token.save(update_fields=["is_dashboard_preview"])
    return token


@transaction.atomic
def api_token_revoke(*, tenant: Tenant, token: ApiToken) -> ApiToken:
    """Idempotent: revoking a revoked token changes nothing."""
    if token.tenant_id != tenant.pk:
        raise NotFoundError("API token not found.")
    if token.is_active:
        token.is_active = False
        token.revoked_at = timezone.now()
        # A revoked widget token's raw value is of no further use: keep no copy of it.
        token.raw_token_ciphertext = ""
        token.save(update_fields=["is_active", "revoked_at", "raw_token_ciphertext"])
    return token


# --- Login ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Login:
    user: User
    tenant: Tenant
    access_token: str
    expires_in: int


def auth_login(*, email: str, password: str, tenant_slug: str | None = None) -> Login:
    """Exchange email + password for a JWT. An email registered in several tenants needs
    `tenant_slug` only when the password matches more than one of those accounts, so the answer
    never reveals which tenants an email belongs to."""
    matches = users_with_password(find_login_candidates(email, tenant_slug, operators=False), password)
    if not matches:
        raise UnauthorizedError("Invalid email or password.")
    if len(matches) > 1:
        raise InvalidInputError.for_field(
            "tenant_slug", "This email has accounts in several tenants; give tenant_slug to choose one."
        )
    user = matches[0]
    tenant = user.tenant
    assert tenant is not None  # operators were excluded from the candidates
    if not tenant.is_active:
        raise ForbiddenError("This tenant is disabled.")
    if not user.is_active:
        raise ForbiddenError("This user is disabled.")
    with tenant_scope(tenant):
        user.last_login = timezone.now()
        user.save(update_fields=["last_login"])
    access_token, expires_in = jwt_for(user)
    return Login(user=user, tenant=tenant, access_token=access_token, expires_in=expires_in)


def jwt_for(user: User) -> tuple[str, int]:
    """A JWT for a tenant user, bound to their current credentials: (token, lifetime in seconds)."""
    assert user.tenant_id is not None, "platform operators have no tenant and log in to the dashboard only"
    return issue_jwt(
        user_id=user.pk,
        tenant_id=user.tenant_id,
        role=user.role,
        password_hash=user.password,
        auth_version=user.auth_version,
    )
