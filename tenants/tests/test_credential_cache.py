"""API tokens are kept for a few seconds once read (tenants/credential_cache.py), and every change
to a token, its tenant or its user takes effect on the very next request, in every process."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conftest import TenantWorld
from tenants import credential_cache
from tenants.models import ApiToken, Tenant, User
from tenants.tenancy import tenant_scope

pytestmark = pytest.mark.django_db


def token_reads(world: TenantWorld, who: str = "admin") -> tuple[int, int]:
    """(status of GET /v1/bot-profiles, how many times it read the token table)."""
    with CaptureQueriesContext(connection) as captured:
        response = world.client(who).get("/v1/bot-profiles")
    reads = [q for q in captured.captured_queries if 'FROM "tenants_apitoken"' in q["sql"] and "SELECT" in q["sql"]]
    return response.status_code, len(reads)


def test_a_token_is_read_once_then_reused(alpha: TenantWorld) -> None:
    assert token_reads(alpha) == (200, 1)
    assert token_reads(alpha) == (200, 0)
    assert token_reads(alpha, "member") == (200, 1)  # another token: its own rows


def test_revoking_a_token_through_the_api_takes_effect_at_once(alpha: TenantWorld) -> None:
    assert token_reads(alpha)[0] == 200 and token_reads(alpha) == (200, 0)
    response = alpha.client("owner").delete(f"/v1/api-tokens/{alpha.token_rows['admin'].pk}")
    assert response.status_code in (200, 204), response.content
    assert alpha.client("admin").get("/v1/bot-profiles").status_code == 401


@pytest.mark.parametrize(
    "change, status",
    [
        ("token expired", 401),
        ("tenant disabled", 403),
        ("user disabled", 403),
        ("user demoted", 403),
    ],
)
def test_changes_made_with_a_queryset_update_take_effect_at_once(alpha: TenantWorld, change: str, status: int) -> None:
    """A queryset update sends no signal; the querysets of these models move the epoch themselves."""
    assert token_reads(alpha) == (200, 1) and token_reads(alpha) == (200, 0)
    with tenant_scope(alpha.tenant):
        if change == "token expired":
            ApiToken.objects.filter(pk=alpha.token_rows["admin"].pk).update(
                expires_at=timezone.now() - timedelta(seconds=1)
            )
        elif change == "tenant disabled":
            Tenant.objects.filter(pk=alpha.tenant.pk).update(is_active=False)
        elif change == "user disabled":
            User.objects.filter(pk=alpha.admin.pk).update(is_active=False)
        else:
            User.objects.filter(pk=alpha.admin.pk).update(role="member")
    if change == "user demoted":  # members may read bots but not create them
        response = alpha.client("admin").post("/v1/bot-profiles", {"name": "No"}, format="json")
    else:
        response = alpha.client("admin").get("/v1/bot-profiles")
    assert response.status_code == status, response.content


def test_a_change_in_another_process_drops_this_process_entries(alpha: TenantWorld) -> None:
    assert token_reads(alpha) == (200, 1) and token_reads(alpha) == (200, 0)
    # What another process's change does here: it moves the epoch in Redis only.
    cache.incr(credential_cache.EPOCH_KEY) if cache.get(credential_cache.EPOCH_KEY) else cache.set(
        credential_cache.EPOCH_KEY, 1, timeout=None
    )
    assert token_reads(alpha) == (200, 1)


def test_writing_when_a_token_was_used_stales_nothing(alpha: TenantWorld) -> None:
    assert token_reads(alpha) == (200, 1)
    ApiToken.all_tenants.filter(pk=alpha.token_rows["admin"].pk).update(last_used_at=timezone.now())
    assert token_reads(alpha) == (200, 0)


def test_entries_expire_and_zero_turns_the_cache_off(alpha: TenantWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    with override_settings(TOKEN_CACHE_SECONDS=0):
        assert token_reads(alpha) == (200, 1) and token_reads(alpha) == (200, 1)
    with override_settings(TOKEN_CACHE_SECONDS=5):
        assert token_reads(alpha) == (200, 1) and token_reads(alpha) == (200, 0)
        later = time.monotonic() + 5
        monkeypatch.setattr(credential_cache.time, "monotonic", lambda: later)
        assert token_reads(alpha) == (200, 1)


def test_without_redis_the_cache_is_not_used(alpha: TenantWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    import redis

    def down(*args: object, **kwargs: object) -> None:
        raise redis.exceptions.ConnectionError("down")

    assert token_reads(alpha) == (200, 1)
    monkeypatch.setattr(cache, "get", down, raising=False)
    assert token_reads(alpha) == (200, 1) and token_reads(alpha) == (200, 1)


def test_each_request_gets_its_own_copies(alpha: TenantWorld) -> None:
    token_hash = alpha.token_rows["admin"].token_hash
    assert token_reads(alpha) == (200, 1)
    epoch = credential_cache.current_epoch()
    first, second = (credential_cache.cached_token(token_hash, epoch) for _ in range(2))
    assert first is not None and second is not None
    first.user.email = "changed-by-one-request@example.com"
    assert first is not second and first.user is not second.user and first.tenant is not second.tenant
    assert second.user.email == alpha.admin.email
    assert credential_cache.cached_token(token_hash, epoch).user.email == alpha.admin.email


def test_what_the_reading_request_changes_is_not_kept(alpha: TenantWorld) -> None:
    with tenant_scope(alpha.tenant):
        token = ApiToken.objects.select_related("tenant", "user").get(pk=alpha.token_rows["admin"].pk)
    epoch = credential_cache.current_epoch()
    credential_cache.remember(token.token_hash, token, epoch)
    token.user.email = "changed-by-the-reading-request@example.com"
    token.tenant.name = "Changed"
    cached = credential_cache.cached_token(token.token_hash, epoch)
    assert cached.user.email == alpha.admin.email and cached.tenant.name == alpha.tenant.name
