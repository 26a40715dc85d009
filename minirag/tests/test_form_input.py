"""Form-encoded and multipart bodies, which the schema offers beside JSON on every write, mean what
the same JSON body means. (Found while reading the API fuzzer's findings: DRF read a boolean
missing from a form as false, so a form PATCH that only changed a description deactivated the
bot, source, webhook or user, and a form POST created an inactive bot.) And a body sent without a
Content-Type is a documented 415, never a 5xx."""

from __future__ import annotations

from typing import Any

import pytest
from werkzeug.test import Client

from conftest import TenantWorld
from minirag.tests.api_schema import CHECKS, SchemaClient, keeping_the_test_connection

ENCODINGS = ["multipart", "urlencoded"]


def send(world: TenantWorld, method: str, path: str, data: dict[str, Any], encoding: str) -> Any:
    client = world.client("owner")
    if encoding == "multipart":
        return getattr(client, method)(path, data, format="multipart")
    body = "&".join(f"{key}={value}" for key, value in data.items())
    return getattr(client, method)(path, body, content_type="application/x-www-form-urlencoded")


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_bot_created_from_a_form_is_active(alpha: TenantWorld, encoding: str) -> None:
    response = send(alpha, "post", "/v1/bot-profiles", {"name": "Form bot"}, encoding)
    assert response.status_code == 201, response.json()
    assert response.json()["is_active"] is True


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("route", ["bot-profiles", "sources", "webhooks", "users"])
def test_a_form_patch_leaves_out_is_active_and_keeps_it(alpha: TenantWorld, encoding: str, route: str) -> None:
    target = {
        "bot-profiles": (alpha.bot.pk, {"description": "Changed by a form"}),
        "sources": (alpha.text_source.pk, {"description": "Changed by a form"}),
        "webhooks": (alpha.webhook.pk, {"description": "Changed by a form"}),
        "users": (alpha.member.pk, {"display_name": "Changed by a form"}),
    }
    pk, change = target[route]
    response = send(alpha, "patch", f"/v1/{route}/{pk}", change, encoding)
    assert response.status_code == 200, response.json()
    assert response.json()["is_active"] is True
    assert alpha.client().get(f"/v1/{route}/{pk}").json()["is_active"] is True


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_form_can_still_deactivate(alpha: TenantWorld, encoding: str) -> None:
    response = send(alpha, "patch", f"/v1/webhooks/{alpha.webhook.pk}", {"is_active": "false"}, encoding)
    assert response.status_code == 200, response.json()
    assert response.json()["is_active"] is False


def test_a_body_without_a_content_type_is_a_documented_415(alpha: TenantWorld) -> None:
    api = SchemaClient()
    with keeping_the_test_connection():
        response = Client(api.app).open(
            method="POST",
            path="/v1/bot-profiles",
            headers={"Authorization": f"Bearer {alpha.tokens['owner']}"},
            data=b"name=Nameless",
        )
    assert response.status_code == 415
    assert response.json["detail"] == 'Unsupported media type "" in request.'
    case = api.operation("POST", "/v1/bot-profiles").Case(body={"name": "Nameless"}, media_type="application/json")
    case.validate_response(response, checks=CHECKS)
