"""Role rules: who may manage users, tokens and bots, including the owner guards."""

from __future__ import annotations

import pytest

from conftest import TenantWorld
from tenants.models import User
from tenants.tenancy import tenant_scope

pytestmark = pytest.mark.django_db


def new_user(world: TenantWorld, who: str, role: str = "member", email: str = "new@alpha.example"):
    return world.client(who).post(
        "/v1/users", {"email": email, "password": "a-good-password", "role": role}, format="json"
    )


def patch_user(world: TenantWorld, who: str, user: User, **changes: object):
    return world.client(who).patch(f"/v1/users/{user.pk}", changes, format="json")


def test_any_role_lists_users_ordered_by_email(alpha: TenantWorld) -> None:
    response = alpha.client("member").get("/v1/users")
    assert response.status_code == 200
    emails = [user["email"] for user in response.json()]
    assert emails == sorted(emails) == ["admin@alpha.example", "member@alpha.example", "owner@alpha.example"]


def test_members_cannot_add_users(alpha: TenantWorld) -> None:
    response = new_user(alpha, "member")
    assert response.status_code == 403
    assert "admin" in response.json()["detail"]


def test_admins_add_members_and_admins_but_not_owners(alpha: TenantWorld) -> None:
    assert new_user(alpha, "admin", "member", "m2@alpha.example").status_code == 201
    assert new_user(alpha, "admin", "admin", "a2@alpha.example").status_code == 201
    response = new_user(alpha, "admin", "owner", "o2@alpha.example")
    assert response.status_code == 403
    assert response.json()["detail"] == "Only an owner can grant the owner role."
    assert new_user(alpha, "owner", "owner", "o2@alpha.example").json()["role"] == "owner"


def test_admins_cannot_touch_owners(alpha: TenantWorld) -> None:
    for changes in ({"display_name": "x"}, {"password": "a-new-password"}, {"role": "member"}, {"is_active": False}):
        response = patch_user(alpha, "admin", alpha.owner, **changes)
        assert response.status_code == 403, changes
    assert alpha.client("admin").delete(f"/v1/users/{alpha.owner.pk}").status_code == 403
    response = patch_user(alpha, "admin", alpha.member, role="owner")
    assert response.status_code == 403


def test_the_last_active_owner_cannot_be_demoted_or_removed(alpha: TenantWorld) -> None:
    response = patch_user(alpha, "owner", alpha.owner, role="admin")
    assert response.status_code == 409
    assert "last active owner" in response.json()["detail"]
    assert patch_user(alpha, "owner", alpha.owner, is_active=False).status_code == 409
    assert alpha.client("owner").delete(f"/v1/users/{alpha.owner.pk}").status_code == 409

    # With a second owner, the first may step down.
    assert patch_user(alpha, "owner", alpha.admin, role="owner").status_code == 200
    assert patch_user(alpha, "owner", alpha.owner, role="admin").json()["role"] == "admin"
    # ...and now the remaining owner is the last one.
    response = alpha.client("admin").patch(f"/v1/users/{alpha.admin.pk}", {"role": "member"}, format="json")
    assert response.status_code == 409


def test_members_edit_their_own_profile_but_not_their_role(alpha: TenantWorld) -> None:
    response = patch_user(
        alpha, "member", alpha.member, display_name="Me", email="Me@Alpha.Example", current_password=alpha.password
    )
    assert response.status_code == 200
    assert response.json()["display_name"] == "Me"
    assert response.json()["email"] == "me@alpha.example"
    assert patch_user(alpha, "member", alpha.member, role="admin").status_code == 403
    assert patch_user(alpha, "member", alpha.member, is_active=False).status_code == 403
    assert patch_user(alpha, "member", alpha.admin, display_name="x").status_code == 403


def test_duplicate_email_in_tenant_is_409_case_insensitively(alpha: TenantWorld) -> None:
    response = new_user(alpha, "owner", email="MEMBER@alpha.example")
    assert response.status_code == 409
    assert patch_user(alpha, "owner", alpha.admin, email="member@alpha.example").status_code == 409


def test_members_see_and_revoke_only_their_own_tokens(alpha: TenantWorld) -> None:
    listing = alpha.client("member").get("/v1/api-tokens").json()
    assert [token["id"] for token in listing] == [str(alpha.token_rows["member"].pk)]
    other = alpha.token_rows["admin"].pk
    assert alpha.client("member").delete(f"/v1/api-tokens/{other}").status_code == 404
    assert alpha.client("member").get(f"/v1/api-tokens/{other}").status_code == 404
    assert alpha.client("admin").get("/v1/api-tokens").headers["X-Total-Count"] == "4"
    assert alpha.client("admin").delete(f"/v1/api-tokens/{alpha.token_rows['member'].pk}").status_code == 204


def test_members_create_tenant_tokens_for_themselves_but_not_bot_tokens(alpha: TenantWorld) -> None:
    response = alpha.client("member").post("/v1/api-tokens", {"name": "mine"}, format="json")
    assert response.status_code == 201
    assert response.json()["user_id"] == str(alpha.member.pk)
    response = alpha.client("member").post(
        "/v1/api-tokens", {"name": "widget", "bot_profile_id": str(alpha.bot.pk)}, format="json"
    )
    assert response.status_code == 403


def test_members_read_bots_but_only_admins_change_them(alpha: TenantWorld) -> None:
    member = alpha.client("member")
    assert member.get("/v1/bot-profiles").status_code == 200
    assert member.get(f"/v1/bot-profiles/{alpha.bot.pk}").status_code == 200
    assert member.post("/v1/bot-profiles", {"name": "x"}, format="json").status_code == 403
    assert member.patch(f"/v1/bot-profiles/{alpha.bot.pk}", {"name": "x"}, format="json").status_code == 403
    assert member.delete(f"/v1/bot-profiles/{alpha.bot.pk}").status_code == 403
    assert (
        alpha.client("admin").patch(f"/v1/bot-profiles/{alpha.bot.pk}", {"name": "y"}, format="json").status_code == 200
    )


def test_member_cannot_see_detailed_health(alpha: TenantWorld) -> None:
    assert alpha.client("member").get("/v1/system/health/detailed").status_code == 403
    assert alpha.client("admin").get("/v1/system/health/detailed").status_code == 200


def test_a_tenant_token_acts_with_its_creators_current_role(alpha: TenantWorld) -> None:
    assert alpha.client("admin").post("/v1/bot-profiles", {"name": "before"}, format="json").status_code == 201
    assert patch_user(alpha, "owner", alpha.admin, role="member").status_code == 200
    assert alpha.client("admin").post("/v1/bot-profiles", {"name": "after"}, format="json").status_code == 403
    with tenant_scope(alpha.tenant):
        assert User.objects.get(pk=alpha.admin.pk).role == "member"
