"""Shared fixtures: two fully populated tenants, API clients per credential, and a guard that no
test leaves a tenant scope behind."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from rest_framework.test import APIClient

from bots.models import BotProfile
from bots.tests.factories import BotProfileFactory
from tenants.models import ApiToken, Role, Tenant, User
from tenants.tenancy import current_scope
from tenants.tests.factories import DEFAULT_PASSWORD, TenantFactory, UserFactory, make_token


def api_client(raw_token: str | None = None, **headers: str) -> APIClient:
    client = APIClient()
    if raw_token:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_token}", **headers)
    elif headers:
        client.credentials(**headers)
    return client


@dataclass
class TenantWorld:
    """A tenant with one user per role, a token for each, a bot and a widget (bot) token."""

    tenant: Tenant
    owner: User
    admin: User
    member: User
    bot: BotProfile
    tokens: dict[str, str] = field(default_factory=dict)  # role or "bot" → raw token
    token_rows: dict[str, ApiToken] = field(default_factory=dict)

    def client(self, who: str = "owner", **headers: str) -> APIClient:
        return api_client(self.tokens[who], **headers)

    @property
    def password(self) -> str:
        return DEFAULT_PASSWORD


def build_world(slug: str) -> TenantWorld:
    tenant = TenantFactory(slug=slug, name=f"{slug.title()} Inc")
    owner = UserFactory(tenant=tenant, role=Role.OWNER, email=f"owner@{slug}.example")
    admin = UserFactory(tenant=tenant, role=Role.ADMIN, email=f"admin@{slug}.example")
    member = UserFactory(tenant=tenant, role=Role.MEMBER, email=f"member@{slug}.example")
    bot = BotProfileFactory(tenant=tenant, name=f"{slug} bot")
    world = TenantWorld(tenant=tenant, owner=owner, admin=admin, member=member, bot=bot)
    for who, user in (("owner", owner), ("admin", admin), ("member", member)):
        world.token_rows[who], world.tokens[who] = make_token(user, name=f"{slug} {who} token")
    world.token_rows["bot"], world.tokens["bot"] = make_token(owner, name=f"{slug} widget", bot_profile=bot)
    return world


@pytest.fixture
def alpha(db: Any) -> TenantWorld:
    return build_world("alpha")


@pytest.fixture
def beta(db: Any) -> TenantWorld:
    return build_world("beta")


@pytest.fixture(autouse=True)
def _tenant_scope_never_leaks() -> Any:
    assert not current_scope().is_set, "a tenant scope was already active when the test started"
    yield
    assert not current_scope().is_set, "the test (or the code it ran) left a tenant scope active"
