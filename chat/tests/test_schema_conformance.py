"""The chat and stats answers are what `/v1/schema` says they are: status, content type and shape.

Each of these was found by the API fuzzer (minirag/tests/test_fuzz_api.py), where the schema
promised something else than the route answers."""

from __future__ import annotations

import pytest

from chat.models import Message
from conftest import TenantWorld
from minirag.tests.api_schema import SchemaClient
from tenants.tenancy import tenant_scope

pytestmark = pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume asynchronous iterators")


@pytest.fixture
def api(db: None) -> SchemaClient:
    return SchemaClient()


def a_chat(world: TenantWorld) -> str:
    with tenant_scope(world.tenant):
        return str(Message.objects.filter(role=Message.Role.USER).values_list("chat_id", flat=True).first())


def test_a_users_message_has_a_blank_outcome_and_the_schema_allows_it(alpha: TenantWorld, api: SchemaClient) -> None:
    response = api.conforming(
        alpha.tokens["owner"], "GET", "/v1/chat/{id}/messages", path_parameters={"id": a_chat(alpha)}
    )
    assert {message["role"]: message["outcome"] for message in response.json()}["user"] == ""


@pytest.mark.parametrize(
    "path",
    [
        "/v1/stats/pricing",
        "/v1/stats/overview",
        "/v1/stats/usage",
        "/v1/stats/usage/by-bot",
        "/v1/stats/usage/by-model",
        "/v1/stats/cost-estimate",
        "/v1/stats/feedback",
        "/v1/stats/feedback/trend",
        "/v1/stats/unanswered",
    ],
)
def test_every_stats_route_answers_the_shape_it_documents(alpha: TenantWorld, api: SchemaClient, path: str) -> None:
    # They were all documented as one free-form object, though most of them answer lists.
    query = {} if path in ("/v1/stats/pricing", "/v1/stats/overview") else {"days": 7}
    response = api.conforming(alpha.tokens["member"], "GET", path, query=query)
    assert response.json(), f"{path} had nothing to show: the check proved little"


def test_out_of_range_days_are_outside_the_documented_range_and_refused(alpha: TenantWorld, api: SchemaClient) -> None:
    days = api.operation("GET", "/v1/stats/usage").query.get("days").definition["schema"]
    assert (days["minimum"], days["maximum"]) == (1, 365)
    assert api.conforming(alpha.tokens["owner"], "GET", "/v1/stats/usage", query={"days": 366}).status_code == 422


def test_csv_exports_are_documented_as_csv(alpha: TenantWorld, api: SchemaClient) -> None:
    one = api.conforming(
        alpha.tokens["owner"],
        "GET",
        "/v1/chat/{id}/export",
        path_parameters={"id": a_chat(alpha)},
        query={"format": "csv"},
    )
    assert one.headers["content-type"][0].startswith("text/csv")
    bulk = api.conforming(alpha.tokens["owner"], "GET", "/v1/chat/export", query={"format": "csv"})
    assert bulk.content.decode().startswith("chat_id,chat_title,message_id,")
    api.conforming(alpha.tokens["owner"], "GET", "/v1/chat/export", query={"format": "json"})


@pytest.mark.parametrize("who", ["owner", "bot"])
def test_a_streamed_turn_is_a_documented_event_stream(alpha: TenantWorld, api: SchemaClient, who: str) -> None:
    response = api.conforming(
        alpha.tokens[who],
        "POST",
        "/v1/chat",
        body={"bot_profile_id": str(alpha.bot.pk), "message": "How long do refunds take?", "stream": True},
    )
    assert response.headers["content-type"][0].startswith("text/event-stream")
    assert b"event: done" in response.content
