"""`PATCH /v1/tenants/me`: the tenant's own settings, changed by its owners only (API and
dashboard). Today one setting: `members_see_all_chats` (chat/tests/test_chat_visibility.py shows
what it does)."""

from __future__ import annotations

import pytest
from django.test import Client

from conftest import TenantWorld, api_client
from minirag.tests.test_dashboard import admin_url, form_data, tenant_client
from tenants.models import Tenant

pytestmark = pytest.mark.django_db


def setting(world: TenantWorld) -> bool:
    return Tenant.objects.get(pk=world.tenant.pk).members_see_all_chats


def test_the_tenant_shape_carries_the_setting_and_it_defaults_to_on(alpha: TenantWorld) -> None:
    for who in ("owner", "admin", "member"):
        assert alpha.client(who).get("/v1/tenants/me").json()["members_see_all_chats"] is True
    me = alpha.client("member").get("/v1/auth/me").json()
    assert me["tenant"]["members_see_all_chats"] is True


def test_only_an_owner_changes_it(alpha: TenantWorld) -> None:
    for who in ("admin", "member"):
        response = alpha.client(who).patch("/v1/tenants/me", {"members_see_all_chats": False}, format="json")
        assert response.status_code == 403
        assert response.json() == {"detail": "This action needs the owner role or higher."}
    widget = alpha.client("bot").patch("/v1/tenants/me", {"members_see_all_chats": False}, format="json")
    assert widget.status_code == 403 and "Bot tokens" in widget.json()["detail"]
    assert setting(alpha) is True

    response = alpha.client("owner").patch("/v1/tenants/me", {"members_see_all_chats": False}, format="json")
    assert response.status_code == 200
    assert response.json() | {"budget": None} == {
        "id": str(alpha.tenant.pk),
        "name": alpha.tenant.name,
        "slug": alpha.tenant.slug,
        "is_active": True,
        "plan": "free",
        "members_see_all_chats": False,
        "budget": None,  # its own test: providers/tests/test_budgets.py
    }
    assert setting(alpha) is False
    assert alpha.client("member").get("/v1/tenants/me").json()["members_see_all_chats"] is False

    # With a JWT too; an empty PATCH changes nothing.
    jwt = (
        api_client()
        .post("/v1/auth/login", {"email": alpha.owner.email, "password": alpha.password}, format="json")
        .json()["access_token"]
    )
    assert api_client(jwt).patch("/v1/tenants/me", {}, format="json").json()["members_see_all_chats"] is False
    assert api_client(jwt).patch("/v1/tenants/me", {"members_see_all_chats": True}, format="json").status_code == 200
    assert setting(alpha) is True


@pytest.mark.parametrize("value", ["maybe", None, 2, [], {"on": True}])
def test_a_bad_value_is_a_422_naming_the_field(alpha: TenantWorld, value: object) -> None:
    response = alpha.client("owner").patch("/v1/tenants/me", {"members_see_all_chats": value}, format="json")
    assert response.status_code == 422
    assert response.json()["detail"].startswith("members_see_all_chats:")
    assert "members_see_all_chats" in response.json()["errors"]
    assert setting(alpha) is True


def test_each_tenant_changes_only_its_own(alpha: TenantWorld, beta: TenantWorld) -> None:
    assert beta.client("owner").patch("/v1/tenants/me", {"members_see_all_chats": False}, format="json").json()[
        "id"
    ] == str(beta.tenant.pk)
    assert setting(beta) is False and setting(alpha) is True


def test_owners_change_it_in_the_dashboard_and_admins_only_see_it(alpha: TenantWorld) -> None:
    page = admin_url(Tenant, "change", alpha.tenant.pk)
    admin_client: Client = tenant_client(alpha, "admin")
    data = form_data(admin_client, page)
    assert "members_see_all_chats" not in data  # read-only for an admin: no input
    assert "members_see_all_chats" in admin_client.get(page).content.decode()  # but shown
    admin_client.post(page, {**data, "members_see_all_chats": ""})
    assert setting(alpha) is True

    owner_client = tenant_client(alpha, "owner")
    data = form_data(owner_client, page)
    assert data["members_see_all_chats"] == "on"
    data.pop("members_see_all_chats")  # an unticked checkbox is not sent
    assert owner_client.post(page, data).status_code == 302
    assert setting(alpha) is False
