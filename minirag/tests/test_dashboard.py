"""The dashboard (/dashboard/) runs with the right tenant scope: operators see every tenant."""

from __future__ import annotations

import pytest

from conftest import TenantWorld
from tenants.models import User
from tenants.tenancy import tenant_scope_disabled

pytestmark = pytest.mark.django_db


def test_an_operator_logs_in_and_sees_every_tenants_rows(alpha: TenantWorld, beta: TenantWorld, client) -> None:
    with tenant_scope_disabled("test: create operator"):
        User.objects.create_superuser("ops@example.com", "operator-password")
    response = client.post(
        "/dashboard/login/?next=/dashboard/", {"username": "ops@example.com", "password": "operator-password"}
    )
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    page = client.get("/dashboard/bots/botprofile/")
    assert page.status_code == 200
    assert b"alpha bot" in page.content and b"beta bot" in page.content
    assert client.get(f"/dashboard/bots/botprofile/{alpha.bot.pk}/change/").status_code == 200
    assert client.get("/dashboard/tenants/user/").status_code == 200
    assert client.get("/dashboard/tenants/apitoken/").status_code == 200
    assert (
        b"token_hash" not in client.get(f"/dashboard/tenants/apitoken/{alpha.token_rows['owner'].pk}/change/").content
    )


def test_a_wrong_dashboard_password_is_refused(alpha: TenantWorld, client) -> None:
    response = client.post("/dashboard/login/", {"username": alpha.owner.email, "password": "nope-nope"})
    assert response.status_code == 200
    assert b"Please enter the correct" in response.content
