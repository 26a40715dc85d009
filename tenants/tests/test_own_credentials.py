"""Changing one's own email or password needs the current password (throttled per account, so it
cannot be used to guess it), and any change of a user's email or password — their own or by an
owner/admin — ends every JWT and dashboard session they had, except the one that made the change."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse

from conftest import TenantWorld, api_client
from minirag.tests.test_dashboard import admin_url, form_data, tenant_client
from tenants.models import User
from tenants.tenancy import tenant_scope

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-brand-new-password"


def login_jwt(email: str, password: str) -> str:
    response = api_client().post("/v1/auth/login", {"email": email, "password": password}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def patch_self(token: str, user: User, **changes: object):
    return api_client(token).patch(f"/v1/users/{user.pk}", changes, format="json")


def stored(user: User) -> User:
    with tenant_scope(user.tenant):
        return User.objects.get(pk=user.pk)


def may_log_in(email: str, password: str) -> bool:
    response = api_client().post("/v1/auth/login", {"email": email, "password": password}, format="json")
    return response.status_code == 200


def logged_in(client: Client) -> bool:
    return client.get("/dashboard/").status_code == 200


def few_wrong_passwords(count: int) -> override_settings:
    return override_settings(THROTTLE_RATES={**settings.THROTTLE_RATES, "current_password": f"{count}/hour"})


# --- API: one's own password and email --------------------------------------------------------


def test_ones_own_password_needs_the_current_one(alpha: TenantWorld) -> None:
    jwt = login_jwt(alpha.member.email, alpha.password)

    missing = patch_self(jwt, alpha.member, password=NEW_PASSWORD)
    assert missing.status_code == 422
    assert missing.json()["detail"].startswith("current_password:")
    assert "current_password" in missing.json()["errors"]

    wrong = patch_self(jwt, alpha.member, password=NEW_PASSWORD, current_password="not-my-password")
    assert wrong.status_code == 422
    assert wrong.json() == {
        "detail": "current_password: The current password is not correct.",
        "errors": {"current_password": ["The current password is not correct."]},
    }
    assert may_log_in(alpha.member.email, alpha.password) and not may_log_in(alpha.member.email, NEW_PASSWORD)
    assert api_client(jwt).get("/v1/auth/me").status_code == 200  # refusals end nothing

    changed = patch_self(jwt, alpha.member, password=NEW_PASSWORD, current_password=alpha.password)
    assert changed.status_code == 200
    body = changed.json()
    assert "password" not in body and "current_password" not in body
    # Every JWT from before has ended, the caller's included; the answer carries its successor.
    assert api_client(jwt).get("/v1/auth/me").status_code == 401
    assert body["expires_in"] == settings.JWT_TTL_SECONDS
    assert api_client(body["access_token"]).get("/v1/auth/me").json()["user"]["id"] == str(alpha.member.pk)
    assert may_log_in(alpha.member.email, NEW_PASSWORD)


def test_ones_own_email_needs_the_current_password_and_ends_other_sessions(alpha: TenantWorld) -> None:
    earlier_jwt = login_jwt(alpha.member.email, alpha.password)
    token = alpha.tokens["member"]  # an API token: no session, keeps working

    missing = patch_self(token, alpha.member, email="me@alpha.example")
    assert missing.status_code == 422 and "current_password" in missing.json()["errors"]
    assert stored(alpha.member).email == alpha.member.email

    # Nothing else is answered first: not even whether the address is taken.
    taken = patch_self(token, alpha.member, email=alpha.admin.email, current_password="wrong-password")
    assert taken.status_code == 422 and "current_password" in taken.json()["errors"]

    changed = patch_self(token, alpha.member, email="Me@Alpha.Example", current_password=alpha.password)
    assert changed.status_code == 200
    assert changed.json()["email"] == "me@alpha.example"
    assert "access_token" not in changed.json()
    assert api_client(earlier_jwt).get("/v1/auth/me").status_code == 401
    assert api_client(token).get("/v1/auth/me").status_code == 200
    assert may_log_in("me@alpha.example", alpha.password)


def test_other_changes_of_ones_own_account_need_no_password(alpha: TenantWorld) -> None:
    jwt = login_jwt(alpha.member.email, alpha.password)
    same_email = patch_self(jwt, alpha.member, display_name="Me", email=alpha.member.email.upper())
    assert same_email.status_code == 200 and same_email.json()["display_name"] == "Me"
    assert "access_token" not in same_email.json()
    assert api_client(jwt).get("/v1/auth/me").status_code == 200  # nothing changed that ends it


def test_wrong_current_passwords_are_throttled_per_account(alpha: TenantWorld) -> None:
    jwt = login_jwt(alpha.member.email, alpha.password)
    with few_wrong_passwords(3):
        for guess in ("guess-1", "guess-2", "guess-3"):
            response = patch_self(jwt, alpha.member, password=NEW_PASSWORD, current_password=guess)
            assert response.status_code == 422
        # From another address, and now even the right password: refused without being checked,
        # so a correct guess looks exactly like a wrong one.
        client = api_client(jwt, REMOTE_ADDR="10.9.9.9")
        refused = client.patch(
            f"/v1/users/{alpha.member.pk}",
            {"password": NEW_PASSWORD, "current_password": alpha.password},
            format="json",
        )
        assert refused.status_code == 429
        assert 0 < int(refused["Retry-After"]) <= 3600
        assert refused.json()["detail"].startswith("Too many wrong current passwords for this account.")
        assert may_log_in(alpha.member.email, alpha.password)
        # Other accounts are not affected, and neither is changing anything else.
        admin_jwt = login_jwt(alpha.admin.email, alpha.password)
        changed = patch_self(admin_jwt, alpha.admin, password=NEW_PASSWORD, current_password=alpha.password)
        assert changed.status_code == 200
        assert patch_self(jwt, alpha.member, display_name="Still fine").status_code == 200


# --- API: an owner or admin changing someone else ---------------------------------------------


def test_an_admin_changes_another_users_credentials_without_theirs_and_ends_their_sessions(
    alpha: TenantWorld,
) -> None:
    members_jwt = login_jwt(alpha.member.email, alpha.password)
    response = alpha.client("admin").patch(
        f"/v1/users/{alpha.member.pk}", {"email": "renamed@alpha.example"}, format="json"
    )
    assert response.status_code == 200 and "access_token" not in response.json()
    assert api_client(members_jwt).get("/v1/auth/me").status_code == 401
    assert "log in again" in api_client(members_jwt).get("/v1/auth/me").json()["detail"]

    members_jwt = login_jwt("renamed@alpha.example", alpha.password)
    admins_jwt = login_jwt(alpha.admin.email, alpha.password)
    response = api_client(admins_jwt).patch(f"/v1/users/{alpha.member.pk}", {"password": NEW_PASSWORD}, format="json")
    assert response.status_code == 200 and "access_token" not in response.json()
    assert api_client(members_jwt).get("/v1/auth/me").status_code == 401
    assert api_client(admins_jwt).get("/v1/auth/me").status_code == 200  # the admin's own goes on
    assert may_log_in("renamed@alpha.example", NEW_PASSWORD)


def test_a_reactivated_account_does_not_get_its_old_sessions_back(alpha: TenantWorld) -> None:
    jwt = login_jwt(alpha.member.email, alpha.password)
    assert alpha.client("owner").delete(f"/v1/users/{alpha.member.pk}").status_code == 204
    assert api_client(jwt).get("/v1/auth/me").status_code == 403  # disabled, and says so
    reactivated = alpha.client("owner").patch(f"/v1/users/{alpha.member.pk}", {"is_active": True}, format="json")
    assert reactivated.status_code == 200
    assert api_client(jwt).get("/v1/auth/me").status_code == 401
    assert api_client(login_jwt(alpha.member.email, alpha.password)).get("/v1/auth/me").status_code == 200


def test_the_browsable_api_session_that_changes_its_email_stays_logged_in(alpha: TenantWorld) -> None:
    here, elsewhere = tenant_client(alpha, "admin"), tenant_client(alpha, "admin")
    response = here.patch(
        f"/v1/users/{alpha.admin.pk}",
        {"email": "new-admin@alpha.example", "current_password": alpha.password},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    assert "access_token" not in response.json()
    assert logged_in(here) and not logged_in(elsewhere)


# --- Dashboard --------------------------------------------------------------------------------


def test_the_dashboard_sends_ones_own_password_change_to_the_page_that_asks_for_the_old_one(
    alpha: TenantWorld,
) -> None:
    here, elsewhere = tenant_client(alpha, "admin"), tenant_client(alpha, "admin")
    jwt = login_jwt(alpha.admin.email, alpha.password)
    own_page = reverse("admin:auth_user_password_change", args=[alpha.admin.pk])
    answer = here.get(own_page)
    assert answer.status_code == 302 and answer["Location"] == reverse("admin:password_change")
    posted = here.post(own_page, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "set_usable_password": "true"})
    assert posted.status_code == 302 and posted["Location"] == reverse("admin:password_change")
    assert may_log_in(alpha.admin.email, alpha.password)

    page = reverse("admin:password_change")
    wrong = here.post(
        page, {"old_password": "not-my-password", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert wrong.status_code == 200 and wrong.context["form"].errors["old_password"]
    too_long = here.post(page, {"old_password": alpha.password, "new_password1": "x" * 129, "new_password2": "x" * 129})
    assert "Must be between 8 and 128 characters." in too_long.context["form"].errors["new_password1"]
    assert may_log_in(alpha.admin.email, alpha.password)

    done = here.post(
        page, {"old_password": alpha.password, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert done.status_code == 302
    assert may_log_in(alpha.admin.email, NEW_PASSWORD)
    assert logged_in(here) and not logged_in(elsewhere)
    assert api_client(jwt).get("/v1/auth/me").status_code == 401


def test_the_dashboards_password_page_is_throttled_like_the_api(alpha: TenantWorld) -> None:
    here = tenant_client(alpha, "admin")
    page = reverse("admin:password_change")
    with few_wrong_passwords(2):
        # Wrong answers on the API and the dashboard count together, per account.
        jwt = login_jwt(alpha.admin.email, alpha.password)
        assert patch_self(jwt, alpha.admin, password=NEW_PASSWORD, current_password="guess-1").status_code == 422
        here.post(page, {"old_password": "guess-2", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
        refused = here.post(
            page, {"old_password": alpha.password, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
        )
    assert refused.status_code == 200
    assert "Too many wrong current passwords" in " ".join(refused.context["form"].errors["old_password"])
    assert may_log_in(alpha.admin.email, alpha.password)


def test_the_dashboard_asks_for_the_current_password_to_change_ones_own_email(alpha: TenantWorld) -> None:
    here, elsewhere = tenant_client(alpha, "admin"), tenant_client(alpha, "admin")
    page = admin_url(User, "change", alpha.admin.pk)
    assert 'name="current_password"' in here.get(page).content.decode()
    data = form_data(here, page, email="new-admin@alpha.example")
    refused = here.post(page, data)
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors["current_password"]
    wrong = here.post(page, {**data, "current_password": "not-my-password"})
    assert wrong.context["adminform"].form.errors["current_password"] == ["The current password is not correct."]
    assert stored(alpha.admin).email == alpha.admin.email

    assert here.post(page, {**data, "current_password": alpha.password}).status_code == 302
    assert stored(alpha.admin).email == "new-admin@alpha.example"
    assert logged_in(here) and not logged_in(elsewhere)

    # Other changes of one's own account need nothing more.
    data = form_data(here, page, display_name="Renamed")
    assert here.post(page, data).status_code == 302
    assert logged_in(here)


def test_the_user_page_shows_no_password_hash_only_a_link_to_the_password_page(alpha: TenantWorld) -> None:
    owner = tenant_client(alpha, "owner")
    for user in (alpha.admin, alpha.owner):
        html = owner.get(admin_url(User, "change", user.pk)).content.decode()
        password_hash = stored(user).password
        assert password_hash.split("$")[-1] not in html and 'name="password"' not in html
        assert 'href="../password/"' in html


def test_an_owner_changes_an_admins_password_and_email_in_the_dashboard_and_ends_their_sessions(
    alpha: TenantWorld,
) -> None:
    owner, admins_session = tenant_client(alpha, "owner"), tenant_client(alpha, "admin")
    admins_jwt = login_jwt(alpha.admin.email, alpha.password)
    page = admin_url(User, "change", alpha.admin.pk)
    assert 'name="current_password"' not in owner.get(page).content.decode()  # not the owner's to give
    assert owner.post(page, form_data(owner, page, email="moved@alpha.example")).status_code == 302
    assert not logged_in(admins_session)
    assert api_client(admins_jwt).get("/v1/auth/me").status_code == 401

    admins_session = Client()
    admins_session.force_login(stored(alpha.admin))
    password_page = reverse("admin:auth_user_password_change", args=[alpha.admin.pk])
    posted = owner.post(
        password_page, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "set_usable_password": "true"}
    )
    assert posted.status_code == 302
    assert may_log_in("moved@alpha.example", NEW_PASSWORD)
    assert not logged_in(admins_session) and logged_in(owner)
